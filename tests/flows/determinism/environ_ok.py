import os

import flow_api


def read_region():
    return os.environ.get("REGION", "eu")


def handler(system, this, inputs):
    token = system.setting("api token").get("value")
    region = this.step(read_region)
    level = this.step(os.getenv, "LOG_LEVEL")
    path = os.path.join("reports", inputs["name"])
    this.connect("api", headers={"Authorization": token}, region=region, level=level, path=path)
    return this.success("called")
