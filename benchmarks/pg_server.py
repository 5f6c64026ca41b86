"""The PostgreSQL server the ``postgres`` rows run on: ``$ENGINE_BENCH_POSTGRES_DSN``, or a
throwaway cluster started here (initdb in a temporary directory, fsync on, 127.0.0.1 on a
free port, run as the ``postgres`` user when this process is root, as ``.ci/run`` does),
stopped when this process exits. Each shape gets a database of its own.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

DSN_ENV = "ENGINE_BENCH_POSTGRES_DSN"
_state: dict[str, str] = {}


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_cluster() -> str:
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    initdb = shutil.which("initdb") or (f"{bins[-1]}/initdb" if bins else None)
    if initdb is None:
        raise RuntimeError(f"no PostgreSQL to benchmark: set {DSN_ENV} or install postgresql (initdb)")
    pgbin = Path(initdb).parent
    tmp = Path(tempfile.mkdtemp(prefix="engine-bench-pg-"))
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres")
    data, port = tmp / "data", _free_port()
    subprocess.run(_as_postgres([str(pgbin / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]),
                   check=True, capture_output=True)
    options = (f"-c listen_addresses=127.0.0.1 -p {port} -k {tmp} -c max_connections=200 "
               "-c shared_preload_libraries=pg_stat_statements -c fsync=on")
    subprocess.run(_as_postgres([str(pgbin / "pg_ctl"), "-D", str(data), "-o", options,
                                 "-l", str(tmp / "log"), "-w", "start"]), check=True, capture_output=True)

    def stop() -> None:
        subprocess.run(_as_postgres([str(pgbin / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)

    atexit.register(stop)
    _state["version"] = subprocess.run([str(pgbin / "postgres"), "--version"], capture_output=True,
                                       text=True).stdout.strip()
    _state["origin"] = f"throwaway cluster (initdb, fsync on) on 127.0.0.1:{port}"
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def server_dsn() -> str:
    """The maintenance DSN of the server, starting the throwaway cluster on first use."""
    if "dsn" not in _state:
        given = os.environ.get(DSN_ENV)
        if given:
            _state["origin"] = f"${DSN_ENV}"
        _state["dsn"] = given or _start_cluster()
    return _state["dsn"]


def describe() -> str:
    """Which server and version the rows ran on, for RESULTS.md notes."""
    import psycopg

    with psycopg.connect(server_dsn(), autocommit=True) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        fsync = conn.execute("SHOW fsync").fetchone()
        commit = conn.execute("SHOW synchronous_commit").fetchone()
    return (f"PostgreSQL {version[0] if version else '?'} ({_state.get('origin', '?')}), "
            f"fsync={fsync[0] if fsync else '?'}, synchronous_commit={commit[0] if commit else '?'}")


def fresh_database(label: str) -> str:
    """A new, empty database on the server; its DSN."""
    import psycopg

    name = f"bench_{label.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_dsn().rsplit("/", 1)[0] + "/" + name


def drop_database(dsn: str) -> None:
    """Drop a database made by :func:`fresh_database`, ending its remaining sessions."""
    import psycopg

    name = dsn.rsplit("/", 1)[1]
    with psycopg.connect(server_dsn(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
