"""The rows every report shares (report/tables.py), from typed results built by hand."""

from __future__ import annotations

from pytest_energy.analysis.carbon import CarbonConfig
from pytest_energy.analysis.hulk import HulkTable, OverallScore
from pytest_energy.records import (Better, FinetuneResult, InferenceResult, Kind, MeterInfo, Metric, RuleKind,
                                   RunResult, TestRecord, Verdict, VerdictKind)
from pytest_energy.report.tables import (FINETUNE_HEADERS, INFERENCE_HEADERS, VERDICT_HEADERS, footprint_line,
                                         footprint_of, hulk_table_dict, hulk_text, overall_line, protocol_rows,
                                         verdict_cells, verdict_row)


def test_protocol_rows_read_typed_results_in_call_order():
    finetune = FinetuneResult.from_dict({"cutoff": 0.9, "reached": False, "steps": 40, "score": 0.71,
                                         "duration_s": 30.0, "energy_j": 600.0, "eval_duration_s": 2.0,
                                         "eval_share": 0.0625, "tokens": None, "flops": 1.5e12, "method": "rapl"})
    inference = InferenceResult.from_dict({"examples": 10, "batch_size": 1, "accuracy": 0.8, "method": "rapl"})
    record = TestRecord("t.py::t", "t", protocols=[finetune, inference, finetune])
    ft_rows, inf_rows = protocol_rows([record])
    assert len(ft_rows) == 2 and len(inf_rows) == 1
    assert ft_rows[0] == ["t", "0.9", "no", "40", "0.71", "30 s", "600 J", "2 s", "6.25 %", "n/a", "1.5e+12", "rapl"]
    assert len(ft_rows[0]) == len(FINETUNE_HEADERS)
    row = dict(zip(INFERENCE_HEADERS, inf_rows[0]))
    assert row["score"] == "0.8 accuracy"  # a result written before `score` existed shows its accuracy
    assert (row["examples"], row["energy/ex"], row["method"]) == ("10", "n/a", "rapl")


def _verdict(**changes) -> Verdict:
    fields = dict(metric="energy_j", unit="J", kind=Kind.MEASURED, better=Better.LOWER,
                  verdict=VerdictKind.REGRESSION, baseline_value=10.0, current_value=12.5, change_pct=25.0,
                  p_value=0.0012, tolerance=0.08, n_baseline=5, n_current=3, rule="history: 5 runs, pooled",
                  rule_kind=RuleKind.HISTORY)
    return Verdict(**{**fields, **changes})


def test_one_verdict_row_for_every_output():
    cells = verdict_cells("test_x", _verdict())
    assert cells == {"test": "test_x", "metric": "energy_j", "baseline": "10 J", "current": "12.5 J",
                     "change": "+25.0 %", "p": "0.001", "tolerance": "8 %", "samples": "5/3",
                     "rule": "history: 5 runs, pooled", "verdict": "REGRESSION"}
    assert verdict_row("test_x", _verdict()) == [cells[c] for c in VERDICT_HEADERS]
    no_p = verdict_row("test_x", _verdict(p_value=None, baseline_value=None, change_pct=None), "NEW",
                       ("baseline", "change", "p", "verdict"))
    assert no_p == ["n/a", "n/a", "-", "NEW"]


def test_footprint_of_the_primary_series_and_none_without_a_session_config():
    record = TestRecord("t.py::t", "t", metrics={
        "duration_s": Metric("duration_s", "s", samples=[3600.0]),
        "energy_j": Metric("energy_j", "J", samples=[3.6e6], method="rapl")})
    carbon = CarbonConfig(grid_gco2e_per_kwh=400.0, pue=1.0)
    foot = footprint_of(record, carbon)
    assert foot["energy_kwh"] == 1.0 and foot["co2e_kg"] == 0.4 and foot["of"] == "mean rounds (rapl)"
    assert footprint_of(record, None) is None
    run = RunResult(MeterInfo("rapl", ()), None, [])  # read back from a report: no session config
    assert footprint_line(run) == ""


def test_hulk_tables_are_laid_out_with_their_overall_scores_worded_in_place():
    overall = OverallScore("minilm", "time", "hulk.finetune.score_time", 2.2, 2.0, ("PASS", "IMPROVED"))
    table = HulkTable("session", "HULK finetune score = large time / model time", "finetune", "time", "s", "large",
                      {"large": {"sst2": 100.0}, "minilm": {"sst2": 45.0}}, ["sst2"],
                      notes=["first note", overall, "last note"])
    worded = ("minilm: overall time score 2.2 (baseline 2, +10.0 %; metric hulk.finetune.score_time per task, "
              "decided per task: PASS, IMPROVED)")
    assert overall_line(overall) == worded
    text = hulk_text(table).splitlines()
    assert text[-3:] == ["first note", worded, "last note"]
    assert any(line.startswith("minilm") and "2.22" in line for line in text)  # 100 / 45
    d = hulk_table_dict(table)
    assert d["notes"] == ["first note", worded, "last note"]
    assert [r["model"] for r in d["rows"]] == ["large", "minilm"] and d["rows"][1]["overall"] == 100.0 / 45.0
    assert overall_line(OverallScore("m", "energy", "x", 1.0, None, ())).startswith(
        "m: overall energy score 1 (no baseline score yet for every task")
