"""HULK tables built from a RunResult: beside the paper (--energy-hulk-paper) and as data for the JSON report."""

from __future__ import annotations

import pytest

from pytest_energy.config import SessionConfig, TestSettings
from pytest_energy.meters.base import DeviceInfo
from pytest_energy.records import TestRecord, protocol_from_dict
from pytest_energy.report.json import build_report
from pytest_energy.report.tables import hulk_blocks, hulk_tables
from pytest_energy.records import BenchmarkResult, MeterInfo, RunResult


def finetune_record(task: str, duration_s: float | None, model: str = "minilm") -> TestRecord:
    r = TestRecord(f"b.py::ft_{task}", f"ft_{task}", extra_info={"model": model, "hulk_task": task})
    r.protocols.append(protocol_from_dict({"protocol": "finetune", "cutoff": 0.9, "reached": duration_s is not None}))
    if duration_s is not None:
        r.metric("finetune.duration_s", "s").add(duration_s)
        r.metric("finetune.energy_j", "J", method="estimate").add(duration_s * 20)
    return r


def inference_record(task: str, ms: float, batch: int) -> TestRecord:
    r = TestRecord(f"b.py::inf_{task}_{batch}", f"inf_{task}_{batch}", extra_info={"model": "minilm",
                                                                                    "hulk_task": task})
    r.protocols.append(protocol_from_dict({"protocol": "inference", "batch_size": batch}))
    r.metric("inference.ms_per_example", "ms").add(ms)
    r.metric("inference.j_per_example", "J/example", method="estimate").add(ms / 50)
    return r


def run_of(records: list[TestRecord], **config) -> RunResult:
    meter = MeterInfo("estimate", (DeviceInfo("cpu-estimate", "Xeon", "estimate"),))
    return RunResult(meter, SessionConfig(**config), [BenchmarkResult(r, TestSettings()) for r in records])


def test_a_run_beside_the_paper_is_labelled_other_hardware_and_time_only():
    run = run_of([finetune_record("sst2", 184.9), finetune_record("synthetic", 20.0),
                  inference_record("sst2", 4.23, 1), inference_record("sst2", 1.0, 32)], hulk_paper=True)
    tables = {t.protocol: t for t in hulk_tables(run) if t.kind == "paper"}
    finetune, inference = tables["finetune"], tables["inference"]
    assert finetune.reference == "BERT-large" and finetune.cost == "time" and finetune.unit == "s"
    rows = {row["model"]: row for row in finetune.rows()}
    assert len(rows) == 9 and rows["RoBERTa-base"]["scores"]["MNLI"] == 9106.72 / 1274.87  # erratum applied
    ours = rows["minilm (this run)"]
    assert ours["costs"] == {"SST-2": 184.9} and ours["scores"]["SST-2"] == 92.45 / 184.9
    assert ours["scores"]["MNLI"] is None and ours["overall"] == 92.45 / 184.9  # not run: counts 0
    notes = " ".join(finetune.notes)
    assert "RTX 2080 Ti" in notes and "time only" in notes and "other hardware" in notes and "Xeon" in notes
    assert "erratum applied: RoBERTa-base, MNLI: printed 274.87 s, used 1274.87 s" in notes
    assert "not HULK tasks, left out: synthetic" in " ".join(inference.notes)  # once, under the last table
    # Table 4 is HULK's single-instance latency: batch 1 only
    assert {row["model"]: row["costs"] for row in inference.rows()}["minilm (this run)"] == {"SST-2": 4.23}
    text = dict(hulk_blocks(run))
    (title,) = [t for t in text if t.startswith("HULK Table 3")]
    line = next(x for x in text[title].splitlines() if x.startswith("minilm (this run)"))
    assert line.split()[3:] == ["-", "0.00", "184.90", "0.50", "-", "0.00", "0.50"]


def test_no_paper_tables_unless_asked_and_json_carries_the_tables():
    run = run_of([finetune_record("sst2", 10.0)])
    assert [t for t in hulk_tables(run) if t.kind == "paper"] == []
    run = run_of([finetune_record("sst2", 10.0)], hulk_paper=True)
    data = build_report(run)["hulk"]
    kinds = [(t["kind"], t["protocol"]) for t in data["tables"]]
    assert kinds == [("paper", "finetune")]
    row = data["tables"][0]["rows"][-1]
    assert row["model"] == "minilm (this run)" and row["scores"]["SST-2"] == pytest.approx(9.245)


def test_only_non_hulk_tasks_beside_the_paper_says_so():
    run = run_of([finetune_record("synthetic", 10.0)], hulk_paper=True)
    (table,) = hulk_tables(run)
    assert table.message.startswith("no run of a HULK task") and "left out: synthetic" in table.message


def test_html_blocks_are_escaped():
    run = run_of([finetune_record("<b>x</b>", 10.0)], hulk_paper=True)
    (block,) = hulk_blocks(run, tablefmt="html")
    assert "<b>x</b>" not in block[1] and "&lt;b&gt;x&lt;/b&gt;" in block[1]


def test_the_na_legend_only_where_a_cell_shows_na():
    def titles(duration_s):
        ref, model = finetune_record("sst2", 100.0, "large"), finetune_record("sst2", duration_s)
        model.nodeid = "b.py::small"
        benchmarks = [BenchmarkResult(ref, TestSettings()), BenchmarkResult(model, TestSettings(reference=ref.nodeid))]
        run = RunResult(MeterInfo("estimate", (DeviceInfo("cpu-estimate", "Xeon", "estimate"),)), SessionConfig(),
                        benchmarks)
        return [t.title for t in hulk_tables(run)]

    assert titles(50.0) == ["HULK finetune score = large time / model time",
                            "HULK finetune score = large energy / model energy"]
    assert all(t.endswith(" (n/a: cut-off not reached)") for t in titles(None))
