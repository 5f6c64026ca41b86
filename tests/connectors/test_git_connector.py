"""GIT connector against real repositories made with git init in tmp_path."""

from __future__ import annotations

import pytest

from engine.connectors import ConnectorError, get_connector


def run_git(timeout: float | None = 30.0, **params: object) -> dict[str, object]:
    return get_connector("GIT").run(params, idempotency_key="e:1", timeout=timeout)


def test_get_one_file_at_head_and_at_a_tag(git_repo):
    url = str(git_repo.path)
    head = run_git(command="get", repository_url=url, path="README.md")
    assert head == {"commit": git_repo.head, "files": {"README.md": "version two\n"}}
    tagged = run_git(command="get", repository_url=url, path="README.md", ref="v1")
    assert tagged == {"commit": git_repo.first, "files": {"README.md": "version one\n"}}


def test_get_without_path_lists_files(git_repo):
    out = run_git(command="get", repository_url=str(git_repo.path), ref="feature")
    assert out == {
        "commit": git_repo.feature,
        "files": ["README.md", "feature.txt", "src/app.py", "src/logo.bin"],
    }


def test_get_a_directory_reads_text_and_binary_files_through_a_url(git_repo):
    out = run_git(command="get", repository_url=git_repo.path.as_uri(), path="src")
    assert out["files"] == {"src/app.py": "print('hi')\n", "src/logo.bin": b"\xff\xfe\x00binary"}


def test_metadata(git_repo):
    out = run_git(command="metadata", repository_url=git_repo.path.as_uri())
    assert out["commit"] == git_repo.head
    assert out["author"] == "Ada Tester"
    assert out["author_email"] == "ada@example.com"
    assert out["message"] == "Second commit\n\nWith a body."
    assert out["date"][:4].isdigit() and "T" in out["date"]
    assert out["head"] == "main"
    assert out["branches"] == {"main": git_repo.head, "feature": git_repo.feature}
    assert out["tags"] == {"v1": git_repo.first}


def test_clone_checks_out_the_ref_and_a_retry_reuses_the_clone(git_repo, git_cli, tmp_path):
    target = tmp_path / "work" / "clone"
    params = {"command": "clone", "repository_url": str(git_repo.path), "target": str(target)}
    out = run_git(**params, ref="feature")
    assert out == {"path": str(target), "commit": git_repo.feature}
    assert (target / "feature.txt").read_text() == "new feature\n"
    assert git_cli("rev-parse", "--abbrev-ref", "HEAD", cwd=target) == "feature"
    assert run_git(**params, ref="feature") == out
    assert run_git(**params)["commit"] == git_repo.head
    assert run_git(**params, ref="v1")["commit"] == git_repo.first


def test_clone_into_a_clone_of_another_repository_is_refused(git_repo, git_cli, tmp_path):
    other = tmp_path / "other"
    git_cli("clone", "-q", str(git_repo.path), str(other), cwd=tmp_path)
    git_cli("remote", "set-url", "origin", "https://example.invalid/else.git", cwd=other)
    with pytest.raises(ConnectorError) as caught:
        run_git(command="clone", repository_url=str(git_repo.path), target=str(other))
    assert not caught.value.retryable
    assert "another repository (https://example.invalid/else.git)" in caught.value.message


def test_unknown_ref_is_not_retryable_and_lists_branches(git_repo):
    with pytest.raises(ConnectorError) as caught:
        run_git(command="get", repository_url=str(git_repo.path), ref="nope", path="README.md")
    assert not caught.value.retryable
    assert "unknown ref 'nope'" in caught.value.message
    assert "feature, main" in caught.value.message


def test_missing_path_is_not_retryable(git_repo):
    with pytest.raises(ConnectorError) as caught:
        run_git(command="get", repository_url=str(git_repo.path), path="missing.txt")
    assert not caught.value.retryable
    assert "'missing.txt' does not exist" in caught.value.message


def test_missing_repository_is_not_retryable(tmp_path):
    with pytest.raises(ConnectorError) as caught:
        run_git(command="metadata", repository_url=(tmp_path / "absent").as_uri())
    assert not caught.value.retryable


def test_directory_inside_a_repository_is_refused(git_repo):
    with pytest.raises(ConnectorError) as caught:
        run_git(command="get", repository_url=str(git_repo.path / "src"))
    assert "top-level directory" in caught.value.message


def test_unreachable_server_is_retryable_and_hides_credentials(refused_port):
    url = f"http://user:tok-123456@127.0.0.1:{refused_port}/repo.git"
    with pytest.raises(ConnectorError) as caught:
        run_git(command="get", repository_url=url)
    assert caught.value.retryable
    assert "tok-123456" not in repr(caught.value.to_dict())


def test_silent_server_times_out_and_is_retryable(silent_port):
    with pytest.raises(ConnectorError) as caught:  # the server never answers: only the timeout ends it
        run_git(
            command="metadata", repository_url=f"http://127.0.0.1:{silent_port}/r.git", timeout=0.5
        )
    assert caught.value.retryable
    assert "timeout of 0.5s ran out" in caught.value.message


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"command": "push", "repository_url": "x"}, "command must be one of"),
        ({"command": "clone", "repository_url": "x"}, "clone needs target"),
        ({"command": "get", "repository_url": "x", "ref": "--upload-pack=evil"}, "must not start"),
        ({"command": "get"}, "repository_url"),
    ],
)
def test_bad_params(params, problem):
    with pytest.raises(ConnectorError) as caught:
        run_git(**params)
    assert not caught.value.retryable
    assert problem in caught.value.message
