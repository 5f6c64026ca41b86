"""``engine flows sync --git``: the flows of one commit of a (local) git repository,
each version recording its commit."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from serve_support import engine_command

FLOW = '''def handler(system, this, inputs):
    return this.success({text!r})
'''


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main",
                           *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, str, str]:
    """A repository with two commits of ``flows/greet.py`` (and a non-flow file at the top)."""
    repo = tmp_path / "repo"
    (repo / "flows").mkdir(parents=True)
    git(repo, "init", "-q")
    (repo / "setup.py").write_text("raise SystemExit('not a flow')\n")
    (repo / "flows" / "greet.py").write_text(FLOW.format(text="first"))
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    first = git(repo, "rev-parse", "HEAD")
    (repo / "flows" / "greet.py").write_text(FLOW.format(text="second"))
    git(repo, "commit", "-q", "-am", "second")
    return repo, first, git(repo, "rev-parse", "HEAD")


def test_a_synced_commit_is_recorded_on_its_versions(db_url: str, repo: tuple[Path, str, str]) -> None:
    path, first, second = repo
    db = db_url
    synced = engine_command(db, "flows", "sync", "--git", str(path), "--ref", first, "--path", "flows", "--json")
    assert synced.returncode == 0, synced.stderr
    assert [(s["name"], s["git_commit"]) for s in json.loads(synced.stdout)] == [("greet", first)]
    ran = engine_command(db, "run", "greet", "--json")
    assert ran.returncode == 0, ran.stderr
    execution = json.loads(ran.stdout)["id"]
    assert engine_command(db, "flows", "sync", "--git", str(path), "--path", "flows").returncode == 0  # HEAD: second
    listed = json.loads(engine_command(db, "flows", "ls", "--json").stdout)
    assert [(f["name"], f["git_commit"]) for f in listed] == [("greet", second)]
    assert listed[0]["path"] == f"{path}@{second[:12]}:greet.py"
    shown = json.loads(engine_command(db, "show", execution, "--json").stdout)
    assert shown["version"]["git_commit"] == first  # it stays on the version of the first commit
    assert f"git commit {first}" in engine_command(db, "show", execution).stdout
    rerun = json.loads(engine_command(db, "run", "greet", "--json").stdout)
    assert rerun["message"] == "second"


@pytest.mark.parametrize(("args", "message"), [
    (["--git", "{tmp}/nowhere"], "cannot clone git repository"),
    (["--git", "{repo}", "--ref", "no-such-branch"], "no commit 'no-such-branch' in git repository"),
    (["--git", "{repo}", "--path", "missing"], "no folder 'missing' in commit"),
    (["--git", "{repo}", "--path", "../etc"], "must be a folder inside the repository"),
    (["--git", "{repo}", "--ref", "--upload-pack=touch"], "is not a branch, tag or commit"),
    (["{tmp}", "--git", "{repo}"], "give a DIRECTORY or --git REPO"),
])
def test_bad_git_input_is_a_one_line_error_and_registers_nothing(
    tmp_path: Path, db_url: str, repo: tuple[Path, str, str], args: list[str], message: str,
) -> None:
    db = db_url
    argv = [a.format(tmp=tmp_path, repo=repo[0]) for a in args]
    done = engine_command(db, "flows", "sync", *argv)
    assert done.returncode != 0 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    if "DIRECTORY" not in message:  # a usage error adds click's usage lines
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert json.loads(engine_command(db, "flows", "ls", "--json").stdout) == []
