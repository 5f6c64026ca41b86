import os.path
import pathlib

import flow_api


def read_rows(path):
    with open(path) as f:
        return f.read().splitlines()


def handler(system, this, inputs):
    rows = this.step(read_rows, inputs["path"])
    config = this.step(lambda: pathlib.Path(inputs["config"]).read_text())
    flagged = this.step(os.path.exists, inputs["flag"])
    if flagged:
        this.log("flag set")
    for row in rows:
        this.flow("import row", row=row, config=config)
    return this.success(f"{len(rows)} rows")
