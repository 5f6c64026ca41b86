import os
from os import environ

import flow_api


def handler(system, this, inputs):
    token = os.environ["API_TOKEN"]  # <- found
    region = os.environ.get("REGION", "eu")  # <- found
    level = os.getenv("LOG_LEVEL")  # <- found
    home = environ["HOME"]  # <- found
    this.connect("api", headers={"Authorization": token}, region=region, level=level, home=home)
    return this.success("called")
