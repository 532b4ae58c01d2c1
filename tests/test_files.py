"""files.write_atomic: the one writer of baselines and reports."""

from __future__ import annotations

import os

import pytest

from pytest_energy.errors import ReportError
from pytest_energy.files import write_atomic


def test_interrupt_during_a_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "baseline.json"
    target.write_text("old")

    def interrupted(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["baseline.json"]


def test_mode_follows_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_atomic(tmp_path / "r.json", "{}")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_failure_names_what_and_where(tmp_path):
    with pytest.raises(ReportError, match=r"cannot write JSON report .*missing/r\.json"):
        write_atomic(tmp_path / "missing" / "r.json", "{}", error=ReportError, what="JSON report")
