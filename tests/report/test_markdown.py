"""The markdown summary (pull-request comment, $GITHUB_STEP_SUMMARY): verdict first, details folded, hints once."""

from __future__ import annotations

import re

from pytest_energy.config import SessionConfig, TestSettings
from pytest_energy.gate.baselines import BaselineEntry
from pytest_energy.gate.compare import compare_metric, no_baseline
from pytest_energy.gate.judge import Outcome
from pytest_energy.meters.base import DeviceInfo
from pytest_energy.records import Metric, TestRecord, protocol_from_dict
from pytest_energy.report.markdown import cell, comparison_markdown, run_markdown
from pytest_energy.records import BenchmarkResult, MeterInfo, RunResult

BASE = [100.0, 101.0, 99.0, 100.5, 99.5]


def metric(name, unit, samples, kind="measured"):
    return Metric(name, unit, "lower", kind, [float(x) for x in samples], "nvml-counter" if unit == "J" else None)


def result(name, factor=1.0, *, one_round=False, protocols=(), extra_metrics=0, gating=True):
    """A benchmark whose energy is `factor` x the baseline's, with its verdicts."""
    record = TestRecord(f"benchmarks/test_m.py::{name}", name)
    samples = BASE[:1] if one_round else BASE
    record.metrics["duration_s"] = metric("duration_s", "s", [x / 100 for x in samples])
    record.metrics["energy_j"] = metric("energy_j", "J", [x * factor for x in samples])
    for i in range(extra_metrics):
        record.metrics[f"inference.m{i}"] = metric(f"inference.m{i}", "J", [float(i + 1)], "measured")
    record.protocols = [protocol_from_dict(p) for p in protocols]
    verdicts = [compare_metric(metric(m.name, m.unit, BASE if m.name == "energy_j" else
                                      ([x / 100 for x in BASE] if m.name == "duration_s" else [m.samples[0] * 1.3])),
                               m, 0.08) for m in record.metrics.values()]
    outcome = Outcome(verdicts=verdicts, baseline_file="baselines/benchmarks__test_m.json", gating=gating)
    return BenchmarkResult(record, TestSettings(), outcome)


def run_of(*benchmarks, estimated=False, baselines=None):
    devices = (DeviceInfo("cpu-estimate", "Xeon", "estimate"),) if estimated else \
        (DeviceInfo("gpu0", "NVIDIA H100", "nvml-counter"),)
    run = RunResult(MeterInfo("estimate" if estimated else "nvml", devices), SessionConfig(rootdir="/r",
                    baseline_dir="/r/baselines"), list(benchmarks))
    run.baselines = baselines or {}
    return run


def test_a_regression_is_said_first_with_its_size_and_what_it_is_compared_with():
    entry = BaselineEntry("benchmarks/test_m.py::test_slow", {}, {"id": "abcdef1234"}, "2025-01-02T03:04:05",
                          "nvml-counter", {})
    md = run_markdown(run_of(result("test_ok"), result("test_slow", 1.25),
                             baselines={"benchmarks/test_m.py::test_slow": entry}))
    lines = md.splitlines()
    assert lines[0] == "## pytest-energy: 1 regression(s) in 1 of 2 benchmark(s)"
    assert "baselines/` (recorded 2025-01-02, at abcdef1)" in md
    bullet = next(x for x in lines if x.startswith("- `test_slow`"))
    assert "energy_j: **+25.0 %** (100 J → 125 J, p=" in bullet and "tolerance 8 %" in bullet
    # Everything else is folded away below the verdict.
    first_details = next(i for i, x in enumerate(lines) if x.startswith("<details>"))
    assert first_details < 15 and lines[first_details] == "<details><summary>Verdicts (4)</summary>"


def test_tables_keep_run_order_and_fold():
    md = run_markdown(run_of(result("test_b"), result("test_a")))
    assert md.index("| test_b | duration_s") < md.index("| test_a | duration_s")
    assert md.index("| test_b | 5 |") < md.index("| test_a | 5 |")  # the energy table
    assert md.count("<details>") == md.count("</details>") == 2
    assert md.splitlines()[0] == "## pytest-energy: no regression in 2 benchmark(s)"


def test_each_hint_once_as_a_footnote():
    md = run_markdown(run_of(*(result(f"test_{i}", 1.5, one_round=True) for i in range(4))))
    hint = "a single sample on one side gives no spread estimate"
    assert md.count(hint) == 1
    assert len(re.findall(r"INCONCLUSIVE \[1\]", md)) == 4  # the energy of 4 tests (their time is unchanged)
    assert "[1] " + hint in md


def test_protocol_tables_footprint_and_notes_are_included():
    finetune = {"protocol": "finetune", "cutoff": 0.9, "reached": True, "steps": 10, "score": 0.92,
                "duration_s": 8.7, "energy_j": 163.0, "eval_duration_s": 0.45, "eval_share": 0.05, "tokens": 10240,
                "flops": 6.6e11, "method": "nvml-counter"}
    inference = {"protocol": "inference", "examples": 500, "batch_size": 1, "j_per_example": 0.24,
                 "ms_per_example_mean": 12.2, "ms_per_example_p50": 12.0, "ms_per_example_p99": 16.9,
                 "examples_per_s": 82.0, "accuracy": 0.898, "j_per_correct": 0.27, "method": "nvml-counter"}
    run = run_of(result("test_ft", protocols=[finetune]), result("test_inf", protocols=[inference]))
    run.benchmarks[0].outcome.notes.append("baseline was measured on a different machine class, not compared: x")
    md = run_markdown(run)
    assert "<details><summary>Fine-tune to cut-off (1): training-only time and energy</summary>" in md
    assert "| test_ft | 0.9 | yes | 10 | 0.92 | 8.7 s | 163 J |" in md
    assert "<details><summary>Inference (1): per example</summary>" in md and "| test_inf | 500 | 1 | 0.24 J |" in md
    assert "Footprint of one round of each benchmark:" in md and "g CO2e" in md
    assert "- baseline was measured on a different machine class, not compared: x: `test_ft`" in md


def test_headlines_without_baselines_and_when_saving():
    bare = result("test_new")
    bare.outcome = Outcome(verdicts=[no_baseline(bare.record.metrics["energy_j"], 0.08)],
                           notes=["no baseline for this test in baselines/x.json; create one with "
                                  "--energy-save-baseline"])
    md = run_markdown(run_of(bare))
    assert md.startswith("## pytest-energy: 1 benchmark(s) measured, no baseline to compare with")
    assert "- no baseline for this test: `test_new`" in md
    elsewhere = result("test_old")
    elsewhere.outcome = Outcome(notes=["baseline was measured on a different machine class, not compared: "
                                       "cpu_model: 'AMD EPYC' (baseline) != 'Xeon' (now)"])
    md = run_markdown(run_of(elsewhere))
    assert md.startswith("## pytest-energy: 1 benchmark(s) measured, not compared\n")
    assert "cpu_model: 'AMD EPYC' (baseline) != 'Xeon' (now): `test_old`" in md
    saving = run_markdown(run_of(result("test_x", 2.0, gating=False)))
    assert saving.startswith("## pytest-energy: baselines recorded for 1 benchmark(s)")


def test_text_from_results_is_escaped():
    evil = "test_x[<script>alert(1)</script>|&]"
    md = run_markdown(run_of(result(evil, 1.3)))
    assert "<script>" not in md and "&lt;script&gt;" in md
    assert "\\|&amp;]" in md
    assert cell("a|b\nc<d") == "a\\|b c&lt;d"


def test_estimate_is_called_out():
    md = run_markdown(run_of(result("test_x"), estimated=True))
    assert "energy modelled from CPU time x watts per core, not measured" in md


def test_comparison_table_alone_has_its_own_footnotes():
    v = compare_metric(metric("energy_j", "J", BASE), metric("energy_j", "J", BASE[:1]))
    lines = comparison_markdown([("test_a", [v])])
    assert lines[0] == "| Test | Metric | Baseline | Current | Change | p | Verdict |"
    assert lines[2].startswith("| test_a | energy_j | 100 J | 100 J | +0.0 % |") and lines[2].endswith("[1] |")
    assert lines[-1].startswith("[1] a single sample")
    assert comparison_markdown([]) == ["No energy benchmark was compared with a baseline."]


def test_a_reference_suite_sized_run_fits_in_15_kb():
    """25 benchmarks with a dozen protocol metrics each, every one INCONCLUSIVE with a hint: the reference
    suite's shape. A pull-request comment holds 65,536 characters; we aim far below."""
    inference = {"protocol": "inference", "examples": 200, "batch_size": 1, "j_per_example": 0.13,
                 "ms_per_example_mean": 13.3, "ms_per_example_p50": 13.8, "ms_per_example_p99": 17.2,
                 "examples_per_s": 75.2, "accuracy": 0.895, "j_per_correct": 0.149, "method": "estimate"}
    run = run_of(*(result(f"test_sweep[max_length-{i}]", 1.2, one_round=True, protocols=[inference],
                          extra_metrics=10) for i in range(25)), estimated=True)
    md = run_markdown(run)
    assert len(md.encode("utf-8")) < 15_000, len(md.encode("utf-8"))
