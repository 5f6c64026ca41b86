"""Dependencies flow one way: cli -> engine -> store, engine -> flow_api.

Every module of each package is parsed (not imported) and all its imports are checked,
including imports inside functions and under ``if TYPE_CHECKING:``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = ("cli", "engine", "store", "flow_api")

#: package -> the packages of ours it must never import
FORBIDDEN = {
    "store": {"engine", "flow_api", "cli"},
    "flow_api": {"engine", "store", "cli"},
    "engine": {"cli"},
}

#: Deliberate exceptions, each only for imports deferred into functions (never at import
#: time): flow_api.testing is for the test suites of flow authors, not for flow scripts,
#: and needs the engine's replay (see its docstring). ``import flow_api.testing`` must
#: still load no engine module; test_importing_flow_api_loads_nothing_of_the_engine checks it.
LAZY_ALLOWED = {
    "flow_api/testing.py": {"engine"},
}


def imported_modules(source: str, module: str, *, lazy: bool = True) -> dict[str, int]:
    """Dotted names imported by ``source`` (the module ``module``), with a line of each:
    ``import a.b`` gives ``a.b``, ``from a import b`` gives ``a.b`` (a name in ``a`` or its
    submodule ``a.b``: ``module_graph`` tells them apart).

    Relative imports are resolved against ``module``'s package. With ``lazy=False`` only
    the imports that run when the module is imported count (not those inside functions
    or under ``if TYPE_CHECKING:``)."""
    found: dict[str, int] = {}
    package = module.split(".")

    def visit(node: ast.AST, deferred: bool) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            deferred = True
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, deferred)
            return
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names = [f"{base}.{alias.name}" for alias in node.names]
        if lazy or not deferred:
            for name in names:
                found.setdefault(name, node.lineno)  # type: ignore[attr-defined]
        for child in ast.iter_child_nodes(node):
            visit(child, deferred)

    visit(ast.parse(source), False)
    return found


def imported_packages(source: str, module: str, *, lazy: bool = True) -> dict[str, int]:
    """Top-level packages imported by ``source`` (see ``imported_modules``), with a line of each."""
    found: dict[str, int] = {}
    for name, line in imported_modules(source, module, lazy=lazy).items():
        found.setdefault(name.split(".")[0], line)
    return found


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts)


def test_every_package_has_modules():
    for package in OURS:
        assert len(modules(package)) >= 2, package


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_import_direction(package):
    violations = []
    for path in modules(package):
        source, name = path.read_text(encoding="utf-8"), module_name(path)
        imports = imported_packages(source, name)
        at_import_time = imported_packages(source, name, lazy=False)
        allowed = LAZY_ALLOWED.get(path.relative_to(ROOT).as_posix(), set())
        for bad in sorted(FORBIDDEN[package] & imports.keys()):
            if bad not in allowed or bad in at_import_time:
                violations.append(f"{path.relative_to(ROOT)}:{imports[bad]} imports {bad}")
    assert violations == [], f"{package} must not import {sorted(FORBIDDEN[package])}:\n" + "\n".join(violations)


def test_the_checker_sees_every_form_of_import():
    source = (
        "import engine.api\n"
        "from cli import main\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from store.model import Commit\n"
        "def later():\n"
        "    import flow_api as api\n"
        "from . import sibling\n"
        "from ..engine import replay\n"
    )
    found = imported_packages(source, "store.sub.module")
    assert {"engine", "cli", "store", "flow_api", "typing"} <= found.keys()
    assert found["cli"] == 2
    # `from ..engine import replay` inside store/sub/module.py means store.engine, not engine
    assert imported_packages("from ..engine import replay\n", "store.sub.module").keys() == {"store"}
    assert imported_packages("from .. import x\n", "flow_api.a.b").keys() == {"flow_api"}


def test_importing_flow_api_loads_nothing_of_the_engine():
    """What a flow script (or a flow author's test) gets by importing any flow_api module."""
    names = [module_name(p).removesuffix(".__init__") for p in modules("flow_api")]
    code = (
        f"import sys, importlib\n"
        f"for name in {names!r}:\n"
        f"    importlib.import_module(name)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'engine', 'store', 'cli'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_sqlite_worker_does_not_import_the_postgresql_driver():
    """psycopg (and asyncio, which it imports) cost a process start ~100 ms: only a
    PostgreSQL store loads it. Restarting a worker on SQLite must not pay for it."""
    code = (
        "import sys, tempfile, os\n"
        "import cli.main, engine.api, engine.worker\n"
        "engine = engine.api.Engine(os.path.join(tempfile.mkdtemp(), 'e.db'))\n"
        "engine.register_flow('f', 'def handler(system, this, inputs):\\n    return None\\n')\n"
        "engine.run_until_ended(engine.start('f'))\n"
        "print(sorted({'psycopg', 'asyncio'} & set(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_lazy_imports_are_told_apart():
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from engine.inspect import ReplayResult\n"
        "else:\n"
        "    import store\n"
        "def f():\n"
        "    from engine.history_file import replay_file\n"
    )
    assert imported_packages(source, "flow_api.testing").keys() == {"typing", "engine", "store"}
    assert imported_packages(source, "flow_api.testing", lazy=False).keys() == {"typing", "store"}


def test_only_engine_server_speaks_http():
    """The web framework stays inside engine/server (which the rest of engine never
    imports), and the CLI loads it only for `engine serve`."""
    web = {"starlette", "uvicorn", "httpx"}
    violations = []
    for package in ("engine", "store", "flow_api"):
        for path in modules(package):
            if path.is_relative_to(ROOT / "engine" / "server"):
                continue
            source, name = path.read_text(encoding="utf-8"), module_name(path)
            if web & imported_packages(source, name).keys() or "engine.server" in source:
                violations.append(str(path.relative_to(ROOT)))
    assert violations == []
    code = "import sys, cli.main\nprint(sorted({m.split('.')[0] for m in sys.modules} & %r))" % web
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
