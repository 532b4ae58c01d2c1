"""The run model (pytest_energy.records): every type survives to_dict/from_dict (and JSON) unchanged, and the
shapes older versions wrote still load."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_energy.config import TestSettings
from pytest_energy.records import (
    SCHEMA_VERSION, BenchmarkResult, Better, CurvePoint, DeviceEnergy, DeviceInfo, FinetuneResult, HulkReference,
    InferenceResult, Kind, MeterInfo, Method, Metric, Outcome, RuleKind, RunResult, StoredSettings, SweepPoint,
    TestRecord, Verdict, VerdictKind, Window, protocol_from_dict)

GOLDEN_REPORT = Path(__file__).parent / "golden" / "report.json"

# --- strategies: finite floats (JSON has no NaN), None where a field is optional, names in any script ---------
floats = st.floats(allow_nan=False, allow_infinity=False, width=64)
optional_floats = st.none() | floats
counts = st.integers(min_value=0, max_value=10**9)
text = st.text(max_size=12)  # unicode: test names and labels come from users
samples = st.lists(floats, max_size=4)
methods = st.sampled_from([m.value for m in Method])
plain = st.recursive(st.none() | st.booleans() | st.integers() | floats | text,
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3), max_leaves=6)
plain_dicts = st.dictionaries(text, plain, max_size=3)

devices = st.builds(DeviceEnergy, text, floats, methods, text)
windows = st.builds(
    Window, text, duration_s=floats, energy_j=floats, devices=st.lists(devices, max_size=2).map(tuple), method=methods,
    idle_power_w=optional_floats, net_energy_j=optional_floats, peak_memory_bytes=st.none() | counts,
    peak_memory_source=st.none() | text, warnings=st.lists(text, max_size=2), closed=st.booleans(),
    calls=st.integers(min_value=1, max_value=100),
    per_rank=st.none() | st.lists(st.fixed_dictionaries({"rank": counts, "host": text, "energy_j": floats,
                                                          "duration_s": floats, "devices": st.lists(text, max_size=2)}),
                                  max_size=2))
metrics = st.builds(Metric, text, text, better=st.sampled_from(list(Better)), kind=st.sampled_from(list(Kind)),
                    samples=samples, method=st.none() | methods)
curve = st.builds(CurvePoint, counts, floats, floats, floats, floats, floats)
finetunes = st.builds(
    FinetuneResult, reached=st.booleans(), steps=counts, score=optional_floats, best_score=optional_floats,
    cutoff=floats, higher_is_better=st.booleans(), evaluations=counts, duration_s=floats, energy_j=floats,
    net_energy_j=optional_floats, eval_duration_s=floats, eval_energy_j=floats, wall_duration_s=floats,
    wall_energy_j=floats, eval_share=floats, tokens=st.none() | counts, flops=st.none() | counts, method=methods,
    peak_memory_bytes=st.none() | counts, peak_memory_source=st.none() | text, curve=st.lists(curve, max_size=3),
    warnings=st.lists(text, max_size=2))
inferences = st.builds(
    InferenceResult, examples=counts, batch_size=st.integers(1, 64), batches=counts, warmup=counts, duration_s=floats,
    energy_j=floats, net_energy_j=optional_floats, method=methods, j_per_example=floats, ms_per_example_mean=floats,
    ms_per_example_p50=floats, ms_per_example_p90=floats, ms_per_example_p99=floats, examples_per_s=floats,
    peak_memory_bytes=st.none() | counts, peak_memory_source=st.none() | text, accuracy=optional_floats,
    correct=st.none() | counts, score=optional_floats, score_name=st.none() | text, j_per_correct=optional_floats,
    tokens=st.none() | counts, j_per_token=optional_floats, warnings=st.lists(text, max_size=2),
    rounds=st.integers(1, 5), gate_tails=st.booleans(), samples=st.dictionaries(text, samples, max_size=2))
sweep_points = st.builds(
    SweepPoint, axis=text, value=st.integers() | text, settings=plain_dicts, accuracy=optional_floats,
    j_per_example=floats, j_per_correct=optional_floats, ms_per_example=floats, peak_memory_bytes=st.none() | counts,
    method=methods, n_examples=counts, tokens=st.none() | counts, skipped_reason=st.none() | text)
records = st.builds(
    TestRecord, text, text, group=st.none() | text, params=st.none() | plain_dicts,
    metrics=st.lists(metrics, max_size=3).map(lambda ms: {m.name: m for m in ms}),
    windows=st.lists(windows, max_size=2), extra_info=plain_dicts,
    protocols=st.lists(finetunes | inferences, max_size=2), probe_s=samples)
verdicts = st.builds(
    Verdict, text, text, st.sampled_from(list(Kind)), st.sampled_from(list(Better)), st.sampled_from(list(VerdictKind)),
    optional_floats, floats, optional_floats, optional_floats, floats, counts, counts, hint=text, rule=text,
    limit=optional_floats, rule_kind=st.sampled_from(list(RuleKind)))
outcomes = st.builds(Outcome, st.lists(verdicts, max_size=3), st.lists(text, max_size=2), text, st.none() | text,
                     st.booleans(), st.booleans())
benchmarks = st.builds(BenchmarkResult, records, plain_dicts.map(StoredSettings), st.none() | outcomes,
                       optional_floats, st.none() | plain_dicts, st.none() | plain_dicts)
meters = st.builds(MeterInfo, text, st.lists(st.builds(DeviceInfo, text, text, st.sampled_from(list(Method))),
                                             max_size=2).map(tuple),
                   st.lists(text, max_size=2).map(tuple), st.none() | st.dictionaries(text, floats, max_size=2),
                   optional_floats)
references = st.builds(HulkReference, text, text, st.none() | plain_dicts, st.none() | st.lists(text, max_size=2))
runs = st.builds(RunResult, meters, st.none(), st.lists(benchmarks, max_size=2), plain_dicts, plain_dicts, text,
                 plain_dicts, written=st.lists(text, max_size=2), errors=st.lists(text, max_size=2),
                 baseline_notes=st.lists(text, max_size=2), hulk_reference=st.none() | references)


def _through_json(value):
    """What crosses pytest-xdist or a file: builtin types only, JSON text, back."""
    return json.loads(json.dumps(value.to_dict(), allow_nan=False))


@settings(max_examples=25, deadline=None)
@given(st.one_of(devices, windows, metrics, finetunes, inferences, sweep_points, verdicts, outcomes, meters,
                 references))
def test_every_part_round_trips(value):
    assert type(value).from_dict(_through_json(value)) == value


@settings(max_examples=25, deadline=None)
@given(records)
def test_a_record_round_trips_with_its_typed_protocol_results(record):
    back = TestRecord.from_dict(_through_json(record))
    assert back == record
    assert [type(p) for p in back.protocols] == [type(p) for p in record.protocols]


@settings(max_examples=20, deadline=None)
@given(benchmarks)
def test_a_benchmark_result_round_trips_under_the_schema_number(result):
    d = _through_json(result)
    assert d["schema"] == SCHEMA_VERSION
    assert BenchmarkResult.from_dict(d) == result


@settings(max_examples=10, deadline=None)
@given(runs)
def test_a_run_round_trips(run):
    assert RunResult.from_dict(_through_json(run)) == run


def test_device_info_is_the_one_meters_build():
    from pytest_energy.meters import base

    assert base.DeviceInfo is DeviceInfo


def test_the_settings_type_rebuilds_test_settings():
    result = BenchmarkResult(TestRecord("t.py::t", "t"), TestSettings(rounds=3, reference="t.py::ref"))
    back = BenchmarkResult.from_dict(_through_json(result), settings_type=TestSettings)
    assert back.settings == TestSettings(rounds=3, reference="t.py::ref")
    stored = BenchmarkResult.from_dict(_through_json(result)).settings  # without config: what reports read
    assert (stored.rounds, stored.reference) == (3, "t.py::ref")
    with pytest.raises(AttributeError, match="no 'nothing'"):
        stored.nothing  # noqa: B018


def test_a_newer_schema_is_refused_with_what_to_do():
    d = BenchmarkResult(TestRecord("t.py::t", "t"), StoredSettings({})).to_dict()
    d["schema"] = SCHEMA_VERSION + 1
    with pytest.raises(ValueError, match="newer than this pytest-energy reads .*upgrade"):
        BenchmarkResult.from_dict(d)


# --- older shapes -----------------------------------------------------------------------------------------

def test_a_verdict_without_a_rule_kind_gets_the_kind_its_text_names():
    base = Verdict("energy_j", "J", Kind.MEASURED, Better.LOWER, VerdictKind.PASS, 1.0, 1.0, 0.0, 0.5, 0.1, 3,
                   3).to_dict()
    del base["rule_kind"], base["limit"]  # a verdict written before either field existed
    kinds = {text: Verdict.from_dict({**base, "rule": text}).rule_kind
             for text in ("within-run Welch", "history: 5 runs, probe-normalised, pooled", "exact value",
                          "not compared")}
    assert kinds == {"within-run Welch": RuleKind.WITHIN_RUN, "exact value": RuleKind.DETERMINISTIC,
                     "history: 5 runs, probe-normalised, pooled": RuleKind.HISTORY, "not compared": RuleKind.NONE}
    assert Verdict.from_dict({**base, "rule": "history: 3 runs"}).by_history


def test_protocol_results_written_as_partial_dicts_load_and_write_again():
    old = TestRecord.from_dict({"nodeid": "t.py::t", "name": "t", "protocols": [
        {"protocol": "finetune", "cutoff": 0.9, "reached": True},
        {"protocol": "inference", "batch_size": 8, "accuracy": 0.5}]})
    finetune, inference = old.protocols
    assert isinstance(finetune, FinetuneResult) and finetune.cutoff == 0.9 and finetune.steps is None
    assert isinstance(inference, InferenceResult) and inference.batch_size == 8 and inference.rounds == 1
    assert old.to_dict()["protocols"][0]["summary"] == ""  # nothing to summarise: no crash
    with pytest.raises(ValueError, match="unknown protocol 'training'"):
        protocol_from_dict({"protocol": "training"})


def test_the_golden_json_report_reads_back_as_its_run():
    doc = json.loads(GOLDEN_REPORT.read_text(encoding="utf-8"))
    run = RunResult.from_report(doc)
    (b,) = run.benchmarks
    assert b.record.nodeid == "benchmarks/test_golden.py::test_it[a]" and b.record.params == {"p": "a"}
    assert b.record.metrics["energy_j"].samples == [10.0, 11.0, 12.0]
    # Kinds from the display text (the report does not store them): tokens has no baseline, so no rule.
    assert [(v.metric, v.rule_kind) for v in b.outcome.verdicts] == [
        ("duration_s", RuleKind.WITHIN_RUN), ("energy_j", RuleKind.WITHIN_RUN), ("tokens", RuleKind.NONE)]
    assert b.settings.rounds == doc["benchmarks"][0]["options"]["rounds"]
    assert run.commit_id == "0" * 40 and run.datetime == "2026-01-01T00:00:00+00:00"
    assert b.reported == doc["benchmarks"][0]  # kept whole: a report built from it writes it back unchanged

    # The same report as written before the schema was numbered, with protocols as plain dicts: still a run.
    old = copy.deepcopy(doc)
    del old["energy"]["schema"]
    old["benchmarks"][0]["energy"]["protocols"] = [{"protocol": "inference", "batch_size": 1}]
    (ob,) = RunResult.from_report(old).benchmarks
    assert ob.record.protocols == [InferenceResult.from_dict({"batch_size": 1})]


def test_a_report_that_is_not_one_is_a_clear_error():
    with pytest.raises(ValueError, match="no 'benchmarks' list"):
        RunResult.from_report([1, 2])
    with pytest.raises(ValueError, match="no 'energy' block"):
        RunResult.from_report({"benchmarks": []})
    with pytest.raises(ValueError, match="benchmark 0 lacks 'fullname'"):
        RunResult.from_report({"benchmarks": [{}], "energy": {}})
    bad = {"benchmarks": [{"fullname": "t", "energy": {"metrics": {"m": {"unit": "J"}}}}], "energy": {}}
    with pytest.raises(ValueError, match="t: cannot be read back"):
        RunResult.from_report(bad)


def test_the_one_finite_number_check_refuses_bools_nan_infinities_and_ints_beyond_a_float():
    from pytest_energy.records import is_finite_number

    assert is_finite_number(0) and is_finite_number(-2.5) and is_finite_number(10**300)
    assert not any(is_finite_number(x) for x in (True, None, "1", float("nan"), float("inf"), -float("inf"),
                                                 10**400, -(10**400)))
