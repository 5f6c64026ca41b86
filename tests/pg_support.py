"""A fresh PostgreSQL database per test, on the server ``ENGINE_TEST_POSTGRES_DSN`` names.

Import with ``from pg_support import fresh_postgres``: ``tests/`` is on ``sys.path``.
Without the variable the test is skipped, saying so (``.ci/run`` starts a server).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import pytest

#: Why a PostgreSQL test skips where no server is given.
NO_SERVER = "ENGINE_TEST_POSTGRES_DSN is unset: no PostgreSQL server to test on (.ci/run starts one)"


@contextmanager
def fresh_postgres() -> Iterator[str]:
    """The URL of a new, empty database (``pgstore_<uuid>``), dropped afterwards."""
    dsn = os.environ.get("ENGINE_TEST_POSTGRES_DSN")
    if not dsn:
        pytest.skip(NO_SERVER)
    psycopg = pytest.importorskip("psycopg")
    name = f"pgstore_{uuid.uuid4().hex}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
