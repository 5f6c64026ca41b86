"""Hosts for real: Linux network namespaces joined to a throwaway PostgreSQL by veth pairs.

``hosts(3)`` builds one namespace for the database server and one per host. Each host is
joined to the server's namespace by its own veth pair on ``10.231.N.0/30`` (server side
``.1``, host side ``.2``); those addresses exist only inside the namespaces built here,
never in the namespace the tests run in. The server (initdb'd into a fresh folder, run as
the ``postgres`` user inside the server's namespace) listens on those links for the hosts,
and on a Unix socket in its folder for the test itself. ``Hosts.fail(host)`` is a host
failure: its link goes down (nothing it sends afterwards reaches the server) and every
process in its namespace gets SIGKILL. Everything is torn down on exit, failed or not.

Import with ``from netns_hosts import hosts, why_no_hosts``: ``tests/`` is on ``sys.path``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: Where the test's private links live (a /30 per host: N = 1, 2, 3, ...).
SUBNET = "10.231"
PORT = 5432
#: Server settings. The keepalives and user timeout that notice a host vanished
#: mid-transaction (no FIN, no RST) are PostgreSQL's defaults: each engine session asks
#: for its own (``store.pg_url.SESSION_OPTIONS``), and that is what a test loses a host to see.
SERVER_SETTINGS = {"listen_addresses": "*", "port": str(PORT), "fsync": "off", "max_connections": "200"}


def _run(argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=120, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL server binaries (Debian's layout), or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
                   if p.parent.parent.name.isdigit() else 0)
    return found[-1].parent if found else None


def why_no_hosts() -> str | None:
    """Why namespaces with a PostgreSQL server cannot be made here (one line), or None."""
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "building network namespaces needs root"
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2) to build network namespaces"
    if postgres_bin() is None:
        return "no PostgreSQL server binaries (initdb) under /usr/lib/postgresql"
    if _run(["id", "postgres"], check=False).returncode != 0:
        return "no `postgres` user to run a throwaway PostgreSQL server"
    probe = f"engprobe{secrets.token_hex(3)}"
    made = _run(["ip", "netns", "add", probe], check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace here: {made.stderr.strip()}"
    _run(["ip", "netns", "del", probe], check=False)
    return None


@dataclass
class Host:
    """One host: its namespace, its address and the server's address on its link."""

    name: str
    namespace: str
    address: str
    server_address: str
    link: str  # the host side of its veth pair
    peer: str  # the server side

    def argv(self, *argv: str, env: dict[str, str] | None = None) -> list[str]:
        """``argv`` run inside this host (with ``env`` added to the environment)."""
        extra = [f"{k}={v}" for k, v in (env or {}).items()]
        return ["ip", "netns", "exec", self.namespace, *(["env", *extra] if extra else []), *argv]


@dataclass
class Hosts:
    """Hosts built by ``hosts()`` and the PostgreSQL server they share."""

    server_namespace: str
    folder: Path
    items: list[Host] = field(default_factory=list)

    def url(self, host: Host, database: str) -> str:
        """The ``postgresql://`` URL of ``database`` as ``host`` reaches it, over its link."""
        return f"postgresql://postgres@{host.server_address}:{PORT}/{database}"

    def local(self, database: str) -> str:
        """A libpq connection string for the test itself (the server's Unix socket)."""
        return f"host={self.folder} port={PORT} user=postgres dbname={database}"

    def pids(self, host: Host) -> list[int]:
        """Every process running in ``host``'s namespace."""
        return [int(p) for p in _run(["ip", "netns", "pids", host.namespace]).stdout.split()]

    def fail(self, host: Host) -> list[int]:
        """A host failure: its link down at both ends first (nothing it sends after this
        moment reaches the server), then SIGKILL to every process in it; the pids killed."""
        _run(["ip", "-n", host.namespace, "link", "set", host.link, "down"])
        _run(["ip", "-n", self.server_namespace, "link", "set", host.peer, "down"])
        killed = self.pids(host)
        for pid in killed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return killed


def _start_server(namespace: str, folder: Path, links: Sequence[str]) -> None:
    pgbin = postgres_bin()
    assert pgbin is not None
    shutil.chown(folder, "postgres")
    as_postgres = ["runuser", "-u", "postgres", "--"]
    _run([*as_postgres, str(pgbin / "initdb"), "-D", str(folder / "data"), "-A", "trust", "-U", "postgres"])
    with open(folder / "data" / "pg_hba.conf", "a") as hba:
        for subnet in links:
            hba.write(f"host all all {subnet} trust\n")
    options = " ".join(f"-c {k}={v}" for k, v in SERVER_SETTINGS.items()) + f" -k {folder}"
    _run(["ip", "netns", "exec", namespace, *as_postgres, str(pgbin / "pg_ctl"), "-D", str(folder / "data"),
          "-o", options, "-l", str(folder / "server.log"), "-w", "-t", "120", "start"])


def _stop_server(folder: Path) -> None:
    pgbin = postgres_bin()
    if pgbin is not None and (folder / "data" / "postmaster.pid").exists():
        _run(["runuser", "-u", "postgres", "--", str(pgbin / "pg_ctl"), "-D", str(folder / "data"),
              "-m", "immediate", "-w", "stop"], check=False)


@contextlib.contextmanager
def hosts(count: int) -> Iterator[Hosts]:
    """``count`` hosts and a PostgreSQL server, each in a namespace of its own, joined by
    veth pairs; all of it (processes, namespaces, the server and its folder) gone on exit."""
    token = secrets.token_hex(3)
    built = Hosts(f"eng{token}-db", Path(tempfile.mkdtemp(prefix="engine-hosts-")))
    namespaces = [built.server_namespace]
    try:
        _run(["ip", "netns", "add", built.server_namespace])
        _run(["ip", "-n", built.server_namespace, "link", "set", "lo", "up"])
        for n in range(1, count + 1):
            host = Host(f"host{n}", f"eng{token}-h{n}", f"{SUBNET}.{n}.2", f"{SUBNET}.{n}.1",
                        f"e{token}h{n}", f"e{token}s{n}")
            namespaces.append(host.namespace)
            _run(["ip", "netns", "add", host.namespace])
            _run(["ip", "-n", host.namespace, "link", "set", "lo", "up"])
            _run(["ip", "-n", host.namespace, "link", "add", host.link, "type", "veth", "peer", "name", host.peer,
                  "netns", built.server_namespace])
            _run(["ip", "-n", host.namespace, "addr", "add", f"{host.address}/30", "dev", host.link])
            _run(["ip", "-n", built.server_namespace, "addr", "add", f"{host.server_address}/30", "dev", host.peer])
            _run(["ip", "-n", host.namespace, "link", "set", host.link, "up"])
            _run(["ip", "-n", built.server_namespace, "link", "set", host.peer, "up"])
            built.items.append(host)
        _start_server(built.server_namespace, built.folder, [f"{SUBNET}.{n}.0/30" for n in range(1, count + 1)])
        yield built
    finally:
        for namespace in reversed(namespaces):  # the hosts' processes first, the server last
            if namespace == built.server_namespace:
                _stop_server(built.folder)
            listed = _run(["ip", "netns", "pids", namespace], check=False).stdout.split()
            for pid in listed:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            _run(["ip", "netns", "del", namespace], check=False)
        shutil.rmtree(built.folder, ignore_errors=True)
