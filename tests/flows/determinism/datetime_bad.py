import datetime as dt
from datetime import date, datetime

import flow_api


def handler(system, this, inputs):
    now = dt.datetime.now()  # <- found
    utc = datetime.utcnow()  # <- found
    today = date.today()  # <- found
    zoned = datetime.now(tz=dt.timezone.utc)  # <- found
    this.set_output(now=now.isoformat(), utc=utc.isoformat(), today=today.isoformat(), zoned=zoned.isoformat())
    return this.success("dated")
