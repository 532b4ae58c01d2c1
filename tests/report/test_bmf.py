"""The Bencher Metric Format export, checked against Bencher's published schema (tests/specs/bmf.schema.json)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import schema_check as check  # tests/specs, on the tests' pythonpath (pyproject.toml)
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_energy.config import SessionConfig
from pytest_energy.records import Metric, RunResult, TestRecord
from pytest_energy.report.bmf import (
    BENCHMARK_NAME_MAX_BYTES,
    MEASURE_NAME_MAX_BYTES,
    bmf_document,
    bmf_text,
    exports,
    fit_name,
    summarize,
    write_exports,
)

GOLDEN_REPORT = Path(__file__).parents[1] / "golden" / "report.json"




SCHEMA = check.load("bmf.schema.json")


def assert_valid_bmf(text: str) -> dict:
    """`text` is strict JSON (no NaN), valid against the schema, and its names fit Bencher's byte limits."""
    assert text.endswith("\n")
    doc = check.strict_loads(text)
    assert check.errors(doc, SCHEMA) == []
    for bench, measures in doc.items():
        assert 1 <= len(bench.encode("utf-8")) <= BENCHMARK_NAME_MAX_BYTES
        for measure, metric in measures.items():
            assert 1 <= len(measure.encode("utf-8")) <= MEASURE_NAME_MAX_BYTES
            assert set(metric) <= {"value", "lower_value", "upper_value"}
            if "lower_value" in metric:
                assert metric["lower_value"] <= metric["value"] <= metric["upper_value"]
    return doc


def record(nodeid: str, *metrics: Metric) -> TestRecord:
    return TestRecord(nodeid=nodeid, name=nodeid.rpartition("::")[2], metrics={m.name: m for m in metrics})


def test_the_checker_accepts_the_documented_example_and_rejects_what_bencher_rejects():
    assert check.errors(check.load("bmf.example.json"), SCHEMA) == []
    for bad in ({"b": {"m": {}}},  # value is required
                {"b": {"m": {"value": "88"}}},  # a number, not a string
                {"b": {"m": {"value": 1, "upper_value": None}}},
                {"b": {" m": {"value": 1}}},  # Bencher's names equal their trim()
                {"b": {"m" * 65: {"value": 1}}},
                {"": {"m": {"value": 1}}},
                {"b": [1]}):
        assert check.errors(bad, SCHEMA), bad
    with pytest.raises(ValueError, match="NaN"):
        check.strict_loads('{"b": {"m": {"value": NaN}}}')


def test_jsonschema_agrees_with_the_checker_where_it_is_installed():
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft7Validator(SCHEMA)
    ours = check.strict_loads(bmf_text([record("t.py::test_x[é <b>]", Metric("energy_j", "J", samples=[1.0, 2.0]))]))
    for doc in (check.load("bmf.example.json"), ours, {}):
        assert list(validator.iter_errors(doc)) == [] and check.errors(doc, SCHEMA) == []
    for bad in ({"b": {"m": {}}}, {"b": {" m": {"value": 1}}}, {"b": {"m": {"value": "1"}}}):
        assert list(validator.iter_errors(bad)) and check.errors(bad, SCHEMA)


def test_every_metric_of_every_benchmark_with_its_unit_mean_and_min_max():
    records = [
        record("tests/test_a.py::test_train",
               Metric("energy_j", "J", samples=[10.0, 12.0, 11.0], method="rapl"),
               Metric("duration_s", "s", samples=[1.0, 1.5, 2.0]),
               Metric("tokens", "tokens", kind="deterministic", samples=[4096.0]),
               Metric("accuracy", "1", better="higher", kind="deterministic", samples=[0.91, 0.91])),
        record("tests/test_a.py::test_infer", Metric("inference.j_per_example", "J/example", samples=[0.5, 0.7])),
    ]
    notes: list[str] = []
    doc = assert_valid_bmf(bmf_text(records, notes))
    assert notes == []
    assert list(doc) == ["tests/test_a.py::test_train", "tests/test_a.py::test_infer"]  # run order
    train = doc["tests/test_a.py::test_train"]
    assert train["energy_j (J)"] == {"value": 11.0, "lower_value": 10.0, "upper_value": 12.0}
    assert train["duration_s (s)"] == {"value": 1.5, "lower_value": 1.0, "upper_value": 2.0}
    # One sample: no spread was measured, so none is claimed.
    assert train["tokens (tokens)"] == {"value": 4096.0}
    # Dimensionless and higher-is-better: in as it is (BMF has no direction; Bencher's threshold has).
    assert train["accuracy"] == {"value": 0.91, "lower_value": 0.91, "upper_value": 0.91}
    assert doc["tests/test_a.py::test_infer"]["inference.j_per_example (J/example)"]["value"] == pytest.approx(0.6)


@pytest.mark.parametrize("nodeid", [
    "tests/test x.py::test_sst2[fp16 batch 8]",  # spaces and brackets
    "tests/test_ü.py::test_模型[naïve-🙂]",  # unicode beyond the BMP
    "tests/t.py::test_x[<script>alert(1)</script>]",
    'tests/t.py::test_x[a"b\\c]',  # JSON's own escapes
    "tests/t.py::test_x[\t\n]",
])
def test_names_with_spaces_unicode_brackets_and_markup_survive_exactly(nodeid):
    metric = Metric("energy [J] é", "J", samples=[1.0, 2.0])
    doc = assert_valid_bmf(bmf_text([record(nodeid, metric)]))
    assert doc == {nodeid: {"energy [J] é (J)": {"value": 1.5, "lower_value": 1.0, "upper_value": 2.0}}}


def test_nan_and_missing_values_are_left_out_and_said_never_zero():
    records = [record("t.py::test_a",
                      Metric("energy_j", "J", samples=[1.0, math.nan, 3.0]),
                      Metric("duration_s", "s", samples=[1.0, 2.0]),
                      Metric("peak_j", "J", samples=[math.inf]),
                      Metric("empty", "J", samples=[])),
               record("t.py::test_b", Metric("energy_j", "J", samples=[math.nan]))]
    notes: list[str] = []
    text = bmf_text(records, notes)
    doc = assert_valid_bmf(text)
    assert doc == {"t.py::test_a": {"duration_s (s)": {"value": 1.5, "lower_value": 1.0, "upper_value": 2.0}}}
    assert "NaN" not in text and "Infinity" not in text and "null" not in text
    assert notes == ["left out t.py::test_a › energy_j: 1 of 3 samples are NaN or infinite (not measured)",
                     "left out t.py::test_a › peak_j: 1 of 1 samples are NaN or infinite (not measured)",
                     "left out t.py::test_a › empty: no samples",
                     "left out t.py::test_b › energy_j: 1 of 1 samples are NaN or infinite (not measured)"]


def test_an_empty_run_is_an_empty_document_and_said_so():
    notes: list[str] = []
    assert bmf_text([], notes) == "{}\n"
    assert_valid_bmf("{}\n")
    assert len(notes) == 1 and "bencher run will find no results" in notes[0]
    notes.clear()
    assert bmf_document([record("t.py::test_x")], notes) == {}
    assert notes[0] == "left out t.py::test_x: no metrics"


def test_names_beyond_bencher_limits_are_shortened_stably_and_distinctly():
    long_metric = "finetune.per_layer." + "é" * 40  # 59 characters, 99 UTF-8 bytes
    other = "finetune.per_layer." + "é" * 40 + "x"
    nodeid = "tests/t.py::test_x[" + "p" * 1100 + "]"
    notes: list[str] = []
    records = [record(nodeid, Metric(long_metric, "J", samples=[1.0]), Metric(other, "J", samples=[2.0]),
                      Metric("  padded  ", "", samples=[3.0]))]
    doc = assert_valid_bmf(bmf_text(records, notes))
    (bench,) = doc
    assert bench.startswith("tests/t.py::test_x[ppp") and len(bench.encode()) <= BENCHMARK_NAME_MAX_BYTES
    names = list(doc[bench])
    assert len(set(names)) == 3 and all(" ~" in n or n.startswith("~") for n in names)
    assert names[0].startswith("finetune.per_layer.é") and names[2].startswith("padded ~")
    assert len(notes) == 4 and all("exported as" in n for n in notes)
    assert bmf_document(records) == doc  # the same names next run: the history continues


def test_a_test_twice_keeps_the_first_and_says_so():
    records = [record("t.py::test_x", Metric("energy_j", "J", samples=[1.0])),
               record("t.py::test_x", Metric("energy_j", "J", samples=[2.0]))]
    notes: list[str] = []
    assert bmf_document(records, notes) == {"t.py::test_x": {"energy_j (J)": {"value": 1.0}}}
    assert len(notes) == 1 and "second result of the same test" in notes[0]


def test_summary_is_mean_min_max_sd_and_survives_huge_values():
    summary, why = summarize(Metric("e", "J", samples=[1.0, 2.0, 3.0, 4.0]))
    assert why == "" and (summary.value, summary.low, summary.high, summary.n) == (2.5, 1.0, 4.0, 4)
    assert summary.sd == pytest.approx(1.2909944, rel=1e-6)
    big, _ = summarize(Metric("e", "J", samples=[1.7e308, 1.7e308, 1.6e308]))  # their sum overflows a float
    assert big.value == pytest.approx(1.6666666e308, rel=1e-6) and big.low <= big.value <= big.high
    same, _ = summarize(Metric("e", "J", samples=[0.1] * 7))  # rounding must not leave [min, max]
    assert same.low <= same.value <= same.high and same.sd == 0.0


def test_the_json_report_read_back_exports_its_metrics():
    """What `merge --bmf` exports: a JSON report read back into the run model (RunResult.from_report)."""
    report = json.loads(GOLDEN_REPORT.read_text())
    run = RunResult.from_report(report)
    assert [r.nodeid for r in run.records] == [b["fullname"] for b in report["benchmarks"]]
    doc = assert_valid_bmf(bmf_text(run.records))
    metrics = report["benchmarks"][0]["energy"]["metrics"]
    (measures,) = doc.values()
    assert len(measures) == len(metrics)


def test_write_exports_writes_each_file_on_its_own(tmp_path):
    records = [record("t.py::test_x", Metric("energy_j", "J", samples=[1.0, 3.0]),
                      Metric("accuracy", "", better="higher", samples=[0.9]))]
    config = SessionConfig(bmf_path=str(tmp_path / "new" / "bmf.json"),
                           github_benchmark_path=str(tmp_path / "gh.json"))
    written, errors, notes = write_exports(records, config)
    assert errors == [] and written == [config.bmf_path, config.github_benchmark_path]
    assert_valid_bmf(Path(config.bmf_path).read_text())
    assert json.loads(Path(config.github_benchmark_path).read_text())[0]["name"] == "t.py::test_x › energy_j"
    assert notes and all(n.startswith("--energy-github-benchmark: ") for n in notes)  # accuracy: higher is better
    # A folder where the BMF file should be: that one fails, named with its option; the other is written.
    (tmp_path / "gh.json").unlink()
    (tmp_path / "taken").mkdir()
    written, errors, _ = write_exports(records, SessionConfig(bmf_path=str(tmp_path / "taken"),
                                                              github_benchmark_path=str(tmp_path / "gh.json")))
    assert written == [str(tmp_path / "gh.json")] and len(errors) == 1
    assert "Bencher BMF file" in errors[0] and "--energy-bmf" in errors[0]
    assert exports(records, SessionConfig()) == []


_names = st.text(min_size=0, max_size=80)
_values = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-10**6, 10**6).map(float)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_names, st.dictionaries(_names, st.tuples(st.text(max_size=12),
                                                                     st.lists(_values, max_size=6)),
                                                  max_size=4)), max_size=5))
def test_any_names_and_values_give_a_valid_document_without_nan(raw):
    records = [TestRecord(nodeid, nodeid, metrics={name: Metric(name, unit, samples=samples)
                                                   for name, (unit, samples) in metrics.items()})
               for nodeid, metrics in raw]
    notes: list[str] = []
    doc = assert_valid_bmf(bmf_text(records, notes))  # strict JSON: a NaN or Infinity token fails to load
    # Every metric with finite samples is in the file, except those of a repeated test and those whose
    # shortened measure name another metric took, each of which a note names.
    expected, seen = 0, set()
    for r in records:
        bench = fit_name(r.nodeid, BENCHMARK_NAME_MAX_BYTES, trim=False)
        if bench not in seen:
            seen.add(bench)
            expected += sum(1 for m in r.metrics.values() if m.samples and all(map(math.isfinite, m.samples)))
    expected -= sum(1 for n in notes if "is taken by another metric" in n)
    assert sum(len(m) for m in doc.values()) == expected
