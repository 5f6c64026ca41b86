import datetime as dt
from datetime import datetime

import flow_api


def handler(system, this, inputs):
    now = datetime.fromtimestamp(this.now(), tz=dt.timezone.utc)
    deadline = now + dt.timedelta(days=int(inputs.get("days", 1)))
    fixed = dt.datetime(2024, 1, 1)
    this.set_output(now=now.isoformat(), deadline=deadline.isoformat(), fixed=fixed.isoformat())
    return this.success("dated")
