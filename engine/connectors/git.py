"""GIT connector: read files and metadata from a repository, or clone it, with the git CLI."""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import time
from typing import Any

from engine.connectors.base import ConnectorError, ParamSpec, excerpt, parse_params
from engine.connectors.command import run_process
from engine.connectors.masking import mask_secrets

logger = logging.getLogger(__name__)

COMMANDS = ("get", "metadata", "clone")
_TRANSIENT = (
    "could not resolve host",
    "couldn't resolve host",
    "connection refused",
    "failed to connect",
    "couldn't connect",
    "timed out",
    "connection reset",
    "early eof",
    "the remote end hung up",
    "rpc failed",
    "returned error: 5",
    "returned error: 429",
    "temporary failure",
    "network is unreachable",
)


class GitParams(ParamSpec):
    """Parameters of the GIT connector."""

    command: str
    repository_url: str
    ref: str = "HEAD"
    path: str | None = None
    target: str | None = None


class GitConnector:
    """Run one git command against a repository given by URL or local path.

    * ``get``: without ``path``, ``{"commit", "files": [every file path]}``; with ``path`` (a
      file or a directory), ``{"commit", "files": {path: text}}``; undecodable files are bytes.
    * ``metadata``: ``{"commit", "author", "author_email", "date", "message", "head",
      "branches": {name: sha}, "tags": {name: sha}}`` for the commit at ``ref``.
    * ``clone``: clone into ``target`` and check out ``ref``; ``{"path", "commit"}``. A target
      that is already a clone of the same repository is fetched and reused, so a retry after a
      lost result succeeds.

    A remote repository is cloned bare (without blobs when the server allows) into a temporary
    directory for ``get`` and ``metadata``; a local one is read in place. Network failures are
    retryable; unknown refs, paths and repositories are not.
    """

    name = "GIT"

    def run(
        self, params: dict[str, Any], *, idempotency_key: str, timeout: float | None
    ) -> dict[str, Any]:
        """Run ``command`` against ``repository_url``; see the class docstring."""
        spec = parse_params(self.name, params, GitParams)
        _validate(spec)
        git = _Git(spec, timeout)
        if spec.command == "clone":
            return git.clone(spec.target or "")
        if os.path.isdir(spec.repository_url):
            git.check_top_level(spec.repository_url)
            return git.read(spec.repository_url)
        with tempfile.TemporaryDirectory(prefix="engine-git-") as scratch:
            mirror = os.path.join(scratch, "repo.git")
            url = spec.repository_url
            git("clone", "--bare", "--quiet", "--filter=blob:none", "--", url, mirror)
            return git.read(mirror)


def _validate(spec: GitParams) -> None:
    problem = None
    if spec.command not in COMMANDS:
        problem = f"command must be one of {', '.join(COMMANDS)}, not {spec.command!r}"
    elif spec.repository_url.startswith("-") or spec.ref.startswith("-"):
        problem = "repository_url and ref must not start with '-'"
    elif spec.command == "clone" and not spec.target:
        problem = "clone needs target, the directory to clone into"
    elif spec.command != "clone" and spec.target is not None:
        problem = "target is only used by the clone command"
    elif spec.command != "get" and spec.path is not None:
        problem = "path is only used by the get command"
    if problem:
        raise ConnectorError(
            f"GIT parameters are invalid: {problem}", retryable=False, details={"problem": problem}
        )


class _Git:
    """Runs git for one connector call, sharing its deadline and describing its failures."""

    def __init__(self, spec: GitParams, timeout: float | None):
        self.spec = spec
        self.timeout = timeout
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.where = f"GIT {spec.command} {mask_secrets(spec.repository_url)}"

    def __call__(self, *args: str, cwd: str | None = None, stdin: bytes | None = None) -> bytes:
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
        env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
        remaining = None if self.deadline is None else max(self.deadline - time.monotonic(), 0.01)
        try:
            done = run_process(["git", *args], stdin=stdin, env=env, cwd=cwd, timeout=remaining)
        except FileNotFoundError:
            raise ConnectorError(
                f"{self.where}: the git executable was not found; install git on the worker",
                retryable=False,
            ) from None
        except subprocess.TimeoutExpired:
            raise ConnectorError(
                f"{self.where}: git {args[0]} was still running when the timeout of "
                f"{self.timeout:g}s ran out (retryable); raise timeout for large repositories or "
                "slow networks",
                retryable=True,
                details={"git": args[0]},
            ) from None
        if done.returncode != 0:
            raise self.error(args[0], done.stderr)
        return done.stdout

    def error(self, step: str, stderr: bytes) -> ConnectorError:
        """Describe a failed git invocation, retryable when the failure looks like the network."""
        text = mask_secrets(excerpt(stderr, 300))
        retryable = any(marker in text.lower() for marker in _TRANSIENT)
        kind = "retryable" if retryable else "not retryable"
        advice = "check the network and the server" if retryable else "check repository_url"
        return ConnectorError(
            f"{self.where}: git {step} failed ({kind}): {text}; {advice}",
            retryable=retryable,
            details={"git": step, "stderr": text},
        )

    def check_top_level(self, repo: str) -> None:
        """Refuse a local directory that is not the top level of a repository."""
        prefix = self("rev-parse", "--show-prefix", cwd=repo).decode().strip()
        if prefix:
            raise ConnectorError(
                f"{self.where}: the directory is inside a repository, at {prefix!r} below its top "
                "level (not retryable); use the repository's top-level directory",
                retryable=False,
                details={"prefix": prefix},
            )

    def resolve(self, repo: str, ref: str, *, remote_first: bool = False) -> str:
        """Return the commit sha that ``ref`` names in ``repo``, or raise a non-retryable error.

        ``remote_first`` prefers ``origin/<ref>`` over a (possibly stale) local branch.
        """
        candidates = [f"{ref}^{{commit}}", f"refs/remotes/origin/{ref}^{{commit}}"]
        for candidate in reversed(candidates) if remote_first else candidates:
            try:
                sha = self("rev-parse", "--verify", "--quiet", candidate, cwd=repo)
            except ConnectorError:
                continue
            return sha.decode().strip()
        branches = sorted(self.refs(repo, "refs/heads"))
        raise ConnectorError(
            f"{self.where}: unknown ref {ref!r} (not retryable); use a branch, tag or commit sha "
            f"of the repository (branches: {', '.join(branches) or 'none'})",
            retryable=False,
            details={"ref": ref, "branches": branches},
        )

    def refs(self, repo: str, prefix: str) -> dict[str, str]:
        """Return {short name: commit sha} for the refs under ``prefix`` (tags are peeled)."""
        out = self(
            "for-each-ref", "--format=%(refname)%00%(objectname)%00%(*objectname)", prefix, cwd=repo
        )
        refs = {}
        for line in out.decode().splitlines():
            name, sha, peeled = line.split("\0")
            refs[name.removeprefix(prefix + "/")] = peeled or sha
        return refs

    def read(self, repo: str) -> dict[str, Any]:
        """Answer ``get`` or ``metadata`` from ``repo`` (a bare mirror or a local repository)."""
        sha = self.resolve(repo, self.spec.ref)
        if self.spec.command == "metadata":
            fields = self("show", "-s", "--format=%an%x00%ae%x00%aI%x00%B", sha, cwd=repo)
            author, author_email, date, message = fields.decode().split("\0", 3)
            try:
                head: str | None = self("symbolic-ref", "-q", "--short", "HEAD", cwd=repo).decode()
            except ConnectorError:
                head = None  # detached HEAD
            return {
                "commit": sha,
                "author": author,
                "author_email": author_email,
                "date": date,
                "message": message.strip(),
                "head": head.strip() if head else None,
                "branches": self.refs(repo, "refs/heads"),
                "tags": self.refs(repo, "refs/tags"),
            }
        pathspec = [self.spec.path] if self.spec.path else []
        listing = self("ls-tree", "-r", "-z", "--full-tree", sha, "--", *pathspec, cwd=repo)
        blobs = {}
        for entry in filter(None, listing.split(b"\0")):
            meta, _, path = entry.partition(b"\t")
            _, kind, oid = meta.split()
            if kind == b"blob":
                blobs[path.decode(errors="surrogateescape")] = oid.decode()
        if self.spec.path is None:
            return {"commit": sha, "files": sorted(blobs)}
        if not blobs:
            raise ConnectorError(
                f"{self.where}: path {self.spec.path!r} does not exist at {self.spec.ref} "
                "(not retryable); check path and ref",
                retryable=False,
                details={"path": self.spec.path, "ref": self.spec.ref},
            )
        contents = self.blobs(repo, list(blobs.values()))
        return {"commit": sha, "files": {path: contents[oid] for path, oid in blobs.items()}}

    def blobs(self, repo: str, oids: list[str]) -> dict[str, str | bytes]:
        """Read blobs in one ``cat-file --batch``; text when it is UTF-8, bytes otherwise."""
        out = self("cat-file", "--batch", cwd=repo, stdin="".join(f"{o}\n" for o in oids).encode())
        contents: dict[str, str | bytes] = {}
        position = 0
        for oid in oids:
            header_end = out.index(b"\n", position)
            size = int(out[position:header_end].split()[2])
            data = out[header_end + 1 : header_end + 1 + size]
            position = header_end + 1 + size + 1
            try:
                contents[oid] = data.decode()
            except UnicodeDecodeError:
                contents[oid] = data
        return contents

    def clone(self, target: str) -> dict[str, Any]:
        """Clone into ``target`` (or refresh a previous clone there) and check out the ref."""
        path = os.path.abspath(target)
        if os.path.isdir(os.path.join(path, ".git")):
            origin = self("config", "--get", "remote.origin.url", cwd=path).decode().strip()
            if _same_repository(origin, self.spec.repository_url):
                self("fetch", "--quiet", "--tags", "--force", "origin", cwd=path)
            else:
                raise ConnectorError(
                    f"{self.where}: target {path} already holds a clone of another repository "
                    f"({mask_secrets(origin)}) (not retryable); choose another target",
                    retryable=False,
                    details={"target": path},
                )
        else:
            self("clone", "--quiet", "--", self.spec.repository_url, path)
        ref = self.spec.ref
        if ref == "HEAD":
            ref = self("rev-parse", "--abbrev-ref", "origin/HEAD", cwd=path).decode().strip()
            ref = ref.removeprefix("origin/")
        sha = self.resolve(path, ref, remote_first=True)
        if self.refs(path, "refs/remotes/origin").get(ref) == sha:
            self("checkout", "--quiet", "-B", ref, sha, "--", cwd=path)
        else:
            self("checkout", "--quiet", "--detach", sha, "--", cwd=path)
        return {"path": path, "commit": sha}


def _same_repository(origin: str, url: str) -> bool:
    if os.path.isdir(origin) and os.path.isdir(url):
        return os.path.realpath(origin) == os.path.realpath(url)
    return origin.rstrip("/") == url.rstrip("/")
