"""EnergySession without a pytest run: a fake meter, records made by hand, baselines in a temporary folder."""

from __future__ import annotations

import json

import pytest

from pytest_energy.config import SessionConfig, settings_for
from pytest_energy.errors import BaselineError
from pytest_energy.meters.fake import manual_meter
from pytest_energy.records import TestRecord, VerdictKind
from pytest_energy.report.outputs import complete_run
from pytest_energy.session import SESSION_PLUGIN, BenchmarkResult, EnergySession, get_session

NODEID = "tests/test_x.py::test_a"


def _config(tmp_path, **changes) -> SessionConfig:
    values = {"rootdir": str(tmp_path), "baseline_dir": str(tmp_path / "baselines"), "probe": "off"}
    return SessionConfig(**{**values, **changes})


def _record(energy_j: list[float], duration_s: list[float], nodeid: str = NODEID) -> TestRecord:
    record = TestRecord(nodeid=nodeid, name=nodeid.rpartition("::")[2])
    record.metric("energy_j", "J", method="rapl").samples = list(energy_j)
    record.metric("duration_s", "s").samples = list(duration_s)
    return record


def _session(tmp_path, **changes) -> EnergySession:
    meter, _ = manual_meter()
    return EnergySession(_config(tmp_path, **changes), meter)


def _run(session: EnergySession, *records: TestRecord, placement: dict | None = None):
    """Judge each record as the plugin does and collect it as the controller does; then finish."""
    for record in records:
        settings = settings_for(session.config)
        outcome = session.judge(record, settings)
        session.results.append(BenchmarkResult(record, settings, outcome, machine=session.fingerprint(),
                                               placement=placement))
    return session.finish(exitstatus=0, tests_failed=0)


def test_without_a_baseline_a_test_is_noted_not_failed(tmp_path):
    session = _session(tmp_path)
    outcome = session.judge(_record([10, 11, 10], [1, 1.1, 1]), settings_for(session.config))
    assert not outcome.failed and not outcome.verdicts
    assert outcome.baseline_file == "baselines/tests__test_x.json"
    assert "no baseline for this test in baselines/tests__test_x.json" in outcome.notes[0]


def test_a_saved_run_is_the_baseline_of_the_next_and_histories_grow(tmp_path):
    first = _run(_session(tmp_path, save_baseline=True), _record([10, 11, 10], [1, 1.1, 1]))
    path = tmp_path / "baselines" / "tests__test_x.json"
    assert first.written == [str(path)] and not first.errors
    assert first.saved.tests == 1 and first.saved.history_lengths == [1, 1]
    stored = json.loads(path.read_text())["entries"][NODEID]
    assert list(stored["runs"]) == [first.saved.run_id]

    second_session = _session(tmp_path, save_baseline=True)
    second_session.load_baselines()
    second = _run(second_session, _record([10, 10.5, 10], [1, 1.05, 1]))
    verdicts = second.benchmarks[0].outcome.verdicts
    assert {v.metric for v in verdicts} == {"energy_j", "duration_s"}
    assert all(v.verdict == VerdictKind.PASS for v in verdicts)
    assert second.saved.history_lengths == [2, 2]
    assert set(second.baselines) == {NODEID}  # what the reports chart: the entry as it was before this save
    assert second.baselines[NODEID].commit == first.commit_info
    complete_run(second)
    assert second.baseline_notes == [
        f"baseline history: run {second_session.run_id} appended (keeping the last 10) for 1 test(s); the "
        "histories now hold 2 run(s) (the gate judges by history from 3)"]


def test_finish_writes_no_report_and_hands_the_reporters_data(tmp_path):
    session = _session(tmp_path, json_path=str(tmp_path / "e.json"), markdown_path=str(tmp_path / "e.md"))
    run = _run(session, _record([10, 11, 10], [1, 1.1, 1]))
    assert not (tmp_path / "e.json").exists() and not (tmp_path / "e.md").exists()
    assert run.written == [] and run.errors == []
    assert (run.exitstatus, run.tests_failed, run.placement) == (0, 0, None)
    assert run.meter.name == "manual" and run.machine_info["meter"] == "manual"
    assert run.hulk_reference.entry is None and "no stored HULK reference" in run.hulk_reference.note
    complete_run(run)
    assert run.session_info["meter"] == "manual" and run.session_info["exitstatus"] == 0
    assert run.session_info["save_baseline"] is False and "placement" not in run.session_info


def test_a_run_without_results_is_empty(tmp_path):
    run = _session(tmp_path, save_baseline=True).finish()
    assert run.benchmarks == [] and run.written == [] and run.commit_info == {}
    assert complete_run(run).session_info == {}
    assert not (tmp_path / "baselines").exists()


def test_results_measured_on_shared_devices_are_neither_compared_nor_saved(tmp_path):
    _run(_session(tmp_path, save_baseline=True), _record([10, 11, 10], [1, 1.1, 1]))
    session = _session(tmp_path, save_baseline=True)
    session.placement = {"shared": ["GPU 0, shared with gw1"]}
    outcome = session.judge(_record([20, 21, 20], [2, 2, 2]), settings_for(session.config))
    assert not outcome.verdicts and "measured on GPU 0, shared with gw1" in outcome.notes[0]
    before = (tmp_path / "baselines" / "tests__test_x.json").read_text()
    run = _run(session, _record([20, 21, 20], [2, 2, 2]), placement={"shared": ["GPU 0, shared with gw1"]})
    assert run.written == [] and run.unsaved_shared == [NODEID]
    assert (tmp_path / "baselines" / "tests__test_x.json").read_text() == before
    complete_run(run)
    assert run.errors == [
        f"--energy-save-baseline: 1 result(s) measured while other workers used the same devices were not saved "
        f"({NODEID}); run with fewer workers (see the warning about shared devices) to record them"]


def test_a_damaged_baseline_file_stops_the_run_before_measuring(tmp_path):
    (tmp_path / "baselines").mkdir()
    (tmp_path / "baselines" / "tests__test_x.json").write_text("{not json")
    with pytest.raises(BaselineError, match="tests__test_x.json"):
        _session(tmp_path).load_baselines()


def test_a_baseline_that_cannot_be_saved_is_an_error_of_the_run_not_an_exception(tmp_path):
    record = _record([10, 11, 10], [1, 1.1, 1])
    session = _session(tmp_path, save_baseline=True)
    settings = settings_for(session.config)
    session.results.append(BenchmarkResult(record, settings, session.judge(record, settings)))
    record.metrics["energy_j"].samples = [float("nan")]  # cannot be stored: left out, named, others saved
    run = session.finish()
    assert run.written == [] and len(run.errors) == 1
    assert "cannot save baseline of 'tests/test_x.py::test_a'" in run.errors[0] and "finite numbers" in run.errors[0]
    assert not (tmp_path / "baselines" / "tests__test_x.json").exists()


def test_the_session_is_found_through_the_plugin_manager():
    class Manager:
        def __init__(self):
            self.plugins = {}

        def get_plugin(self, name):
            return self.plugins.get(name)

    class Config:
        pluginmanager = Manager()

    assert get_session(Config()) is None
    sentinel = object()
    Config.pluginmanager.plugins[SESSION_PLUGIN] = sentinel
    assert get_session(Config()) is sentinel
