import uuid

import flow_api


def handler(system, this, inputs):
    request_id = this.uuid()
    stable = uuid.uuid5(uuid.NAMESPACE_URL, inputs["url"])
    parsed = uuid.UUID(request_id)
    system.setting(f"request {parsed}").save(str(stable))
    return this.success(request_id)
