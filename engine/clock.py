"""The one place that reads the wall clock; tests and benchmarks may pass their own."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]

system_clock: Clock = time.time
