"""Flow scripts: registering them from files, and loading a pinned version's handler."""

from __future__ import annotations

import linecache
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from engine.errors import EngineError, text_of
from store.sqlite import SqliteStore

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_. -]{0,199}$")


class FlowLoadError(EngineError):
    """A flow's script cannot be compiled or has no ``handler``."""


class SyncedFlow(msgspec.Struct, frozen=True):
    name: str
    project: str
    version: str
    path: str
    changed: bool


class LoadedFlow(msgspec.Struct, frozen=True):
    name: str
    version: str
    filename: str
    module_globals: dict[str, Any]
    handler: Callable[..., Any]


def check_flow_name(name: str) -> str:
    """Refuse names that could escape a folder or confuse the CLI (``..``, ``/``)."""
    if not _NAME.match(name) or ".." in name:
        raise EngineError(
            f"invalid flow name {name!r}: use letters, digits, spaces, '_', '-' and '.', "
            "without path separators or '..'"
        )
    return name


def sync_directory(store: SqliteStore, directory: str | Path, *, keep_projects: bool = False) -> list[SyncedFlow]:
    """Register every ``*.py`` in ``directory`` (project ``default``) and in its
    sub-folders (project = the sub-folder's name) as a new version of the flow named
    after the file. Unchanged files keep their version. With ``keep_projects``
    (``engine run``, which only sees one folder) flows already registered keep their
    project."""
    root = Path(directory)
    if not root.is_dir():
        raise EngineError(f"flows folder {root} does not exist or is not a folder")
    synced = []
    for path in sorted(root.glob("*.py")) + sorted(root.glob("*/*.py")):
        if path.name.startswith(("_", ".")) or path.parent.name.startswith((".", "_")):
            continue
        project = "default" if path.parent == root else path.parent.name
        registered = store.get_flow(path.stem) if keep_projects else None
        synced.append(register_file(store, path, registered.project if registered else project))
    return synced


def register_file(store: SqliteStore, path: Path, project: str | None = None) -> SyncedFlow:
    """Register one flow file; ``project`` None keeps a registered flow's project (else ``default``)."""
    name = check_flow_name(path.stem)
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EngineError(f"cannot read flow file {path}: {exc}") from exc
    before = store.get_flow(name)
    if project is None:
        project = before.project if before is not None else "default"
    version = store.put_flow(name, source, project=project, path=str(path.resolve()))
    return SyncedFlow(name, project, version, str(path), before is None or before.version != version)


class FlowLoader:
    """Compiles and caches handlers by flow version (content hash)."""

    def __init__(self, store: SqliteStore, cache_size: int = 256) -> None:
        self._store = store
        self._cache: OrderedDict[str, LoadedFlow] = OrderedDict()
        self._size = cache_size
        self._lock = threading.Lock()

    def load(self, version: str) -> LoadedFlow:
        with self._lock:
            loaded = self._cache.get(version)
            if loaded is not None:
                self._cache.move_to_end(version)
                return loaded
        found = self._store.get_flow_version(version)
        if found is None:
            raise FlowLoadError(f"flow version {version[:12]} is not in the database")
        loaded = compile_flow(found.name, found.version, found.source, found.path)
        with self._lock:
            self._cache[version] = loaded
            if len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return loaded


def compile_flow(name: str, version: str, source: str, path: str | None = None) -> LoadedFlow:
    """Compile a flow script and return its ``handler``; tracebacks and pdb show this
    version's lines even if the file has changed since."""
    filename = f"{path or name}@{version[:8]}"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    try:
        code = compile(source, filename, "exec")
    except SyntaxError as exc:
        raise FlowLoadError(f"flow {name!r} has a syntax error at line {exc.lineno}: {exc.msg}") from None
    module_globals: dict[str, Any] = {"__name__": f"flow_{name}", "__file__": path or filename}
    try:
        exec(code, module_globals)
    except (Exception, SystemExit, KeyboardInterrupt) as exc:  # sys.exit() at module level is a flow error too
        raise FlowLoadError(f"flow {name!r} failed while loading: {type(exc).__name__}: {text_of(exc)}") from exc
    handler = module_globals.get("handler")
    if not callable(handler):
        raise FlowLoadError(
            f"flow {name!r} has no handler: define `def handler(system, this, inputs):` in its script"
        )
    return LoadedFlow(name, version, filename, module_globals, handler)
