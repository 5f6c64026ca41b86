import uuid
from uuid import uuid1

import flow_api


def handler(system, this, inputs):
    request_id = str(uuid.uuid4())  # <- found
    host_id = uuid1().hex  # <- found
    this.setting(f"request {request_id}").save(host_id)
    return this.success(request_id)
