"""Portable history files: one execution's log, as JSON, with the flow source it ran.

``engine export ID > h.json`` writes one; ``engine replay --history h.json`` and
``flow_api.testing.assert_replays`` replay it without the database it came from, so a
history from production can guard a flow against nondeterminism in CI. Values travel
as JSON: bytes come back as base64 text, tuples as lists. A file is data, not code: a flow
source in it runs only if it has the hash of the version it claims to be.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from engine.api import Engine
from engine.clock import system_clock
from engine.errors import EngineError
from engine.inspect import Recorded, ReplayResult, file_code, recorded, replay
from store.events import ALL_BODIES, Body, Event, EventBody, body_to_builtins
from store.model import source_version

FORMAT = "engine-history"
VERSION = 1

_BODIES: dict[str, type[Body]] = {str(cls.__struct_config__.tag): cls for cls in ALL_BODIES}

_EXECUTION_FIELDS = ("id", "type", "flow", "flow_version", "name", "status", "message", "parent_id", "root_id",
                     "depth", "project", "input_value", "output_value", "created_at", "started_at", "ended_at")


def event_json(event: Event) -> dict[str, Any]:
    """One event as ``{seq, kind, at, line, data}`` (``data`` as in ``engine history --json``)."""
    return {"seq": event.seq, "kind": event.kind, "at": event.at, "line": event.line, "data": body_to_builtins(event.body)}


def export_history(engine: Engine, execution_id: str) -> dict[str, Any]:
    """The portable history of one execution (id or unique prefix)."""
    row = engine.get(execution_id)
    rec = recorded(engine, row.id)
    execution = msgspec.to_builtins(row)
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": system_clock(),
        "execution": {f: execution[f] for f in _EXECUTION_FIELDS},
        "flow": {
            "name": row.flow,
            "version": row.flow_version,
            "path": rec.path,
            "source": rec.source,
        },
        "other_versions": {v: src for v, src in rec.sources.items() if v != row.flow_version},
        "events": [event_json(e) for e in rec.events],
    }


def load_history(source: str | Path | dict[str, Any]) -> Recorded:
    """Read a portable history (a path or the parsed dict) into a ``Recorded``."""
    where = "history" if isinstance(source, dict) else f"history file {source}"
    if isinstance(source, dict):
        data = source
    else:
        try:
            data = json.loads(Path(source).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EngineError(f"cannot read {where}: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise EngineError(f"{where} is not an engine history (write one with `engine export ID > FILE`)")
    if data.get("version", 0) > VERSION:
        raise EngineError(f"{where} has format version {data['version']}; this engine reads up to {VERSION}: upgrade it")
    try:
        ex, flow = data["execution"], data["flow"]
        events = [_event(e) for e in data["events"]]
        sources = {**data.get("other_versions", {}), **({ex.get("flow_version", ""): flow["source"]} if flow.get("source") else {})}
    except (KeyError, TypeError, msgspec.ValidationError) as exc:
        raise EngineError(f"{where} is damaged: {type(exc).__name__}: {exc}") from None
    if not events:
        raise EngineError(f"{where} has no events")
    for version, text in sources.items():
        if not isinstance(text, str) or source_version(text) != version:
            raise EngineError(
                f"{where}: the flow source given for version {version[:12] or '(none)'} of execution {ex.get('id')} does not "
                "have that version's hash, so the file was changed after export; refusing to run it: export the "
                "history again (`engine export ID > FILE`)"
            )
    return Recorded(
        ex["id"], ex["flow"], ex.get("flow_version", ""), ex.get("status", "?"), events,
        flow.get("source"), flow.get("path"), ex.get("name"), ex.get("project", "default"),
        ex.get("depth", 0), ex.get("root_id") or ex["id"], sources,
    )


def _event(item: dict[str, Any]) -> Event:
    data = item["data"]
    kind = data.get("kind", item.get("kind"))
    cls = _BODIES.get(kind)
    if cls is None:
        raise msgspec.ValidationError(f"event seq {item.get('seq')}: unknown kind {kind!r}")
    fields: list[Any] = [kind]
    for name in cls.__struct_fields__:
        if name not in data:
            break
        fields.append(data[name])
    body = msgspec.convert(fields, EventBody)
    return Event(int(item["seq"]), float(item["at"]), body, int(item.get("line") or 0))


def replay_file(history: str | Path | dict[str, Any], flow: str | Path | None = None) -> ReplayResult:
    """Replay a portable history against ``flow``: a flow file, or a folder holding
    ``<flow>.py`` or ``<project>/<flow>.py``; None replays the source stored in the history."""
    rec = load_history(history)
    if flow is None:
        return replay(rec)
    path = Path(flow)
    if path.is_dir():
        candidates = [path / f"{rec.flow}.py", path / rec.project / f"{rec.flow}.py"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise EngineError(f"no flow file for flow {rec.flow!r} in {path} (looked for {', '.join(map(str, candidates))})")
        path = found
    return replay(rec, file_code(path))
