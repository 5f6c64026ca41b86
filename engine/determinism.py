"""The static determinism check: calls in flow source that differ between runs.

A handler is re-run on every replay, so code outside ``this.step`` must compute the
same thing each time. This module reads a flow's source (``ast``, never running it)
and points at what would not: the clock, random numbers, new uuids, the environment,
files, the network, threads, and loops over a ``set`` whose order (the hash seed)
decides the order of flow_api calls. Code that only runs inside ``this.step(fn, ...)``
(``fn`` by name, a lambda, ``functools.partial``, and whatever only they call) runs
once and is recorded, so it is not reported.

A comment containing ``engine: allow-nondeterminism`` on the reported line silences
that finding (for a value that is the same everywhere, or deliberately not replayed).
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Iterable, Iterator
from pathlib import Path

import msgspec

from engine.errors import EngineError
from engine.flows import flow_files
from store.base import Store

#: A comment with this text on a reported line silences the finding.
ALLOW_MARKER = "engine: allow-nondeterminism"

_CLOCK = ("reads the clock, which differs between runs", "this.now()")
_RANDOM = ("draws random values that differ between runs", "this.random() (or random.Random(this.random()))")
_UUID = ("makes a new id on every run", "this.uuid()")
_ENV = ("reads the environment, which differs between workers and runs", "inputs, a setting or this.step(...)")
_FILES = ("touches files, which can change between runs (and it is done again on every replay)", "this.step(...)")
_NETWORK = ("talks to the network: answers differ between runs (and it is done again on every replay)", "this.step(...)")
_THREADS = (
    "runs code on other threads, in an order that differs between runs",
    "child flows (this.flow(..., wait=False) and this.wait_for)",
)
_SET_LOOP = "goes in set order, which differs between runs (hash seed), and the loop calls flow_api in that order"

#: Calls (by qualified name) that differ between runs.
_CALLS: dict[str, tuple[str, str]] = {
    **dict.fromkeys(["time.time", "time.time_ns", "time.monotonic", "time.monotonic_ns", "time.perf_counter",
                     "time.perf_counter_ns", "datetime.datetime.now", "datetime.datetime.utcnow",
                     "datetime.datetime.today", "datetime.date.today"], _CLOCK),
    **dict.fromkeys(["uuid.uuid1", "uuid.uuid4"], _UUID),
    **dict.fromkeys(["random.SystemRandom", "os.urandom"], _RANDOM),
    **dict.fromkeys(["os.getenv", "os.getenvb"], _ENV),
    **dict.fromkeys(["open", "io.open", "os.listdir", "os.scandir", "os.stat", "os.path.exists", "os.path.isfile",
                     "os.path.isdir", "os.path.getmtime", "os.path.getsize", "glob.glob"], _FILES),
    **dict.fromkeys(["threading.Thread", "threading.Timer", "_thread.start_new_thread",
                     "concurrent.futures.ThreadPoolExecutor", "concurrent.futures.ProcessPoolExecutor",
                     "multiprocessing.Process", "multiprocessing.Pool"], _THREADS),
}
#: Calls that read the clock only when given no time to convert.
_CLOCK_WITHOUT_ARGS = {"time.localtime", "time.gmtime", "time.ctime", "time.asctime"}
#: Whole modules whose calls differ between runs (exceptions and ``_NOT_CALLS`` aside).
_MODULES: dict[str, tuple[str, str]] = {
    "random.": _RANDOM, "secrets.": _RANDOM,
    **dict.fromkeys(["socket.", "urllib.request.", "requests.", "httpx.", "http.client.", "urllib3.", "aiohttp."],
                    _NETWORK),
}
#: Same answer every run: building a request object, seeding the module generator.
_NOT_CALLS = {"urllib.request.Request", "random.seed"}
#: Names that are the environment itself (reported wherever they are read).
_ENV_NAMES = {"os.environ", "os.environb"}
#: ``pathlib.Path(...).<method>()`` that touches files.
_PATH_IO = {"read_text", "read_bytes", "write_text", "write_bytes", "open", "exists", "is_file", "is_dir",
            "iterdir", "glob", "rglob", "stat"}
_BUILTINS = {"open", "set", "frozenset", "list", "tuple", "enumerate", "iter"}
_SET_METHODS = {"union", "intersection", "difference", "symmetric_difference", "copy"}
_SET_OPS = (ast.BitOr, ast.BitAnd, ast.Sub, ast.BitXor)
_SET_ANNOTATIONS = {"set", "frozenset", "Set", "FrozenSet", "AbstractSet", "MutableSet"}
_Def = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
_Comprehension = ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp


class Finding(msgspec.Struct, frozen=True):
    """One call that differs between runs: where, what differs, and what to use instead."""

    file: str
    line: int
    what: str
    use: str

    def text(self) -> str:
        """``file:line: what; use X instead`` (one line, as the CLI prints it)."""
        return f"{self.file}:{self.line}: {self.what}; use {self.use} instead"


class NondeterministicFlowError(EngineError):
    """``--strict`` refused flow source with findings (they are listed before this error)."""

    def __init__(self, findings: list[Finding], consequence: str) -> None:
        files = ", ".join(sorted({f.file for f in findings}))
        super().__init__(
            f"--strict: {len(findings)} line(s) of {files} differ between runs (listed above), {consequence}: "
            f"fix each as its line says, or end the line with `# {ALLOW_MARKER}` where it is safe"
        )
        self.findings = findings


def scan_source(source: str, filename: str) -> list[Finding]:
    """The findings in one flow's source, by line; none if it does not parse (loading
    the flow reports that)."""
    try:
        tree = ast.parse(source, filename)
    except (SyntaxError, ValueError):
        return []
    allowed = _allowed_lines(source)
    found = {(line, rule) for line, rule in _Scanner(tree).scan() if line not in allowed}
    return [Finding(filename, line, what, use) for line, (what, use) in sorted(found)]


def scan_file(path: str | Path) -> list[Finding]:
    """The findings in one flow file (none if it cannot be read: registering it says why)."""
    try:
        source = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    return scan_source(source, str(path))


def scan_files(paths: Iterable[str | Path]) -> list[Finding]:
    """The findings in each of ``paths``, file by file."""
    return [f for p in paths for f in scan_file(p)]


def scan_directory(directory: str | Path) -> list[Finding]:
    """The findings in every flow file that ``engine flows sync`` would register."""
    return scan_files(path for path, _project in flow_files(directory))


def scan_flow(store: Store, name: str) -> list[Finding]:
    """The findings in the current version of the registered flow ``name`` (none if unknown)."""
    found = store.get_flow(name)
    return scan_source(found.source, found.path or name) if found is not None else []


def _allowed_lines(source: str) -> set[int]:
    """The lines whose comment carries ``ALLOW_MARKER``."""
    lines = set()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT and ALLOW_MARKER in tok.string:
                lines.add(tok.start[0])
    except (tokenize.TokenError, SyntaxError):
        pass
    return lines


class _Scanner:
    """Walks the code a replay runs: module-level statements, ``handler`` and every
    function or class they name, except what is handed to ``this.step``."""

    def __init__(self, tree: ast.Module) -> None:
        self.aliases = _aliases(tree)
        self.module_names = _bound_at_module_level(tree)
        self.defs: dict[str, list[_Def]] = {}
        for node in ast.walk(tree):
            if isinstance(node, _Def):
                self.defs.setdefault(node.name, []).append(node)
        handlers = [d for d in self.defs.get("handler", []) if not isinstance(d, ast.ClassDef)]
        self.api_names = {"this", "system"}
        for h in handlers:
            self.api_names.update(a.arg for a in h.args.args[:2])
        self.step_refs: set[int] = set()  # Name and Lambda nodes handed to this.step
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _is_step_call(node):
                self._mark_step_target(node.args[0])
        self.module_sets = _set_names(tree.body, self, set())
        self.roots: list[ast.Module | _Def] = [tree]
        self.roots.extend(handlers if handlers else [d for d in tree.body if isinstance(d, _Def)])

    def _mark_step_target(self, target: ast.expr) -> None:
        if isinstance(target, (ast.Name, ast.Lambda)):
            self.step_refs.add(id(target))
        elif isinstance(target, ast.Call) and self.qualname(target.func) in ("functools.partial", "partial") and target.args:
            self._mark_step_target(target.args[0])

    def qualname(self, node: ast.AST) -> str | None:
        """``time.time`` for ``now`` after ``from time import time as now``; None if not an import or builtin."""
        if isinstance(node, ast.Name):
            if node.id in self.aliases:
                return self.aliases[node.id]
            return node.id if node.id in _BUILTINS and node.id not in self.module_names else None
        if isinstance(node, ast.Attribute):
            base = self.qualname(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def scan(self) -> Iterator[tuple[int, tuple[str, str]]]:
        """(line, (what, use)) of every finding in the code a replay runs."""
        seen: set[int] = set()
        todo = list(self.roots)
        while todo:
            unit = todo.pop()
            if id(unit) in seen:
                continue
            seen.add(id(unit))
            if isinstance(unit, ast.ClassDef):  # a class that is used: any of its methods may run
                todo.extend(n for n in unit.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))
            sets = self.module_sets if isinstance(unit, ast.Module) else _set_names(unit.body, self, self.module_sets, unit)
            for node in _nodes(unit.body, self.step_refs):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and id(node) not in self.step_refs:
                    todo.extend(self.defs.get(node.id, []))
                yield from self._check(node, sets)

    def _check(self, node: ast.AST, sets: set[str]) -> Iterator[tuple[int, tuple[str, str]]]:
        if isinstance(node, ast.Call):
            rule = self._call_rule(node)
            if rule is not None:
                yield node.lineno, rule
        elif isinstance(node, (ast.Attribute, ast.Name)) and isinstance(node.ctx, ast.Load):
            name = self.qualname(node)
            if name in _ENV_NAMES:
                yield node.lineno, (f"{_shown(node, name, call=False)} {_ENV[0]}", _ENV[1])
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            found = _set_expr(node.iter, sets, self)
            if found is not None and self._feeds_api(node.body):
                yield node.lineno, _set_loop(found)
        elif isinstance(node, _Comprehension):
            parts: list[ast.expr] = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
            for gen in node.generators:
                found = _set_expr(gen.iter, sets, self)
                if found is not None and self._feeds_api(parts):
                    yield node.lineno, _set_loop(found)

    def _call_rule(self, call: ast.Call) -> tuple[str, str] | None:
        func = call.func
        name = self.qualname(func)
        if name is None:
            if (isinstance(func, ast.Attribute) and func.attr in _PATH_IO and isinstance(func.value, ast.Call)
                    and self.qualname(func.value.func) in ("pathlib.Path", "pathlib.PurePath")):
                return f"pathlib.Path(...).{func.attr}() {_FILES[0]}", _FILES[1]
            return None
        if name == "random.Random":  # seeded, it gives the same numbers every run
            return None if call.args or call.keywords else (f"{_shown(func, name)} without a seed {_RANDOM[0]}", _RANDOM[1])
        rule = _CALLS.get(name)
        if rule is None and name in _CLOCK_WITHOUT_ARGS and not call.args:
            rule = _CLOCK
        if rule is None and name not in _NOT_CALLS and not name.endswith(("Error", "Exception")):
            rule = next((r for prefix, r in _MODULES.items() if name.startswith(prefix)), None)
        return (f"{_shown(func, name)} {rule[0]}", rule[1]) if rule else None

    def _feeds_api(self, body: Iterable[ast.AST]) -> bool:
        """Does ``body`` call ``this.``/``system.`` methods, or pass ``this``/``system`` on?"""
        for node in _nodes(body, self.step_refs):
            if not isinstance(node, ast.Call):
                continue
            if _root_name(node.func) in self.api_names:
                return True
            if any(isinstance(a, ast.Name) and a.id in self.api_names for a in node.args):
                return True
        return False


def _nodes(body: Iterable[ast.AST], skip: set[int]) -> Iterator[ast.AST]:
    """Every node of ``body`` that runs with it: not into nested functions or classes
    (their own units) nor into lambdas handed to ``this.step``."""
    stack = list(body)[::-1]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, _Def) or id(node) in skip:
            if isinstance(node, _Def):  # decorators and defaults run where the def is
                stack.extend(node.decorator_list)
                if not isinstance(node, ast.ClassDef):
                    stack.extend(d for d in [*node.args.defaults, *node.args.kw_defaults] if d is not None)
            continue
        stack.extend(reversed(list(ast.iter_child_nodes(node))))


def _is_step_call(node: ast.Call) -> bool:
    return (isinstance(node.func, ast.Attribute) and node.func.attr == "step"
            and isinstance(node.func.value, ast.Name) and bool(node.args))


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _shown(node: ast.AST, name: str, *, call: bool = True) -> str:
    """``time.time()``, and the name it is written as where that differs: ``time.time() (as now())``."""
    written, parens = ast.unparse(node), "()" if call else ""
    return f"{name}{parens}" if written == name else f"{name}{parens} (as {written}{parens})"


def _set_loop(iterated: ast.AST) -> tuple[str, str]:
    text = _short(iterated)
    return f"`{text}` {_SET_LOOP}", f"sorted({text})"


def _short(node: ast.AST, width: int = 40) -> str:
    text = " ".join(ast.unparse(node).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _set_expr(node: ast.AST, sets: set[str], scanner: _Scanner) -> ast.AST | None:
    """The set that ``node`` iterates in the order of (itself, or the set inside a list,
    tuple or enumeration of one), as far as the source shows; else None."""
    if isinstance(node, (ast.Set, ast.SetComp)) or (isinstance(node, ast.Name) and node.id in sets):
        return node
    if isinstance(node, ast.BinOp) and isinstance(node.op, _SET_OPS):
        return node if _set_expr(node.left, sets, scanner) or _set_expr(node.right, sets, scanner) else None
    if isinstance(node, ast.Call):
        name = scanner.qualname(node.func)
        if name in ("set", "frozenset"):
            return node
        if name in ("list", "tuple", "enumerate", "iter") and node.args:
            return _set_expr(node.args[0], sets, scanner)
        if isinstance(node.func, ast.Attribute) and node.func.attr in _SET_METHODS:
            return node if _set_expr(node.func.value, sets, scanner) else None
    return None


def _set_names(body: list[ast.stmt], scanner: _Scanner, outer: set[str], unit: ast.AST | None = None) -> set[str]:
    """Names that hold a set wherever ``body`` assigns them (and ``outer`` ones it does not assign)."""
    assigned: dict[str, list[ast.AST | None]] = {}
    if isinstance(unit, (ast.FunctionDef, ast.AsyncFunctionDef)):
        for arg in [*unit.args.posonlyargs, *unit.args.args, *unit.args.kwonlyargs]:
            assigned.setdefault(arg.arg, []).append(ast.Set(elts=[]) if _set_annotation(arg.annotation) else None)
    for node in _nodes(body, set()):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, []).append(node.value)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            value = ast.Set(elts=[]) if _set_annotation(node.annotation) else node.value
            assigned.setdefault(node.target.id, []).append(value)
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.With, ast.AsyncWith, ast.NamedExpr)):
            for name in _target_names(node):
                assigned.setdefault(name, []).append(None)
    sets = {n for n in outer if n not in assigned}
    for _ in range(3):  # a set built from another set
        sets |= {n for n, values in assigned.items() if values and all(
            v is not None and _set_expr(v, sets, scanner) is not None for v in values)}
    return sets


def _target_names(node: ast.AST) -> list[str]:
    targets: list[ast.AST] = []
    if isinstance(node, (ast.For, ast.AsyncFor, ast.NamedExpr)):
        targets = [node.target]
    elif isinstance(node, (ast.With, ast.AsyncWith)):
        targets = [i.optional_vars for i in node.items if i.optional_vars is not None]
    return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]


def _set_annotation(annotation: ast.expr | None) -> bool:
    if isinstance(annotation, ast.Subscript):
        annotation = annotation.value
    if isinstance(annotation, ast.Attribute):
        return annotation.attr in _SET_ANNOTATIONS
    return isinstance(annotation, ast.Name) and annotation.id in _SET_ANNOTATIONS


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> what it imports: ``dt`` -> ``datetime``, ``now`` -> ``time.time``."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    aliases[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                if alias.name != "*":
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def _bound_at_module_level(tree: ast.Module) -> set[str]:
    """Names the module itself binds (so a flow's own ``open`` is not the builtin)."""
    names = set()
    for node in tree.body:
        if isinstance(node, _Def):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    return names
