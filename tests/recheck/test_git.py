"""The A/B's temporary worktree (pytest_energy/recheck/git.py): while it exists, SIGTERM ends the run as Ctrl-C
does, so that pytest's clean-up removes it; the handler it displaced comes back at close."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from pytest_energy.recheck.git import Worktree, resolve_base

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM handlers")


@pytest.fixture
def base(tmp_path):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "ci@example.com")
    git("config", "user.name", "ci")
    (tmp_path / "a.txt").write_text("a\n")
    git("add", "-A")
    git("commit", "-qm", "base")
    return resolve_base("HEAD", tmp_path)


@pytest.fixture
def default_sigterm():
    before = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    signal.signal(signal.SIGTERM, before)


def test_sigterm_interrupts_while_the_worktree_exists_and_the_default_comes_back(base, default_sigterm):
    worktree = Worktree(base)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # nothing changes before it is opened
    assert worktree.path.is_dir()
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGTERM)
    worktree.close()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL and not worktree.opened


def test_someone_elses_sigterm_handler_is_left_alone(base, default_sigterm):
    def theirs(signum, frame):
        pass

    signal.signal(signal.SIGTERM, theirs)
    worktree = Worktree(base)
    try:
        worktree.path  # noqa: B018 (opens it)
        assert signal.getsignal(signal.SIGTERM) is theirs
    finally:
        worktree.close()
    assert signal.getsignal(signal.SIGTERM) is theirs
