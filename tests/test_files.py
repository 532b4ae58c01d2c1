"""files.write_atomic: the one writer of baselines and reports."""

from __future__ import annotations

import json
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


# --- write_group: several files, all or none ------------------------------------------------------------------

def test_a_group_write_that_fails_before_its_commit_point_changes_nothing(tmp_path, monkeypatch):
    from pytest_energy.files import write_group

    (tmp_path / "a.json").write_text("old a")
    real = os.fsync
    calls = []

    def fail_on_second(fd):
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(fd)

    monkeypatch.setattr(os, "fsync", fail_on_second)
    with pytest.raises(ReportError, match=r"cannot write report .*b\.json: .*No space.*none of the 2 file"):
        write_group({tmp_path / "a.json": "new a", tmp_path / "b.json": "new b"}, tmp_path / ".journal",
                    error=ReportError, what="report")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"] and (tmp_path / "a.json").read_text() == "old a"


def test_a_committed_group_is_seen_by_readers_and_finished_by_recovery(tmp_path):
    from pytest_energy.files import _write_temporary, pending_group, recover_group

    (tmp_path / "a.json").write_text("old a")
    tmp_a = _write_temporary(tmp_path / "a.json", "new a")
    tmp_b = _write_temporary(tmp_path / "b.json", "new b")
    journal = tmp_path / ".journal"
    journal.write_text(json.dumps({"version": 1, "renames": [[tmp_a.name, "a.json"], [tmp_b.name, "b.json"]]}))
    os.replace(tmp_a, tmp_path / "a.json")  # killed after the first rename
    assert pending_group(journal) == {tmp_path / "b.json": tmp_b}  # a reader reads b's new text from there
    assert recover_group(journal) is True and recover_group(journal) is False
    assert [(p.name, p.read_text()) for p in sorted(tmp_path.iterdir())] == [("a.json", "new a"), ("b.json", "new b")]


@pytest.mark.parametrize("journal", ["{", json.dumps({"version": 1, "renames": [["../x.tmp", "/etc/passwd"]]}),
                                     json.dumps({"version": 9, "renames": []})])
def test_a_damaged_journal_is_an_error_and_renames_nothing(tmp_path, journal):
    from pytest_energy.files import recover_group

    (tmp_path / ".journal").write_text(journal)
    with pytest.raises(ReportError, match=r"\.journal is damaged"):
        recover_group(tmp_path / ".journal", error=ReportError)
    assert (tmp_path / ".journal").read_text() == journal


def test_a_journal_renames_onto_a_dotfile_only_when_the_reader_names_it(tmp_path):
    """A crafted journal must not replace a hidden file (the journal itself, say); the baselines' pool cache
    is the one the store allows."""
    from pytest_energy.files import _write_temporary, pending_group, recover_group

    tmp = _write_temporary(tmp_path / ".cache.json", "new cache")
    (tmp_path / ".journal").write_text(json.dumps({"version": 1, "renames": [[tmp.name, ".cache.json"]]}))
    with pytest.raises(ReportError, match=r"\.journal is damaged"):
        pending_group(tmp_path / ".journal", error=ReportError)
    assert pending_group(tmp_path / ".journal", hidden=(".cache.json",)) == {tmp_path / ".cache.json": tmp}
    assert recover_group(tmp_path / ".journal", hidden=(".cache.json",)) is True
    assert (tmp_path / ".cache.json").read_text() == "new cache"


def test_read_json_is_read_bytes_then_parse_json(tmp_path):
    from pytest_energy.files import parse_json, read_bytes, read_json

    path = tmp_path / "a.json"
    path.write_text('{"a": [1, 2.5]}')
    raw = read_bytes(path, what="file", repair="fix it", max_bytes=100)
    assert parse_json(raw, path, what="file", repair="fix it") == read_json(path, what="file", repair="fix it")
    with pytest.raises(ReportError, match=r"a\.json: .*more than the 10 a file may hold.*fix it"):
        read_bytes(path, what="file", repair="fix it", max_bytes=10, error=ReportError)
    with pytest.raises(ReportError, match=r"a\.json: holds git conflict markers"):
        parse_json(b"<<<<<<< ours\n{}\n=======\n{}\n>>>>>>> theirs\n", path, what="file", repair="r", error=ReportError)
