"""Guard your flows against nondeterminism in your own test suite.

Export real executions (``engine export ID > tests/histories/order-1.json``), check
the files in, and assert that the current code still replays every one of them::

    import pytest
    from flow_api.testing import assert_replays, history_files

    @pytest.mark.parametrize("history", history_files("tests/histories"), ids=lambda p: p.stem)
    def test_flows_replay(history):
        assert_replays(history, "flows/")

A change that would break executions in flight (a call added, removed, renamed or
reordered) fails the test with the seq, both calls, both source lines and the cause.

Why this module imports the engine: flow scripts import only ``flow_api``, and
``flow_api`` never imports ``engine`` (the engine implements flow_api's runtime, not
the other way round). This module is not for flow scripts but for their tests, which
need the engine's replay; it imports it lazily, inside each function, so that
``import flow_api`` (and ``import flow_api.testing``) stays free of the engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.inspect import ReplayResult

History = str | Path | dict[str, Any]


def replay_history(history: History, flow_file: str | Path | None = None) -> ReplayResult:
    """Replay an exported history with no side effects.

    Args:
        history: a file written by ``engine export``, or its parsed JSON.
        flow_file: the flow's code to try: a ``.py`` file, or a folder holding
            ``<flow>.py`` (or ``<project>/<flow>.py``). None replays the source the
            execution ran, as stored in the history.

    Returns:
        The ``ReplayResult``: ``.consistent``, and ``.divergence`` (seq, both calls,
        both source lines, likely cause) when it is not.
    """
    from engine.history_file import replay_file

    return replay_file(history, flow_file)


def assert_replays(history: History, flow_file: str | Path | None = None) -> ReplayResult:
    """Like ``replay_history``, but raise ``AssertionError`` explaining the divergence."""
    from engine.inspect import describe

    result = replay_history(history, flow_file)
    if not result.consistent:
        raise AssertionError("\n".join(describe(result)))
    return result


def history_files(directory: str | Path, pattern: str = "*.json") -> list[Path]:
    """The history files in ``directory``, sorted: ready for ``pytest.mark.parametrize``."""
    return sorted(Path(directory).glob(pattern))
