"""``engine flows sync --git REPO``: the flows of one commit of a git repository.

The commit is read with the ``git`` command into a temporary folder (a bare clone, then
``git archive`` of the commit), so any repository git can reach works: a local path, or
a URL with the credentials git is set up with. The flow versions registered record the
commit (``store.flow_origins``); their path reads ``REPO@COMMIT:FILE``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

import msgspec

from engine.errors import EngineError
from engine.flows import SyncedFlow, sync_directory
from store.base import Store
from store.flow_origins import FlowOrigins
from store.git_actions import GitSource

#: Seconds a git command may take (a clone over a slow network).
GIT_TIMEOUT = 300


def _git(*args: str, cwd: Path | None = None, what: str) -> bytes:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}  # never wait for a password on a terminal
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=GIT_TIMEOUT, env=env, check=False)
    except FileNotFoundError:
        raise EngineError("flows sync --git needs the git command: install git") from None
    except subprocess.TimeoutExpired:
        raise EngineError(f"{what}: git took more than {GIT_TIMEOUT} s; nothing was registered") from None
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        why = lines[-1].removeprefix("fatal: ").removeprefix("error: ") if lines else f"git exited {done.returncode}"
        raise EngineError(f"{what}: {why}; nothing was registered")
    return done.stdout


def check_source(source: GitSource, consequence: str = "nothing was registered") -> GitSource:
    """``source``, a local repository's path made absolute (the worker or server that syncs
    it later may run in another folder), if its ref and path can be given to git; an
    ``EngineError`` saying ``consequence`` otherwise."""
    if not source.repo.strip():
        raise EngineError(f"the git repository must be a path or URL git can reach; {consequence}")
    if source.path is not None and (PurePosixPath(source.path).is_absolute() or ".." in PurePosixPath(source.path).parts):
        raise EngineError(f"--path {source.path!r} must be a folder inside the repository; {consequence}")
    if not source.ref or source.ref.startswith("-"):
        raise EngineError(f"--ref {source.ref!r} is not a branch, tag or commit; {consequence}")
    local = Path(source.repo).expanduser()
    return msgspec.structs.replace(source, repo=str(local.resolve())) if local.is_dir() else source


@contextlib.contextmanager
def checkout(repo: str, ref: str = "HEAD", path: str | None = None) -> Iterator[tuple[str, Path]]:
    """The full commit id of ``ref`` in ``repo`` and a temporary folder holding its
    ``path`` (default: the whole tree), deleted on leaving."""
    check_source(GitSource(repo, ref, path))
    with tempfile.TemporaryDirectory(prefix="engine-git-") as tmp:
        bare = Path(tmp) / "repo.git"
        _git("clone", "--bare", "--quiet", "--", repo, str(bare), what=f"cannot clone git repository {repo}")
        commit = _git("rev-parse", "--verify", "--end-of-options", f"{ref}^{{commit}}", cwd=bare,
                      what=f"no commit {ref!r} in git repository {repo}").decode().strip()
        tree = Path(tmp) / "tree"
        tree.mkdir()
        archive = Path(tmp) / "tree.tar"
        archive.write_bytes(_git("archive", "--format=tar", commit, "--", *([path] if path else []), cwd=bare,
                                 what=f"no folder {path!r} in commit {commit[:12]} of {repo}"))
        with tarfile.open(archive) as tar:
            tar.extractall(tree, filter="data")
        folder = tree / path if path else tree
        if not folder.is_dir():
            raise EngineError(f"{path!r} in commit {commit[:12]} of {repo} is not a folder; nothing was registered")
        yield commit, folder


def origin(repo: str, commit: str, folder: Path) -> Callable[[Path], str]:
    """How a flow file of ``folder`` (a checkout of ``commit``) is named in the store."""
    return lambda file: f"{repo}@{commit[:12]}:{file.relative_to(folder).as_posix()}"


def sync_commit(store: Store, source: GitSource, *, strict: bool = False,
                check: Callable[[Path], None] | None = None) -> tuple[str, list[SyncedFlow]]:
    """Register the flows of one commit of ``source`` (see ``engine.flows.sync_directory``
    for ``strict``), each version recording the commit; the commit id and the flows.
    ``check(folder)`` looks at the checked-out flows first and may refuse them by raising."""
    with checkout(source.repo, source.ref, source.path) as (commit, folder):
        if check is not None:
            check(folder)
        synced = sync_directory(store, folder, origin=origin(source.repo, commit, folder), strict=strict)
        FlowOrigins(store).record([s.version for s in synced], source.repo, commit)
    return commit, synced
