"""Nothing above ``store/`` names a backend: the engine, the CLI and flow_api use the
``Store`` protocol and ``store.errors``; ``--db`` picks the backend by its scheme.

The import check parses (does not import) every module, as test_import_direction does.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from engine.api import Engine

ROOT = Path(__file__).resolve().parent.parent

#: Modules that name SQLite above store/, each for a reason.
ALLOWED = {
    # the user-facing SQLITE connector: flows query their own SQLite files through it
    "engine/connectors/sqlite.py",
}

BACKEND_MODULES = ("sqlite3", "store.sqlite")


def imported_modules(source: str) -> dict[str, int]:
    """Every module (dotted, with ``from a import b`` also as ``a.b``) that ``source``
    imports anywhere, with a line of each."""
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.setdefault(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.setdefault(node.module, node.lineno)
            for alias in node.names:
                found.setdefault(f"{node.module}.{alias.name}", node.lineno)
    return found


def test_the_checker_sees_the_forms_of_import():
    source = "import sqlite3 as db\nfrom store.sqlite import SqliteStore\n"
    assert {"sqlite3", "store.sqlite", "store.sqlite.SqliteStore"} <= imported_modules(source).keys()
    assert imported_modules("def f():\n    from store import sqlite\n") == {"store": 2, "store.sqlite": 2}


def test_nothing_above_the_store_imports_sqlite_or_a_concrete_store():
    violations = []
    for package in ("engine", "cli", "flow_api"):
        for path in sorted((ROOT / package).rglob("*.py")):
            where = path.relative_to(ROOT).as_posix()
            if where in ALLOWED:
                continue
            source = path.read_text(encoding="utf-8")
            for name, line in imported_modules(source).items():
                if name in BACKEND_MODULES or name.split(".")[-1] == "SqliteStore":
                    violations.append(f"{where}:{line} imports {name}")
            if "SqliteStore" in source:
                violations.append(f"{where} names SqliteStore")
    assert violations == [], "use store.base.Store and store.errors instead:\n" + "\n".join(violations)


def test_unreachable_postgresql_url_is_one_line_and_creates_nothing(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli("ls", db="postgresql://bob:hunter2@127.0.0.1:1/engine")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "cannot connect to database postgresql://bob:***@127.0.0.1:1/engine" in result.stderr
    assert "hunter2" not in result.stderr  # the password is not echoed
    assert os.listdir(tmp_path) == []  # no SQLite file under a folder named "postgresql:"


@pytest.mark.parametrize("url", ["postgresql://bob:hunter2@127.0.0.1:xx/engine",
                                 "postgresql://bob:hunter2@127.0.0.1:1/engine?bogus=1"])
def test_a_postgresql_url_libpq_cannot_read_is_one_line(run_cli, tmp_path, monkeypatch, url):
    monkeypatch.chdir(tmp_path)
    result = run_cli("ls", db=url)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "cannot connect to database postgresql://bob:***@127.0.0.1:" in result.stderr
    assert "hunter2" not in result.stderr
    assert os.listdir(tmp_path) == []


def test_unknown_scheme_is_refused_naming_the_schemes(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli("ls", db="mysql://localhost/engine")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "unknown scheme 'mysql'" in result.stderr
    assert "sqlite:///" in result.stderr and "postgresql://" in result.stderr
    assert os.listdir(tmp_path) == []


@pytest.mark.sqlite_only("sqlite:/// URLs name SQLite files")
@pytest.mark.parametrize("form", ["relative", "absolute"])
def test_sqlite_url_opens_the_same_file_as_its_path(run_cli, flows_root, tmp_path, monkeypatch, form):
    monkeypatch.chdir(tmp_path)
    url = "sqlite:///data/engine.db" if form == "relative" else f"sqlite:///{tmp_path}/data/engine.db"
    (tmp_path / "data").mkdir()
    started = run_cli("run", str(flows_root / "hostile" / "ok.py"), "--detach", db=url)
    assert started.exit_code == 0, started.stderr
    eng = Engine(tmp_path / "data" / "engine.db")
    try:
        assert eng.get(started.stdout.strip()).flow == "ok"
    finally:
        eng.close()
