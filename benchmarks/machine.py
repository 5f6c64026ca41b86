"""How busy the machine's cores were over a span (/proc/stat), to tell a CPU bound."""

from __future__ import annotations

from pathlib import Path


def _ticks() -> tuple[int, int]:
    """(busy, total) jiffies summed over all cores."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


class CpuMeter:
    """Started at construction; :meth:`busy_percent` is the share of all cores busy since."""

    def __init__(self) -> None:
        self._start = _ticks()

    def busy_percent(self) -> float:
        busy, total = _ticks()
        return 100.0 * (busy - self._start[0]) / max(1, total - self._start[1])
