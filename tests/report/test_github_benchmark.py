"""The github-action-benchmark export (customSmallerIsBetter), checked against the action's format as its parser
defines it (tests/specs/github-benchmark.schema.json) and its README example."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import schema_check as check  # tests/specs, on the tests' pythonpath (pyproject.toml)
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_energy.gate.judge import Outcome
from pytest_energy.records import Metric, RunResult, TestRecord
from pytest_energy.report.github_benchmark import github_benchmark_document, github_benchmark_text

GOLDEN_REPORT = Path(__file__).parents[1] / "golden" / "report.json"




SCHEMA = check.load("github-benchmark.schema.json")
# The action's src/extractRangeInfo.ts: how it reads a range to rescale it with the unit.
ACTION_RANGE = re.compile(r"(?P<prefix>(\+-|±)\s*)(?P<value>\d.*)")


def assert_valid(text: str) -> list:
    """Strict JSON (no NaN), valid against the schema, names unique (the action matches runs by name)."""
    assert text.endswith("\n")
    doc = check.strict_loads(text)
    assert check.errors(doc, SCHEMA) == []
    assert len({e["name"] for e in doc}) == len(doc)
    return doc


def record(nodeid: str, *metrics: Metric) -> TestRecord:
    return TestRecord(nodeid=nodeid, name=nodeid.rpartition("::")[2], metrics={m.name: m for m in metrics})


def test_the_checker_accepts_the_readme_example_and_rejects_what_the_action_rejects():
    assert check.errors(check.load("github-benchmark.example.json"), SCHEMA) == []
    for bad in ([],  # "No benchmark result was found"
                {"name": "a", "unit": "s", "value": 1},  # a list, not an object
                [{"name": "a", "unit": "s"}],
                [{"name": "a", "value": 1}],
                [{"name": "a", "unit": "s", "value": None}],  # zod would coerce null to 0
                [{"name": "a", "unit": "s", "value": 1, "range": 3}],
                [{"name": "a", "unit": "s", "value": 1, "biggerIsBetter": True}]):
        assert check.errors(bad, SCHEMA), bad


def test_one_entry_per_benchmark_and_lower_is_better_metric():
    records = [
        record("tests/test_a.py::test_train",
               Metric("energy_j", "J", samples=[10.0, 12.0, 11.0], method="nvml-counter"),
               Metric("tokens", "tokens", kind="deterministic", samples=[4096.0, 4096.0]),
               Metric("flops", "FLOP", kind="deterministic", samples=[2e12])),
        record("tests/test_a.py::test_infer", Metric("inference.j_per_example", "J/example", samples=[0.5, 0.7])),
    ]
    notes: list[str] = []
    doc = assert_valid(github_benchmark_text(records, notes))
    assert notes == []
    assert [e["name"] for e in doc] == ["tests/test_a.py::test_train › energy_j",
                                        "tests/test_a.py::test_train › tokens", "tests/test_a.py::test_train › flops",
                                        "tests/test_a.py::test_infer › inference.j_per_example"]
    energy, tokens, flops, infer = doc
    assert (energy["unit"], energy["value"], energy["range"]) == ("J", 11.0, "± 1")
    assert energy["extra"] == "mean of 3 rounds, min 10, max 12\nkind: measured\nmethod: nvml-counter"
    # Deterministic metrics are tracked too: a change of tokens or FLOPs is a change of the benchmark.
    assert (tokens["value"], tokens["range"], tokens["extra"]) == (4096.0, "± 0",
                                                                   "mean of 2 rounds, min 4096, max 4096\n"
                                                                   "kind: deterministic")
    assert "range" not in flops and flops["extra"] == "mean of 1 round\nkind: deterministic"  # no spread measured
    assert infer["value"] == pytest.approx(0.6)


def test_the_range_is_the_sd_in_the_notation_the_action_rescales():
    (entry,) = github_benchmark_document([record("t.py::test_x", Metric("duration_s", "s", samples=[1.0, 2.0, 4.0]))])
    match = ACTION_RANGE.search(entry["range"])
    assert match and float(match["value"]) == pytest.approx(1.527525, rel=1e-5)  # sample sd (n - 1)


def test_higher_is_better_metrics_are_left_out_and_listed_or_exported_the_other_way():
    records = [record(f"t.py::test_{i}", Metric("energy_j", "J", samples=[1.0]),
                      Metric("accuracy", "1", better="higher", kind="deterministic", samples=[0.9]),
                      Metric("examples_per_s", "examples/s", better="higher", samples=[100.0, 120.0]))
               for i in range(3)]
    notes: list[str] = []
    doc = assert_valid(github_benchmark_text(records, notes))
    assert [e["name"] for e in doc] == ["t.py::test_0 › energy_j", "t.py::test_1 › energy_j", "t.py::test_2 › energy_j"]
    assert notes == ["left out the metrics where higher is better, which customSmallerIsBetter would chart the "
                     "wrong way round: accuracy (3x), examples_per_s (3x)"]
    notes.clear()
    bigger = assert_valid(github_benchmark_text(records, notes, better="higher"))  # for customBiggerIsBetter
    assert [e["name"] for e in bigger][:2] == ["t.py::test_0 › accuracy", "t.py::test_0 › examples_per_s"]
    assert bigger[0]["unit"] == "" and bigger[1]["value"] == 110.0  # dimensionless: no unit
    assert "lower is better" in notes[0] and "customBiggerIsBetter" in notes[0] and "energy_j (3x)" in notes[0]


@pytest.mark.parametrize("nodeid", [
    "tests/test x.py::test_sst2[fp16 batch 8]",
    "tests/test_ü.py::test_模型[naïve-🙂]",
    "tests/t.py::test_x[<script>alert(1)</script>]",
    'tests/t.py::test_x[a"b\\c`|]',  # JSON escapes; backtick and pipe, which the action's markdown comment meets
])
def test_names_with_spaces_unicode_brackets_and_markup_survive_exactly(nodeid):
    doc = assert_valid(github_benchmark_text([record(nodeid, Metric("energy [J]", "J", samples=[1.0, 2.0]))]))
    assert [e["name"] for e in doc] == [f"{nodeid} › energy [J]"]


def test_nan_values_are_left_out_and_said_never_zero():
    records = [record("t.py::test_a", Metric("energy_j", "J", samples=[1.0, math.nan]),
                      Metric("duration_s", "s", samples=[1.0, 3.0]), Metric("empty_j", "J"))]
    notes: list[str] = []
    text = github_benchmark_text(records, notes)
    doc = assert_valid(text)
    assert [e["name"] for e in doc] == ["t.py::test_a › duration_s"] and doc[0]["value"] == 2.0
    assert "NaN" not in text and "null" not in text
    assert notes == ["left out t.py::test_a › energy_j: 1 of 2 samples are NaN or infinite (not measured)",
                     "left out t.py::test_a › empty_j: no samples"]


def test_an_empty_run_is_an_empty_list_and_the_note_says_the_action_stops_on_it():
    notes: list[str] = []
    assert github_benchmark_text([], notes) == "[]\n"
    assert check.errors([], SCHEMA) == ["$: fewer than 1 items"]
    assert len(notes) == 1 and "No benchmark result was found" in notes[0]


def test_a_test_twice_keeps_the_first_and_says_so():
    records = [record("t.py::test_x", Metric("energy_j", "J", samples=[1.0])),
               record("t.py::test_x", Metric("energy_j", "J", samples=[2.0]))]
    notes: list[str] = []
    assert [e["value"] for e in github_benchmark_document(records, notes)] == [1.0]
    assert len(notes) == 1 and "already in the file" in notes[0]


def test_the_gate_verdict_is_in_extra_from_an_outcome_or_a_json_report():
    from pytest_energy.gate.compare import Verdict
    from pytest_energy.records import Better, Kind, VerdictKind

    verdict = Verdict("energy_j", "J", Kind.MEASURED, Better.LOWER, VerdictKind.REGRESSION, 10.0, 11.5, 15.0, 0.001,
                      0.08, 5, 5)
    records = [record("t.py::test_x", Metric("energy_j", "J", samples=[11.0, 12.0]),
                      Metric("duration_s", "s", samples=[1.0, 1.0]))]
    doc = github_benchmark_document(records, outcomes={"t.py::test_x": Outcome(verdicts=[verdict])})
    assert doc[0]["extra"].endswith("\nverdict: REGRESSION (+15.0 % vs baseline)")
    assert "verdict" not in doc[1]["extra"]
    # From the --energy-json report (what `merge` reads): its comparison block.
    run = RunResult.from_report(json.loads(GOLDEN_REPORT.read_text()))
    outcomes = {b.record.nodeid: b.outcome for b in run.benchmarks if b.outcome is not None}
    doc = assert_valid(github_benchmark_text(run.records, outcomes=outcomes))
    assert doc and all("\nverdict: " in e["extra"] for e in doc)


_names = st.text(min_size=0, max_size=60)
_values = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-10**6, 10**6).map(float)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_names, st.dictionaries(
    _names, st.tuples(st.text(max_size=12), st.sampled_from(["lower", "higher"]), st.lists(_values, max_size=6)),
    max_size=4)), max_size=5))
def test_any_names_and_values_give_a_valid_list_without_nan(raw):
    records = [TestRecord(nodeid, nodeid, metrics={name: Metric(name, unit, better=better, samples=samples)
                                                   for name, (unit, better, samples) in metrics.items()})
               for nodeid, metrics in raw]
    notes: list[str] = []
    text = github_benchmark_text(records, notes)
    doc = check.strict_loads(text)  # strict JSON: a NaN or Infinity token fails to load
    if doc:
        assert check.errors(doc, SCHEMA) == []
    else:  # [] is what the action refuses: the note says so
        assert notes[-1].startswith("no benchmark has a metric")
    assert len({e["name"] for e in doc}) == len(doc)
    for entry in doc:
        assert math.isfinite(entry["value"])
        assert "range" not in entry or ACTION_RANGE.search(entry["range"])
    wanted = {(r.nodeid, m.name) for r in records for m in r.metrics.values()
              if m.better == "lower" and m.samples and all(map(math.isfinite, m.samples))}
    names = {e["name"] for e in doc}
    # Every finite lower-is-better metric is in the file, or a note names it (a name taken twice).
    for nodeid, metric in wanted:
        name = f"{nodeid} › {metric}"
        assert name in names or any(n.startswith(f"left out {name}: an entry of that name") for n in notes)
