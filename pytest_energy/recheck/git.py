"""The base revision of a same-job A/B: resolve it in the user's clone, check it out into a temporary worktree.

Nothing is written into the user's checkout: the worktree lives in a temporary folder, and its bookkeeping in
`.git/worktrees/` is removed with it (`Worktree.close`, called at the end of the session, also after Ctrl-C).
No pytest import.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..machine import git_output

__all__ = ["BaseRevision", "Worktree", "resolve_base"]

_SHA = re.compile(r"\A[0-9a-fA-F]{7,40}\Z")


def _git(args: list[str], cwd: str | Path) -> subprocess.CompletedProcess:
    """For the worktree's own commands, whose errors are shown and which may take longer than a query."""
    try:
        return subprocess.run(["git", *args], cwd=str(cwd), capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise UsageError("--energy-against needs git on PATH") from None


@dataclass(frozen=True)
class BaseRevision:
    """REV as the user gave it, what it resolved to, and where the checkout is."""

    given: str  # "main", "HEAD~1", "auto", a sha
    ref: str  # what was resolved: given, or for "auto" the base it found ("origin/main")
    sha: str
    toplevel: Path  # the clone's top level
    subdir: str  # pytest's rootdir relative to the top level ("" when they are the same)
    how: str = ""  # for "auto": where the base came from

    @property
    def short(self) -> str:
        return self.sha[:7]


def _fetch_hint(ref: str) -> str:
    if _SHA.match(ref):
        return f"git fetch --no-tags --depth=1 origin {ref}"
    branch = ref[len("origin/"):] if ref.startswith("origin/") else ref
    return f"git fetch --no-tags --depth=50 origin {branch}:refs/remotes/origin/{branch}"


def _commit(ref: str, toplevel: Path) -> str | None:
    candidates = [ref] if _SHA.match(ref) or ref.startswith(("origin/", "HEAD", "refs/")) else [ref, f"origin/{ref}"]
    for candidate in candidates:
        sha = git_output(["rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}"], toplevel)
        if sha:
            return sha
    return None


def _auto(toplevel: Path, env: Mapping[str, str]) -> tuple[str, str]:
    """The base of "auto": the pull request's base branch from the CI environment, else the merge-base of HEAD
    with the default branch (its previous commit when HEAD is on the default branch itself)."""
    base_ref = (env.get("GITHUB_BASE_REF") or "").strip()
    if base_ref:
        return f"origin/{base_ref}", f"the pull request's base branch (GITHUB_BASE_REF={base_ref})"
    gitlab = (env.get("CI_MERGE_REQUEST_DIFF_BASE_SHA") or "").strip()
    if gitlab:
        return gitlab, "the merge request's base (CI_MERGE_REQUEST_DIFF_BASE_SHA)"
    default = git_output(["symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD"], toplevel)
    candidates = [default] if default else []
    candidates += ["origin/main", "origin/master", "main", "master"]
    head = git_output(["rev-parse", "HEAD"], toplevel)
    for branch in candidates:
        if _commit(branch, toplevel) is None:
            continue
        base = git_output(["merge-base", "HEAD", branch], toplevel)
        if base is None:
            raise UsageError(f"--energy-against auto: HEAD and {branch} share no history in this clone (a shallow "
                             f"checkout?); deepen it: git fetch --no-tags --deepen=50 origin, or give "
                             "--energy-against REV")
        if base == head:
            return "HEAD~1", f"HEAD is on the default branch {branch}: its previous commit"
        return base, f"the merge-base of HEAD with {branch}"
    raise UsageError("--energy-against auto: no base found (no GITHUB_BASE_REF or CI_MERGE_REQUEST_DIFF_BASE_SHA, "
                     "no origin/HEAD, main or master in this clone); give --energy-against REV")


def resolve_base(given: str, rootdir: str | Path, env: Mapping[str, str] | None = None) -> BaseRevision:
    """REV resolved to a commit of the clone that holds `rootdir`, or a UsageError saying how to fix it (the run
    stops at start, exit 4): not a git checkout, or REV not in this clone (CI's shallow checkout: the error prints
    the `git fetch` that brings it)."""
    env = os.environ if env is None else env
    if shutil.which("git") is None:
        raise UsageError("--energy-against needs git on PATH")
    rootdir = Path(rootdir).resolve()
    top = git_output(["rev-parse", "--show-toplevel"], rootdir)
    if not top:
        raise UsageError(f"--energy-against {given}: {rootdir} is not in a git checkout")
    toplevel = Path(top).resolve()
    ref, how = _auto(toplevel, env) if given == "auto" else (given, "")
    sha = _commit(ref, toplevel)
    if sha is None:
        shallow = git_output(["rev-parse", "--is-shallow-repository"], toplevel) == "true"
        why = " (this is a shallow clone)" if shallow else ""
        named = f"{ref} ({how})" if how else ref
        raise UsageError(f"--energy-against {given}: {named} is not a commit in this clone{why}; fetch it first: "
                         f"{_fetch_hint(ref)}")
    subdir = os.path.relpath(rootdir, toplevel)
    return BaseRevision(given, ref, sha, toplevel, "" if subdir == "." else subdir, how)


class Worktree:
    """The base revision checked out in a temporary folder (`git worktree add --detach`), opened on first use and
    removed by `close` (idempotent), together with git's record of it."""

    def __init__(self, base: BaseRevision) -> None:
        self.base = base
        self._tmp: str | None = None
        self._path: Path | None = None
        self._sigterm: object = None  # the SIGTERM handler to restore at close, while ours is installed

    @property
    def path(self) -> Path:
        """The base's folder that corresponds to pytest's rootdir (opens the worktree)."""
        if self._path is None:
            self._tmp = tempfile.mkdtemp(prefix="pytest-energy-base-")
            tree = Path(self._tmp, self.base.short)
            done = _git(["worktree", "add", "--detach", "--quiet", str(tree), self.base.sha], self.base.toplevel)
            if done.returncode != 0:
                shutil.rmtree(self._tmp, ignore_errors=True)
                self._tmp = None
                raise UsageError(f"--energy-against: could not check out {self.base.short} into a temporary "
                                 f"worktree: {(done.stderr or done.stdout).strip()}")
            self._path = tree
            self._interrupt_on_sigterm()
        return self._path / self.base.subdir if self.base.subdir else self._path

    def _interrupt_on_sigterm(self) -> None:
        """While the worktree exists, SIGTERM (a cancelled CI job, `kill`) ends the run as Ctrl-C does, through
        pytest's KeyboardInterrupt path that closes it: by default SIGTERM ends Python with no clean-up at all and
        leaves the folder and git's record of it. Only when nobody else handles SIGTERM, and only in the main
        thread (the only one that may set a handler)."""
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return
        self._sigterm = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)

    @property
    def top(self) -> Path:
        self.path  # noqa: B018 (opens it)
        assert self._path is not None
        return self._path

    @property
    def opened(self) -> bool:
        return self._path is not None

    def close(self) -> None:
        if self._sigterm is not None:
            signal.signal(signal.SIGTERM, self._sigterm)  # type: ignore[arg-type]
            self._sigterm = None
        if self._path is not None:
            _git(["worktree", "remove", "--force", str(self._path)], self.base.toplevel)
            self._path = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
            _git(["worktree", "prune"], self.base.toplevel)


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
