"""One run of one test as a baseline entry, the history-restart rule, and RunBaselines (gate/store.py)."""

from __future__ import annotations

import json

from pytest_energy.gate.baselines import BaselineStore, restarted_metrics, run_entry
from pytest_energy.gate.compare import Rule, Verdict
from pytest_energy.gate.store import RunBaselines, baseline_folder_problem
from pytest_energy.records import Better, Kind, Metric, RuleKind, VerdictKind
from pytest_energy.report.outputs import saved_notes

NODEID = "tests/test_x.py::test_a"
MACHINE = {"method": "rapl", "gpus": [], "cpu_model": "fake cpu"}


def _metrics(energy_j: list[float]) -> dict[str, Metric]:
    return {"energy_j": Metric("energy_j", "J", Better.LOWER, Kind.MEASURED, list(energy_j), "rapl"),
            "steps": Metric("steps", "1", Better.LOWER, Kind.DETERMINISTIC, [100.0])}


def _verdict(metric: str, verdict: VerdictKind, rule: str) -> Verdict:
    return Verdict(metric, "J", Kind.MEASURED, Better.LOWER, verdict, 10.0, 13.0, 30.0, 0.001, 0.08, 5, 5, rule=rule,
                   rule_kind=RuleKind.from_text(rule))


def _entry(energy_j: list[float], run_id: str, **kw):
    return run_entry(NODEID, _metrics(energy_j), machine=MACHINE, commit={"id": "abc"},
                     datetime_iso="2026-12-01T00:00:00", run_id=run_id, **kw)


def test_a_run_entry_holds_this_run_alone():
    entry = _entry([10, 12], "run1", extra_info={"model": "m"}, probe_s=0.5, probe_id="probe-1")
    assert entry.method == "rapl" and entry.extra_info == {"model": "m"}
    assert list(entry.history) == ["energy_j"]  # deterministic metrics keep no history
    (summary,) = entry.history["energy_j"]
    assert (summary.run_id, summary.mean, summary.n) == ("run1", 11.0, 2)
    assert entry.runs == {"run1": {"datetime": "2026-12-01T00:00:00", "commit": "abc", "probe_s": 0.5,
                                   "probe_id": "probe-1"}}
    unprobed = _entry([10], "run2", probe_id="probe-1")  # a merged shard carries no probe: no probe id either
    assert unprobed.runs["run2"]["probe_s"] is None and unprobed.runs["run2"]["probe_id"] is None


def test_only_the_history_rule_restarts_a_history():
    history_rule = f"{Rule.HISTORY}: 5 runs, pooled"
    verdicts = [_verdict("a", VerdictKind.REGRESSION, history_rule), _verdict("b", VerdictKind.IMPROVED, history_rule),
                _verdict("c", VerdictKind.PASS, history_rule), _verdict("d", VerdictKind.REGRESSION, Rule.WITHIN_RUN)]
    assert restarted_metrics(verdicts) == frozenset({"a", "b"})
    assert restarted_metrics([]) == frozenset()


def test_run_baselines_append_restart_and_report_as_data(tmp_path):
    store = RunBaselines(tmp_path / "b", shown=lambda p: p.name)
    assert store.entry(NODEID) is None and store.compared([NODEID]) == {}
    first = store.save([_entry([10, 10], "r1")], {}, run_id="r1", keep=10, reset=False)
    assert first.written == [str(tmp_path / "b" / "tests__test_x.json")] and first.history_lengths == [1]
    assert first.restarted == {} and first.error is None

    again = RunBaselines(tmp_path / "b")
    assert again.entry(NODEID) is not None and set(again.compared([NODEID, "other"])) == {NODEID}
    second = again.save([_entry([13, 13], "r2")], {NODEID: frozenset({"energy_j"})}, run_id="r2", keep=10,
                        reset=False)
    assert second.history_lengths == [1] and second.restarted == {NODEID: ["energy_j"]}
    stored = BaselineStore(tmp_path / "b").load(NODEID)
    assert [h.run_id for h in stored.history["energy_j"]] == ["r2"]
    assert saved_notes(second) == [
        "baseline history: run r2 appended (keeping the last 10) for 1 test(s); the histories now hold 1 run(s) "
        "(the gate judges by history from 3)",
        f"{NODEID}: new history for energy_j (its REGRESSION or IMPROVED is accepted by this save)"]
    assert store.file_for(NODEID) == "tests__test_x.json"


def test_an_entry_that_cannot_be_saved_is_an_error_the_others_are_saved(tmp_path):
    bad = _entry([10], "r1")
    bad.metrics["energy_j"].samples = [float("inf")]
    good = run_entry("tests/test_y.py::test_b", _metrics([5]), machine=MACHINE, commit={}, datetime_iso="d",
                     run_id="r1")
    saved = RunBaselines(tmp_path).save([bad, good], {}, run_id="r1", keep=10, reset=False)
    assert saved.written == [str(tmp_path / "tests__test_y.json")]
    assert "cannot save baseline of 'tests/test_x.py::test_a'" in saved.error
    assert saved_notes(saved) == []  # no summary of a save that did not complete
    assert json.loads((tmp_path / "tests__test_y.json").read_text())["schema_version"] == 2


def test_the_baseline_folder_is_checked_at_start_up(tmp_path):
    (tmp_path / "file").write_text("")
    assert baseline_folder_problem(tmp_path / "new", save=True) is None  # created on the first save
    assert baseline_folder_problem(tmp_path / "file", save=False) == f"--energy-baseline-dir {tmp_path / 'file'} " \
        "is a file, not a folder"
    assert "is a file, not a folder" in baseline_folder_problem(tmp_path / "file" / "sub", save=True)
    assert baseline_folder_problem(tmp_path / "missing", save=False) is None  # nothing to compare with: noted later
