import os.path
import pathlib

import flow_api


def handler(system, this, inputs):
    with open(inputs["path"]) as f:  # <- found
        rows = f.read().splitlines()
    config = pathlib.Path(inputs["config"]).read_text()  # <- found
    if os.path.exists(inputs["flag"]):  # <- found
        this.log("flag set")
    for row in rows:
        this.flow("import row", row=row, config=config)
    return this.success(f"{len(rows)} rows")
