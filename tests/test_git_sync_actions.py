"""A git sync as the action of a schedule or a webhook (issue 14): real local git
repositories, real ``engine serve`` processes over HTTP, a real post-receive hook.

Each slot of a git-sync schedule syncs exactly once however many servers fire it; a
webhook called by a push registers the pushed commit and answers with it; a failed sync
(bad repository, bad ref, a flow with a syntax error) is one line, registers nothing
and leaves the server serving; schema 8 migrates databases that hold schedules and
webhooks, and older ones that have neither table.
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
import time
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from serve_support import Served, engine_command, start_server, serving
from test_git_sync import git
from waiting import wait_until

from cli.main import cli
from engine import schedules
from engine.api import Engine
from store.git_actions import GitSource
from store.schema import SCHEMA_VERSION

FLOW = "def handler(system, this, inputs):\n    return this.success({text!r})\n"
BROKEN = "def handler(system, this, inputs)\n    return this.success('no colon')\n"


def commit(repo: Path, files: dict[str, str], message: str) -> str:
    """Write ``files`` (paths relative to ``repo``), commit them; the commit id."""
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository whose ``flows/greet.py`` answers 'first' (and whose top holds a file
    that is no flow)."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q")
    commit(path, {"setup.py": "raise SystemExit('not a flow')\n", "flows/greet.py": FLOW.format(text="first")}, "first")
    return path


def cli_run(db: Path | str, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--db", str(db), *args])


def flows(db: str) -> dict[str, str | None]:
    """Each registered flow's git commit."""
    listed = engine_command(db, "flows", "ls", "--json")
    assert listed.returncode == 0, listed.stderr
    return {f["name"]: f["git_commit"] for f in json.loads(listed.stdout)}


# -- schedules -----------------------------------------------------------------------------


def _synced_slots(servers: list[Served]) -> list[int]:
    """The slots of schedule ``tick`` whose git sync a server's log reports (all servers)."""
    return [int(slot) for s in servers for slot in re.findall(r"schedule tick \(slot (\d+)\): git sync", s.output())]


def test_each_slot_of_a_git_sync_schedule_syncs_once_with_two_servers(tmp_path: Path, db_url: str, repo: Path) -> None:
    servers: list[Served] = []
    try:
        servers = [start_server(tmp_path, db_url, engine_args=("-v",), logs=f"serve{n}") for n in range(2)]
        db = servers[0].db
        added = engine_command(db, "schedules", "add", "tick", "--git-sync", str(repo), "--path", "flows",
                               "--cron", "* * * * * *", "--json")
        assert added.returncode == 0, added.stderr
        assert json.loads(added.stdout)["action"] == f"git sync {repo} --path flows"
        wait_until(lambda: len(_synced_slots(servers)) >= 2, "two slots synced")
        second = commit(repo, {"flows/greet.py": FLOW.format(text="second"), "flows/extra.py": FLOW.format(text="x")},
                        "second")
        wait_until(lambda: flows(db).get("extra") == second, "a slot syncing the new commit")
        wait_until(lambda: len(_synced_slots(servers)) >= 6, "six slots synced")
        assert engine_command(db, "schedules", "pause", "tick").returncode == 0
        listed = json.loads(engine_command(db, "schedules", "ls", "--json").stdout)
        last = listed[0]["last_sync"]
        assert listed[0]["flow"] is None and last["error"] is None and last["commit"] == second
        assert sorted(f["name"] for f in last["flows"]) == ["extra", "greet"]
        assert listed[0]["last_sync_summary"].startswith(f"commit {second[:12]}: 2 flow(s) registered")
        assert (flows(db)["extra"], flows(db)["greet"]) == (second, second)
        table = engine_command(db, "schedules", "ls").stdout
        assert f"git sync {repo} --path flows" in table and f"commit {second[:12]}" in table
        with servers[1].client() as browser:
            assert browser.get(servers[1].login_link).status_code == 200
            page = browser.get("/schedules").text
        assert f'<code class="git-sync">git sync {repo} --path flows</code>' in page
        assert f'<span class="last-sync">commit {second[:12]}: 2 flow(s) registered' in page
    finally:
        for served in servers:
            assert served.stop() == 0, served.output()
    slots = _synced_slots(servers)
    assert Counter(slots).most_common(1)[0][1] == 1, f"a slot synced twice: {sorted(slots)}"
    assert all("Traceback" not in s.output() for s in servers)


def test_a_failed_scheduled_sync_is_recorded_in_one_line_and_registers_nothing(tmp_path: Path, db_url: str, repo: Path) -> None:
    """Fired in this process (``fire_due`` runs the sync at once): a flow with a syntax
    error refuses the whole commit, a missing repository or ref is one line too."""
    commit(repo, {"flows/broken.py": BROKEN}, "broken")
    with closing(Engine(db_url)) as engine:
        for name, source in [("broken", {"git": GitSource(str(repo), path="flows")}),
                             ("nowhere", {"git": GitSource(str(tmp_path / "nowhere"))}),
                             ("badref", {"git": GitSource(str(repo), "no-such-branch")})]:
            schedules.add(engine.store, name, None, "0 0 1 1 *", start="2020-01-01", now=time.time(), **source)
        assert schedules.fire_due(engine.store, time.time())[0] == 0
        errors = {s.name: s.last_sync.error for s in schedules.listing(engine.store) if s.last_sync}
        assert engine.store.list_flows() == []
    assert "flow 'broken' has a syntax error at line 1" in errors["broken"] and "broken.py" in errors["broken"]
    assert "cannot clone git repository" in errors["nowhere"]
    assert "no commit 'no-such-branch'" in errors["badref"]
    assert all(e.endswith("nothing was registered") and "\n" not in e for e in errors.values()), errors


@pytest.mark.parametrize(("args", "message"), [
    (["--flow", "echo", "--git-sync", "{repo}"], "give --flow FLOW or --git-sync REPO (one of them)"),
    ([], "give --flow FLOW or --git-sync REPO (one of them)"),
    (["--flow", "echo", "--ref", "main"], "--ref and --path go with --git-sync REPO"),
    (["--git-sync", "{repo}", "-i", "a=1"], "takes no inputs"),
    (["--git-sync", "{repo}", "--path", "../etc"], "must be a folder inside the repository; schedule 'x' was not added"),
    (["--git-sync", "{repo}", "--ref", "--upload-pack=touch"], "is not a branch, tag or commit"),
])
def test_bad_git_sync_options_are_one_line(db_url: str, repo: Path, args: list[str], message: str) -> None:
    db = db_url
    argv = [a.format(repo=repo) for a in args]
    for command in (["schedules", "add", "x", "--cron", "@daily", *argv], ["webhooks", "create", "x", *argv]):
        if "-i" in argv and command[0] == "webhooks":
            continue
        done = cli_run(db, *command)
        expected = message.replace("schedule 'x' was not added", "webhook 'x' was not created") \
            if command[0] == "webhooks" else message
        assert done.exit_code != 0 and expected in done.output, done.output
        assert "Traceback" not in done.output
    assert json.loads(cli_run(db, "schedules", "ls", "--json").output) == []
    assert json.loads(cli_run(db, "webhooks", "ls", "--json").output) == []


def test_a_relative_repository_path_is_kept_absolute(tmp_path: Path, repo: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The server or worker that syncs later may run in another folder."""
    monkeypatch.chdir(tmp_path)
    assert cli_run(Path("engine.db"), "schedules", "add", "s", "--git-sync", "repo", "--cron", "@daily").exit_code == 0
    created = cli_run(Path("engine.db"), "webhooks", "create", "w", "--git-sync", "./repo", "--json")
    assert json.loads(created.output)["git"]["repo"] == str(repo.resolve())
    listed = json.loads(cli_run(Path("engine.db"), "schedules", "ls", "--json").output)
    assert listed[0]["git"] == {"repo": str(repo.resolve()), "ref": "HEAD", "path": None}


# -- webhooks ------------------------------------------------------------------------------

HOOK = '''#!{python}
import sys, urllib.error, urllib.request
request = urllib.request.Request({url!r}, data=b"", method="POST", headers={{"X-Engine-Webhook-Key": {key!r}}})
try:
    with urllib.request.urlopen(request, timeout=120) as answer:
        status, body = answer.status, answer.read()
except urllib.error.HTTPError as refused:
    status, body = refused.code, refused.read()
with open({out!r}, "ab") as out:
    out.write(str(status).encode() + b" " + body + b"\\n")
'''


def _push(work: Path, files: dict[str, str], message: str, answers: Path) -> tuple[str, int, dict[str, Any]]:
    """Commit ``files`` in the clone ``work`` and push: the commit, and the webhook's
    answer to the post-receive hook (status and JSON)."""
    pushed = commit(work, files, message)
    git(work, "push", "-q", "origin", "main")
    status, _, body = answers.read_text().splitlines()[-1].partition(" ")
    return pushed, int(status), json.loads(body)


def test_a_push_calls_the_webhook_which_registers_the_pushed_commit(tmp_path: Path) -> None:
    with serving(tmp_path) as served:
        origin, work, answers = tmp_path / "origin.git", tmp_path / "work", tmp_path / "answers"
        git(tmp_path, "init", "-q", "--bare", str(origin))
        created = engine_command(served.db, "webhooks", "create", "deploy", "--git-sync", str(origin), "--path",
                                 "flows", "--url", served.url, "--json")
        assert created.returncode == 0, created.stderr
        hook = json.loads(created.stdout)
        assert hook["git"] == {"repo": str(origin), "ref": "HEAD", "path": "flows"}
        script = origin / "hooks" / "post-receive"
        script.write_text(HOOK.format(python=sys.executable, url=hook["url"], key=hook["key"], out=str(answers)))
        script.chmod(0o755)
        git(tmp_path, "clone", "-q", str(origin), str(work))
        git(work, "checkout", "-q", "-b", "main")

        first, status, answer = _push(work, {"flows/greet.py": FLOW.format(text="first")}, "first", answers)
        assert status == 200, answer
        assert answer["commit"] == first and answer["webhook"] == "deploy"
        assert [(f["name"], f["changed"]) for f in answer["flows"]] == [("greet", True)]
        assert flows(served.db)["greet"] == first

        _, status, answer = _push(work, {"flows/greet.py": BROKEN}, "broken", answers)
        assert status == 422 and list(answer) == ["error"]
        assert answer["error"].startswith("webhook deploy: git sync failed: flow 'greet' has a syntax error")
        assert answer["error"].endswith("nothing was registered")
        assert flows(served.db)["greet"] == first  # the working version stays

        fixed, status, answer = _push(work, {"flows/greet.py": FLOW.format(text="fixed")}, "fixed", answers)
        assert status == 200 and answer["commit"] == fixed  # the server serves on
        ran = engine_command(served.db, "run", "greet", "--json")
        assert json.loads(ran.stdout)["message"] == "fixed", ran.stderr

        listed = json.loads(engine_command(served.db, "webhooks", "ls", "--json").stdout)
        assert listed[0]["flow"] is None and listed[0]["last_sync"]["commit"] == fixed
        with served.client() as client:
            refused = client.post("/webhooks/deploy", headers={"X-Engine-Webhook-Key": "whk_wrong"})
            assert refused.status_code == 401 and "nothing was started" in refused.json()["error"]
            assert client.get(served.login_link).status_code == 200
            page = client.get("/webhooks").text
        assert f'<code class="git-sync">git sync {origin} --path flows</code>' in page
        assert f'<span class="last-sync">commit {fixed[:12]}: 1 flow(s) registered, new versions of greet' in page
        assert hook["key"] not in page


def test_a_webhook_of_a_missing_ref_answers_one_line_and_the_server_serves_on(tmp_path: Path, repo: Path) -> None:
    with serving(tmp_path) as served:
        created = engine_command(served.db, "webhooks", "create", "bad", "--git-sync", str(repo), "--ref", "nope",
                                 "--json")
        key = json.loads(created.stdout)["key"]
        with served.client() as client:
            answer = client.post("/webhooks/bad", headers={"X-Engine-Webhook-Key": key})
            assert answer.status_code == 422
            error = answer.json()["error"]
            assert error.startswith(f"webhook bad: git sync failed: no commit 'nope' in git repository {repo}")
            assert error.endswith("; nothing was registered") and list(answer.json()) == ["error"]
        assert served.proc.poll() is None  # still serving
        table = engine_command(served.db, "webhooks", "ls").stdout
        assert "failed: no commit 'nope'" in table
        assert "greet" not in flows(served.db)
    assert "Traceback" not in served.output()


# -- schema 8 ------------------------------------------------------------------------------

_GIT_COLUMNS = ("git_repo", "git_ref", "git_path", "last_sync")


def _downgrade(path: Path, version: int, drop_tables: tuple[str, ...] = ()) -> None:
    """Make the database at ``path`` look like one of schema ``version`` (before 8)."""
    with closing(sqlite3.connect(path)) as conn, conn:
        for table in drop_tables:
            conn.execute(f"DROP TABLE {table}")
        for table in ("schedules", "webhooks"):
            if table not in drop_tables:
                for column in _GIT_COLUMNS:
                    conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        conn.execute(f"PRAGMA user_version = {version}")


def _columns(path: Path, table: str) -> list[str]:
    with closing(sqlite3.connect(path)) as conn:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


@pytest.mark.sqlite_only("a SQLite file of schema version 7 is migrated")
def test_a_version_7_database_with_schedules_and_webhooks_is_migrated(tmp_path: Path, repo: Path) -> None:
    db = tmp_path / "engine.db"
    assert cli_run(db, "flows", "sync", str(Path(__file__).parent / "flows" / "serve")).exit_code == 0
    assert cli_run(db, "schedules", "add", "old", "--flow", "echo", "--cron", "0 0 1 1 *", "--start", "2020-01-01",
                   "-i", "who=old").exit_code == 0
    assert cli_run(db, "webhooks", "create", "hook", "--flow", "echo").exit_code == 0
    _downgrade(db, 7)
    assert "git_repo" not in _columns(db, "schedules")
    with closing(Engine(db)) as engine:
        assert schedules.fire_due(engine.store, time.time())[0] == 1  # the old schedule fires as before
        schedules.add(engine.store, "sync", None, "0 0 1 1 *", git=GitSource(str(repo), path="flows"),
                      start="2020-01-01", now=time.time())
        schedules.fire_due(engine.store, time.time())
        listed = {s.name: s for s in schedules.listing(engine.store)}
    assert listed["old"].flow == "echo" and listed["old"].inputs == {"who": "old"} and listed["old"].last_execution
    assert listed["sync"].last_sync is not None and listed["sync"].last_sync.commit == git(repo, "rev-parse", "HEAD")
    hooks = json.loads(cli_run(db, "webhooks", "ls", "--json").output)
    assert [(h["name"], h["flow"], h["git"]) for h in hooks] == [("hook", "echo", None)]
    for table in ("schedules", "webhooks"):
        assert _columns(db, table)[-4:] == list(_GIT_COLUMNS)
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 8


@pytest.mark.sqlite_only("a SQLite file of schema version 5 is migrated")
def test_a_version_5_database_without_schedules_gets_them_with_the_git_columns(tmp_path: Path, repo: Path) -> None:
    """Schema 5 had webhooks but no schedules: the migration to 8 adds columns to the one
    and the DDL creates the other whole, after the migrations."""
    db = tmp_path / "engine.db"
    assert cli_run(db, "flows", "sync", str(Path(__file__).parent / "flows" / "serve")).exit_code == 0
    assert cli_run(db, "webhooks", "create", "hook", "--flow", "echo").exit_code == 0
    _downgrade(db, 5, drop_tables=("schedules", "flow_origins", "search_text"))
    added = cli_run(db, "schedules", "add", "sync", "--git-sync", str(repo), "--path", "flows", "--cron", "@daily")
    assert added.exit_code == 0, added.output
    assert cli_run(db, "webhooks", "create", "push", "--git-sync", str(repo)).exit_code == 0
    for table in ("schedules", "webhooks"):
        assert set(_GIT_COLUMNS) <= set(_columns(db, table))
    hooks = json.loads(cli_run(db, "webhooks", "ls", "--json").output)
    assert [(h["name"], (h["git"] or {}).get("repo")) for h in hooks] == [("hook", None), ("push", str(repo))]

