"""Golden files pin the formats other tools and later versions read: a baseline file and the JSON report.

A change to either format must be deliberate: regenerate with `PYTEST_ENERGY_UPDATE_GOLDEN=1 pytest
tests/test_golden_formats.py`, review the diff, and say in the commit why the format changed (and, for
baselines, that files written by the previous version still load).

`baseline_v1.json` is the file pytest-energy 0.1 wrote (schema 1, before run histories); it is never
regenerated: it pins that such files keep loading.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pytest_energy.config import SessionConfig, TestSettings
from pytest_energy.gate.baselines import BaselineEntry, BaselineStore
from pytest_energy.gate.judge import Outcome
from pytest_energy.gate.compare import compare_record
from pytest_energy.gate.history import RunSummary
from pytest_energy.meters.fake import manual_measurer
from pytest_energy.records import Metric, TestRecord
from pytest_energy.report.json import build_report, json_text
from pytest_energy.records import BenchmarkResult, MeterInfo, RunResult

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("PYTEST_ENERGY_UPDATE_GOLDEN") == "1"
MACHINE = {"meter": "manual", "method": "rapl", "gpus": [], "cpu_model": "Golden CPU", "cpu_count": 2}


def _record() -> TestRecord:
    """A benchmark of three 0.5 s rounds at 20, 22 and 24 W on a hand-moved meter: every number is exact."""
    measurer, clock = manual_measurer()
    record = TestRecord("benchmarks/test_golden.py::test_it[a]", "test_it[a]", params={"p": "a"})
    for watts in (20.0, 22.0, 24.0):
        with measurer.measure("round") as w:
            clock.advance(0.5, watts * 0.5)
        record.windows.append(w)
        record.metric("duration_s", "s").add(w.duration_s)
        record.metric("energy_j", "J", method=w.method).add(w.energy_j)
    record.metric("tokens", "tokens", kind="deterministic").add(4096)
    for w in record.windows:  # peak memory depends on the process running the test
        w.peak_memory_bytes, w.peak_memory_source = 1048576, "rss-hwm"
    record.extra_info["model"] = "golden"
    return record


def _check(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == text, f"{name} changed: see this module's docstring"


def test_baseline_file_format(tmp_path):
    record = _record()
    # Two saved runs: an earlier one with its probe, and this one (its energy_j history restarted after an
    # accepted change, so it holds this run only).
    runs = {"run-a": {"datetime": "2025-12-31T00:00:00+00:00", "commit": "1" * 40, "probe_s": 0.03,
                      "probe_id": "v1-CPython-3.11"},
            "run-b": {"datetime": "2026-01-01T00:00:00+00:00", "commit": "0" * 40, "probe_s": 0.0315,
                      "probe_id": "v1-CPython-3.11"}}
    history = {"duration_s": [RunSummary(0.48, 0.01, 3, "run-a"), RunSummary.of([0.5, 0.5, 0.5], "run-b")],
               "energy_j": [RunSummary.of([10.0, 11.0, 12.0], "run-b")]}
    entry = BaselineEntry(nodeid=record.nodeid, machine=MACHINE, commit={"id": "0" * 40, "dirty": False},
                          datetime="2026-01-01T00:00:00+00:00", method="rapl", metrics=record.metrics,
                          extra_info=record.extra_info, history=history, runs=runs)
    store = BaselineStore(tmp_path)
    [path] = store.save([entry])
    _check("baseline.json", path.read_text(encoding="utf-8"))
    assert store.load(record.nodeid) == entry  # and it reads back as it was written


def test_schema_1_baseline_still_loads_as_a_history_of_one_run(tmp_path):
    store = BaselineStore(tmp_path)
    nodeid = "benchmarks/test_golden.py::test_it[a]"
    store.path_for(nodeid).write_bytes((GOLDEN / "baseline_v1.json").read_bytes())
    entry = store.load(nodeid)
    assert entry.metrics["energy_j"].samples == [10.0, 11.0, 12.0]
    [run] = entry.history["energy_j"]
    assert (run.mean, run.sd, run.n) == (11.0, pytest.approx(1.0), 3) and run.run_id == "v1:2026-01-01T00:00:00+00:00"
    assert "tokens" not in entry.history  # deterministic metrics keep no history
    assert entry.runs[run.run_id]["probe_s"] is None

    # The next save writes schema 2 and keeps that run as the oldest of the history.
    store.save([entry])
    assert json.loads(store.path_for(nodeid).read_text())["schema_version"] == 2
    assert store.load(nodeid) == entry


def test_json_report_format():
    record = _record()
    baseline = {"energy_j": Metric("energy_j", "J", samples=[10.0, 11.0, 12.0], method="rapl"),
                "duration_s": Metric("duration_s", "s", samples=[0.5, 0.5, 0.5])}
    verdicts = compare_record(baseline, record.metrics, TestSettings().tolerance_for)
    run = RunResult(meter=MeterInfo("manual", ()), config=SessionConfig(),
                    benchmarks=[BenchmarkResult(record, TestSettings(), Outcome(verdicts=verdicts))],
                    machine_info={"node": "golden", **MACHINE}, commit_info={"id": "0" * 40},
                    datetime="2026-01-01T00:00:00+00:00", session_info={"meter": "manual"})
    report = build_report(run)
    report["version"] = "GOLDEN"  # the package version is not part of the format
    _check("report.json", json_text(report))
    assert json.loads((GOLDEN / "report.json").read_text())["benchmarks"][0]["fullname"] == record.nodeid


@pytest.mark.skipif(not UPDATE, reason="only when regenerating golden files")
def test_golden_files_were_regenerated():
    assert sorted(p.name for p in GOLDEN.iterdir()) == ["baseline.json", "baseline_v1.json", "report.json"]
