"""Full-text search over what executions recorded: a word of an execution's log, of its
messages or of its error finds it; a secret recorded masked does not; an older database
is indexed when it is migrated to schema version 7."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import Result

from engine.api import Engine
from store.schema import SCHEMA_VERSION
from store.search import Search

LEAKY = Path(__file__).parent / "flows" / "search" / "leaky.py"
SECRET = "sesame-7f3a91"


@pytest.fixture
def recorded(run_cli: Callable[..., Result], tmp_path: Path) -> tuple[str, str]:
    """(the id of an ended run of leaky.py, the id of an ENDED_SUCCESS run of another flow)."""
    failed = run_cli("run", str(LEAKY), "-i", f"key={SECRET}", "--json")
    assert failed.exit_code == 1, failed.output
    quiet = tmp_path / "quiet.py"
    quiet.write_text('def handler(system, this, inputs):\n    this.log("nothing to see")\n    return this.success("fine")\n')
    ok = run_cli("run", str(quiet), "--json")
    assert ok.exit_code == 0, ok.output
    return failed.stdout.split('"id": "')[1][:16], ok.stdout.split('"id": "')[1][:16]


def found(db_url: str, query: str, **filters: str) -> list[str]:
    engine = Engine(db_url)
    try:
        return [r.id for r in Search(engine.store).executions(query, **filters) if r.flow != "REST"]
    finally:
        engine.close()


def test_a_word_of_the_log_a_message_or_the_error_finds_the_execution(recorded: tuple[str, str], db_url: str) -> None:
    leaky, quiet = recorded
    assert found(db_url, "unicorn") == [leaky]  # its log
    assert found(db_url, "WALRUS ledger") == [leaky]  # its message's text, any case, words in any event
    assert found(db_url, "quarterly") == [leaky]  # its message's subject
    assert found(db_url, "zeppelin") == [leaky]  # its error
    assert found(db_url, "unic") == [leaky]  # a word's beginning
    assert found(db_url, "nothing") == [quiet] and found(db_url, "unicorn nothing") == []
    assert found(db_url, "zeppelin", status="ENDED_SUCCESS") == [] and found(db_url, "see", flow="quiet") == [quiet]
    assert found(db_url, "leaky") == [leaky] and found(db_url, leaky[:6]) == [leaky]  # its flow, its id


def test_a_secret_recorded_masked_cannot_be_found(recorded: tuple[str, str], db_url: str) -> None:
    leaky, _ = recorded
    assert found(db_url, "api_key") == [leaky]  # the connection's error, with the key masked, is indexed
    assert found(db_url, SECRET) == [] and found(db_url, "sesame") == []


@pytest.mark.sqlite_only("reads SQLite's full-text index table (FTS5) directly")
def test_the_index_holds_the_secret_masked(recorded: tuple[str, str], db_file: str) -> None:
    with closing(sqlite3.connect(db_file)) as conn:
        texts = [t for (t,) in conn.execute("SELECT text FROM search_text")]
    assert any("api_key=***" in t for t in texts) and not any(SECRET in t for t in texts)


@pytest.mark.parametrize("query", ['"', "AND", "NOT unicorn", "un*", "a:b", "(", "-x", "NEAR(a b)"])
def test_search_syntax_in_the_query_is_taken_as_words(recorded: tuple[str, str], db_url: str, query: str) -> None:
    assert isinstance(found(db_url, query), list)


@pytest.mark.sqlite_only("an older SQLite file (PRAGMA user_version 6) is migrated")
def test_an_older_database_is_indexed_when_it_is_migrated(recorded: tuple[str, str], db_file: str) -> None:
    leaky, _ = recorded
    with closing(sqlite3.connect(db_file)) as conn:
        conn.execute("DROP TABLE search_text")
        conn.execute("PRAGMA user_version = 6")
        conn.commit()
    assert found(db_file, "unicorn") == [leaky] and found(db_file, "zeppelin") == [leaky]
    with closing(sqlite3.connect(db_file)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 7
