"""Golden histories: a change to the event log format must be noticed, and logs written
by earlier versions must stay readable.

Each flow in ``tests/flows/golden/`` (``golden_*.py`` with an entry in ``GOLDEN``) is run
with fixed inputs; every execution of its tree is exported as

* ``history``: the list ``engine history ID --json`` prints ({seq, kind, at, line, data}),
* ``msgpack``: the hex of each event body exactly as the store keeps it,

after normalising what differs between runs: timestamps, execution ids, flow version
hashes, paths, now/random/uuid values and engine frames in tracebacks. The result is
compared with ``tests/histories/format-<FORMAT_VERSION>/<flow>.json``.

Regenerate after an intended change::

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden_histories.py

and review the diff. When the stored bytes change, the previous file is first copied to
``tests/histories/archive/``; files of earlier format versions and archived files are never
rewritten: they prove that logs written by an older engine still decode
(``test_checked_in_bytes_still_decode``), with fields added since read as their defaults.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

from store.events import (
    FORMAT_VERSION,
    EventBody,
    body_to_builtins,
    decode_body,
    encode_body,
)
from stores import run_sql

GOLDEN_FLOWS = (Path(__file__).parent / "flows" / "golden").resolve()
HISTORIES = Path(__file__).parent / "histories"
CURRENT = HISTORIES / f"format-{FORMAT_VERSION}"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

#: flow -> fixed inputs
GOLDEN = {
    "golden_commands": {"name": "golden", "n": 3},
    "golden_children": {},
    "golden_error": {"text": "not a number"},
}

#: (kind, field) of body values that differ on every run
VARYING = {
    ("sleep", "due_at"): 0.0,
    ("timer_fired", "at"): 0.0,
    ("wait", "deadline"): 0.0,
    ("now", "value"): 0.0,
    ("random", "value"): 0.0,
    ("uuid", "value"): "<uuid>",
    ("message", "deadline"): 0.0,
    ("attempt", "seconds"): 0.0,
}

#: (kind, field) of maps keyed by execution id: their order follows the random ids
UNORDERED = {("wait_done", "statuses"), ("wait_done", "failures")}


class Normaliser:
    """Replaces what differs between runs by stable placeholders."""

    def __init__(self, execution_ids: list[str], versions: dict[str, str]) -> None:
        self.replacements: list[tuple[str, str]] = []
        for n, execution_id in enumerate(execution_ids):
            self.replacements.append((execution_id, f"<exec:{n}>"))
        for version, name in versions.items():
            self.replacements.append((version, f"<version:{name}>"))
            self.replacements.append((version[:8], f"<v8:{name}>"))
        self.replacements.append((str(GOLDEN_FLOWS), "<flows>"))

    def text(self, value: str) -> str:
        for old, new in self.replacements:
            value = value.replace(old, new)
        return value

    def tree(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.tree(v) for v in value]
        if isinstance(value, dict):
            return {self.tree(k): self.tree(v) for k, v in value.items()}
        return value

    def data(self, data: dict[str, Any]) -> dict[str, Any]:
        """A body in its named (``history --json``) form."""
        out = self.tree(data)
        for field in out:
            if (out["kind"], field) in VARYING and out[field] is not None:
                out[field] = VARYING[(out["kind"], field)]
            if (out["kind"], field) in UNORDERED:
                out[field] = dict(sorted(out[field].items()))
        if isinstance(out.get("error"), dict):
            out["error"]["traceback"] = flow_frames_only(out["error"]["traceback"])
        return out

    def event(self, event: dict[str, Any]) -> dict[str, Any]:
        return {**event, "at": 0.0, "data": self.data(event["data"])}

    def body_hex(self, raw: bytes) -> str:
        """The stored bytes with the same normalisation applied, re-encoded by the body's own Struct."""
        data = self.data(body_to_builtins(decode_body(raw)))
        cls_fields = type(decode_body(raw)).__struct_fields__
        body = msgspec.convert([data["kind"], *(data[f] for f in cls_fields)], EventBody)
        return encode_body(body).hex()


def flow_frames_only(traceback: str) -> str:
    """Keep the frames of flow scripts and the exception; drop engine frames (their line
    numbers change with every edit of the engine) and caret lines (they vary by Python)."""
    out, keep = [], True
    for line in traceback.splitlines():
        if line.startswith('  File "'):
            keep = "<flows>/" in line
        elif not line.startswith("    "):
            keep = True
        if keep and not re.fullmatch(r"\s*[\^~]+\s*", line):
            out.append(line)
    return "\n".join(out)


def export(engine, run_cli, db_url: str, flow: str, inputs: dict[str, Any]) -> dict[str, Any]:
    engine.sync_flows(GOLDEN_FLOWS)
    top = engine.start(flow, inputs)
    row = engine.run_until_ended(top)
    assert row.ended, (row.status, row.message)

    tree = [top]
    for execution_id in tree:  # children in creation order, depth first by discovery
        tree += [e.body.child_id for e in engine.history(execution_id) if e.kind == "child"]
    versions = {f.version: f.name for name in GOLDEN_FLOWS.glob("*.py") for f in engine.store.flow_versions(name.stem)}
    norm = Normaliser(tree, versions)

    executions = []
    for execution_id in tree:
        shown = run_cli("history", execution_id, "--json")
        assert shown.exit_code == 0, shown.stderr
        history = json.loads(shown.stdout)
        bodies = [bytes(b) for (b,) in run_sql(db_url, "SELECT body FROM events WHERE execution_id = ? ORDER BY seq", (execution_id,))]
        assert len(bodies) == len(history)
        for stored in bodies:
            assert encode_body(decode_body(stored)) == stored  # canonical, so re-encoding normalised bodies is faithful
        ats = [e["at"] for e in history]
        assert ats == sorted(ats)
        executions.append({
            "id": norm.text(execution_id),
            "flow": engine.get(execution_id).flow,
            "status": engine.get(execution_id).status,
            "history": [norm.event(e) for e in history],
            "msgpack": [norm.body_hex(b) for b in bodies],
        })
    return {
        "_comment": "Generated by tests/test_golden_histories.py; regenerate with UPDATE_GOLDEN=1 (see its docstring).",
        "flow": flow,
        "inputs": inputs,
        "format_version": FORMAT_VERSION,
        "executions": executions,
    }


@pytest.mark.parametrize("flow", sorted(GOLDEN))
def test_history_matches_golden(flow, engine, run_cli, db_url):
    got = export(engine, run_cli, db_url, flow, GOLDEN[flow])
    path = CURRENT / f"{flow}.json"
    if UPDATE:
        archive_if_encoding_changed(path, got)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(got, indent=1, sort_keys=False) + "\n")
        return
    assert path.exists(), f"no golden file {path}; create it with UPDATE_GOLDEN=1"
    expected = json.loads(path.read_text())
    for want, have in zip(expected["executions"], got["executions"], strict=True):
        assert have["history"] == want["history"], (
            f"the `engine history --json` of {flow} ({want['id']}) changed; if intended, regenerate with UPDATE_GOLDEN=1"
        )
        assert have["msgpack"] == want["msgpack"], (
            f"the stored encoding of {flow} ({want['id']}) changed: logs already written must still decode. "
            "Make the change additive (new kinds, new fields with defaults at the end) and regenerate with UPDATE_GOLDEN=1"
        )
    assert got == expected


def archive_if_encoding_changed(path: Path, new: dict[str, Any]) -> None:
    """Before a regeneration overwrites bytes written by an older engine, keep them under
    ``histories/archive/``: they stay a test that old logs still decode."""
    if not path.exists():
        return
    old_text = path.read_text()
    old = json.loads(old_text)
    if [e["msgpack"] for e in old["executions"]] == [e["msgpack"] for e in new["executions"]]:
        return
    digest = hashlib.sha256(old_text.encode()).hexdigest()[:8]
    archived = HISTORIES / "archive" / f"{path.parent.name}-{path.stem}-{digest}.json"
    archived.parent.mkdir(parents=True, exist_ok=True)
    archived.write_text(old_text)


def field_default(field: msgspec.structs.FieldInfo) -> Any:
    if field.default_factory is not msgspec.NODEFAULT:
        return field.default_factory()
    return field.default


def as_written(decoded, written):
    """``decoded`` cut down to the keys ``written`` had, at every depth: a field added since
    to a nested struct (e.g. ``ErrorInfo.args``) does not count as a change."""
    if isinstance(written, dict) and isinstance(decoded, dict):
        return {k: as_written(decoded.get(k, "<missing>"), v) for k, v in written.items()}
    return decoded


def golden_files() -> list[Path]:
    return sorted(HISTORIES.rglob("*.json"))


def test_every_golden_flow_has_a_file():
    assert {p.stem for p in CURRENT.glob("*.json")} == set(GOLDEN)


@pytest.mark.parametrize("path", golden_files(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_checked_in_bytes_still_decode(path):
    """The bytes in every golden file, of every format version, decode with today's
    decoder to the same named data as when they were written."""
    golden = json.loads(path.read_text())
    kinds_seen = set()
    for execution in golden["executions"]:
        assert len(execution["msgpack"]) == len(execution["history"])
        for hexed, event in zip(execution["msgpack"], execution["history"]):
            body = decode_body(bytes.fromhex(hexed))
            decoded, written = body_to_builtins(body), event["data"]
            # every field written then reads back the same (a field removed or renamed fails here)
            assert as_written(decoded, written) == written, (path.name, event["seq"])
            # fields added since must have defaults, and an old log reads them as the default
            defaults = {f.name: field_default(f) for f in msgspec.structs.fields(type(body))}
            for field in decoded.keys() - written.keys():
                assert defaults[field] is not msgspec.NODEFAULT, (path.name, event["seq"], field)
                assert decoded[field] == msgspec.to_builtins(defaults[field]), (path.name, event["seq"], field)
            assert event["kind"] == event["data"]["kind"]
            kinds_seen.add(event["kind"])
        assert execution["history"][0]["data"]["format_version"] == golden["format_version"]
    assert "started" in kinds_seen


def test_the_golden_files_cover_the_core_kinds():
    kinds = {
        event["kind"]
        for path in CURRENT.glob("*.json")
        for execution in json.loads(path.read_text())["executions"]
        for event in execution["history"]
    }
    core = {
        "started", "ended", "cancelled", "log", "output", "now", "random", "uuid", "step", "failed", "sleep",
        "timer_fired", "child", "child_run", "child_cancel", "wait", "wait_done", "read", "setting_read",
        "setting_save", "setting_delete", "flow_read",
    }
    assert core <= kinds, sorted(core - kinds)
