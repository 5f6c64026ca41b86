"""Flow scripts: registering them from files, and loading a pinned version's handler."""

from __future__ import annotations

import linecache
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from engine.errors import EngineError, text_of
from store.base import Store
from store.model import source_version

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_. -]{0,199}$")


class FlowLoadError(EngineError):
    """A flow's script cannot be compiled or has no ``handler``."""


class FlowExitError(FlowLoadError):
    """A flow's script raises ``SystemExit`` (``sys.exit()``) or another ``BaseException`` at
    module level: loading it must not end the process that loads it."""


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


class FlowExitsError(EngineError):
    """A flow file whose script exits at module level: ``flows sync`` refuses it, naming it."""


def _shown(path: Path) -> str:
    """A path for a message, non-UTF-8 bytes of its name written as ``\\xNN``."""
    return str(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _text_path(path: Path) -> Path:
    """``path`` if its name and folders are valid text (they are stored and shown)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise EngineError(
            f"the path of flow file {_shown(path)} is not UTF-8; rename the file (and its folders) in UTF-8"
        ) from None
    return path


def check_flow_name(name: str) -> str:
    """Refuse names that could escape a folder or confuse the CLI (``..``, ``/``)."""
    if not _NAME.match(name) or ".." in name:
        raise EngineError(
            f"invalid flow name {name!r}: use letters, digits, spaces, '_', '-' and '.', "
            "without path separators or '..'"
        )
    return name


def sync_directory(
    store: Store, directory: str | Path, *, keep_projects: bool = False,
    origin: Callable[[Path], str] | None = None, strict: bool = False,
) -> list[SyncedFlow]:
    """Register every ``*.py`` in ``directory`` (project ``default``) and in its
    sub-folders (project = the sub-folder's name) as a new version of the flow named
    after the file. Unchanged files keep their version. With ``keep_projects``
    (``engine run``, which only sees one folder) flows already registered keep their
    project. ``origin(file)``: where the store says a file came from (default: its path).
    A file that cannot be read is skipped, one that does not load (a syntax error) is
    registered all the same; with ``strict`` either refuses the whole sync (an automatic
    sync, which no one watches, must not replace working flows with broken ones)."""
    found = []
    for path, project in flow_files(directory):
        try:  # one file that cannot be a flow must not stop the others (nor `engine run` of one)
            name = check_flow_name(_text_path(path).stem)
            registered = store.get_flow(name) if keep_projects else None
            found.append((path, registered.project if registered else project, _read_flow(store, path, strict)))
        except FlowExitsError:
            raise  # every load of it would end its loader: refuse the whole sync, naming it
        except EngineError as exc:
            shown, why = origin(path) if origin else _shown(path), str(exc)
            why = why if shown in why else f"{why} (file {shown})"
            if strict:
                raise EngineError(f"{why}; nothing was registered") from None
            log.warning("%s; skipped it", why)
    return [register_file(store, path, project, source, origin(path) if origin else None)
            for path, project, source in found]  # all files read first


def flow_files(directory: str | Path) -> list[tuple[Path, str]]:
    """The flow files of a flows folder and their projects: ``*.py`` in it (project
    ``default``) and in its sub-folders (project = the sub-folder's name), in order,
    leaving out names that start with ``_`` or ``.``."""
    root = Path(directory)
    if not root.is_dir():
        raise EngineError(f"flows folder {root} does not exist or is not a folder")
    return [
        (path, "default" if path.parent == root else path.parent.name)
        for path in sorted(root.glob("*.py")) + sorted(root.glob("*/*.py"))
        if not path.name.startswith(("_", ".")) and not path.parent.name.startswith((".", "_"))
    ]


def register_file(
    store: Store, path: Path, project: str | None = None, source: str | None = None, where: str | None = None,
) -> SyncedFlow:
    """Register one flow file; ``project`` None keeps a registered flow's project (else ``default``).
    ``source``: the file's text, if ``_read_flow`` has read it already; ``where``: the
    origin to record (default: the file's path)."""
    where = where or str(_text_path(path.resolve()))
    name = check_flow_name(path.stem)
    source = _read_flow(store, path) if source is None else source
    before = store.get_flow(name)
    if project is None:
        project = before.project if before is not None else "default"
    version = store.put_flow(name, source, project=project, path=where)
    return SyncedFlow(name, project, version, str(path), before is None or before.version != version)


def _read_flow(store: Store, path: Path, strict: bool = False) -> str:
    """The source of flow file ``path``. A new version is loaded once first: one that exits
    at module level (``sys.exit()``) is refused, since every load of it would end its loader
    (with ``strict``, one that does not load at all too)."""
    name = check_flow_name(path.stem)
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise EngineError(
            f"flow file {_shown(path)} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at position "
            f"{exc.start}); save it as UTF-8"
        ) from None
    except OSError as exc:
        raise EngineError(f"cannot read flow file {_shown(path)}: {exc.strerror or exc}") from None
    before = store.get_flow(name)
    if before is None or before.version != source_version(source):
        try:
            compile_flow(name, source_version(source), source, str(path.resolve()))
        except FlowExitError as exc:
            raise FlowExitsError(f"flow file {_shown(path)}: {exc}; nothing was registered") from None
        except FlowLoadError:
            if strict:
                raise
            # else registered all the same: its executions end with this error, `engine check` shows it
    return source


class FlowLoader:
    """Compiles and caches handlers by flow version (content hash)."""

    def __init__(self, store: Store, cache_size: int = 256) -> None:
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
    except Exception as exc:
        raise FlowLoadError(f"flow {name!r} failed while loading: {type(exc).__name__}: {text_of(exc)}") from exc
    except BaseException as exc:  # noqa: B036 -- sys.exit() in a flow must not end the worker or the CLI
        args = ", ".join(repr(arg) for arg in exc.args)
        raise FlowExitError(
            f"flow {name!r} raises {type(exc).__name__}({args}) at module level while loading; "
            "a flow ends by returning from its handler: remove the exit from the module's top level"
        ) from None
    handler = module_globals.get("handler")
    if not callable(handler):
        raise FlowLoadError(
            f"flow {name!r} has no handler: define `def handler(system, this, inputs):` in its script"
        )
    return LoadedFlow(name, version, filename, module_globals, handler)
