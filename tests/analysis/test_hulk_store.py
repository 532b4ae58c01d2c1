"""The stored HULK reference: what is stored, how it is validated and merged, and the scores it gives."""

from __future__ import annotations

import json

import pytest

from pytest_energy.analysis.hulk_store import (REFERENCE_FILENAME, Slot, add_scores, load_reference,
                                               reference_from_records, save_reference, score_metric, slots_of)
from pytest_energy.errors import BaselineError
from pytest_energy.gate.baselines import NOT_BASELINES, BaselineStore
from pytest_energy.records import TestRecord, protocol_from_dict

MACHINE = {"method": "estimate", "gpus": [], "cpu_model": "Xeon", "estimate_watts_per_core": 10.0, "python": "3.11"}
OTHER = {**MACHINE, "cpu_model": "EPYC"}
COMMIT = {"id": "abc"}


def finetune(nodeid, task, durations, energies=None, *, model="bert-large", cutoff=0.9, group=None):
    r = TestRecord(nodeid, nodeid.rsplit("::", 1)[-1], group=group, extra_info={"model": model})
    if task:
        r.extra_info["hulk_task"] = task
    if not durations:  # not reached: the protocol ran, but there is no cost to the cut-off
        r.protocols.append(protocol_from_dict({"protocol": "finetune", "cutoff": cutoff, "reached": False}))
    for i, d in enumerate(durations):
        r.protocols.append(protocol_from_dict({"protocol": "finetune", "cutoff": cutoff, "reached": True}))
        r.metric("finetune.duration_s", "s").add(d)
        r.metric("finetune.energy_j", "J", method="estimate").add((energies or durations)[i] * 20)
    return r


def inference(nodeid, task, ms, *, batch=1, model="bert-large"):
    r = TestRecord(nodeid, nodeid.rsplit("::", 1)[-1], extra_info={"model": model, "hulk_task": task})
    for x in ms:
        r.protocols.append(protocol_from_dict({"protocol": "inference", "batch_size": batch}))
        r.metric("inference.ms_per_example", "ms").add(x)
        r.metric("inference.j_per_example", "J/example", method="estimate").add(x / 100)
    return r


def store(tmp_path, records, machine=MACHINE):
    entry, problems = reference_from_records(records, machine, COMMIT, "2026-01-01T00:00:00+00:00")
    return save_reference(tmp_path / REFERENCE_FILENAME, entry), problems


def test_stored_costs_score_a_later_run(tmp_path):
    path, problems = store(tmp_path, [finetune("t.py::large_sst2", "sst2", [10.0, 12.0]),
                                      inference("t.py::large_inf", "sst2", [8.0, 8.0])])
    assert problems == []
    doc = json.loads(path.read_text())
    assert doc["schema"] == "pytest-energy/hulk-reference" and len(doc["references"]) == 1
    slot = doc["references"][0]["slots"]["finetune|sst2"]
    assert slot["costs"]["time"] == {"metric": "finetune.duration_s", "unit": "s", "mean": 11.0, "n": 2}
    assert slot["cutoff"] == 0.9 and slot["nodeid"] == "t.py::large_sst2" and slot["method"] == "estimate"

    entry, note = load_reference(path).match(MACHINE)
    assert note == "" and entry.model == "bert-large" and set(entry.slots) == {"finetune|sst2",
                                                                                "inference|sst2|batch 1"}
    small = finetune("t.py::small", "sst2", [5.5, 4.4], model="minilm")
    added = add_scores(small, entry)
    assert added == [score_metric("finetune", "time"), score_metric("finetune", "energy")]
    time_score = small.metrics["hulk.finetune.score_time"]
    assert time_score.samples == [pytest.approx(2.0), pytest.approx(2.5)]  # reference mean / each sample
    assert (time_score.unit, time_score.better, time_score.kind) == ("1", "higher", "measured")
    assert small.metrics["hulk.finetune.score_energy"].samples == [pytest.approx(2.0), pytest.approx(2.5)]
    fast = inference("t.py::fast", "sst2", [2.0], model="minilm")
    assert add_scores(fast, entry) == ["hulk.inference.score_time", "hulk.inference.score_energy"]
    assert fast.metrics["hulk.inference.score_time"].samples == [pytest.approx(4.0)]


def test_nothing_is_scored_where_the_reference_does_not_apply(tmp_path):
    path, _ = store(tmp_path, [finetune("t.py::large", "sst2", [10.0]), inference("t.py::inf", "sst2", [8.0])])
    entry, _ = load_reference(path).match(MACHINE)
    cases = [finetune("t.py::a", "mnli", [5.0]),  # a task the reference lacks
             finetune("t.py::b", "sst2", [5.0], cutoff=0.8),  # to another cut-off
             finetune("t.py::c", "sst2", []),  # cut-off not reached: no cost metric
             inference("t.py::d", "sst2", [2.0], batch=32),  # another batch size
             finetune("t.py::e", None, [5.0])]  # no HULK task
    for record in cases:
        assert add_scores(record, entry) == [], record.nodeid
        assert not any(name.startswith("hulk.") for name in record.metrics)


def test_another_machine_class_is_not_compared_and_says_so(tmp_path):
    path, _ = store(tmp_path, [finetune("t.py::large", "sst2", [10.0])], machine=OTHER)
    entry, note = load_reference(path).match(MACHINE)
    assert entry is None
    assert "another machine class" in note and "no score is computed" in note
    assert "cpu_model: 'EPYC' (baseline) != 'Xeon' (now)" in note and "bert-large" in note
    # versions are not part of the class: a new Python still matches
    assert load_reference(path).match({**OTHER, "python": "3.13"})[0] is not None
    entry, note = load_reference(tmp_path / "absent.json").match(MACHINE)
    assert entry is None and "--energy-save-reference" in note


def test_saving_merges_tasks_and_machine_classes(tmp_path):
    store(tmp_path, [finetune("t.py::sst2", "sst2", [10.0])])
    store(tmp_path, [finetune("t.py::mnli", "mnli", [900.0])])
    store(tmp_path, [finetune("t.py::sst2", "sst2", [20.0])])  # a re-recorded task replaces its slot
    path, _ = store(tmp_path, [finetune("t.py::sst2", "sst2", [30.0])], machine=OTHER)
    ref = load_reference(path)
    assert len(ref.entries) == 2
    mine = ref.match(MACHINE)[0]
    assert set(mine.slots) == {"finetune|sst2", "finetune|mnli"} and mine.slots["finetune|sst2"].cost("time") == 20.0
    assert ref.match(OTHER)[0].slots["finetune|sst2"].cost("time") == 30.0


def test_another_reference_model_is_refused_and_nothing_is_lost(tmp_path):
    path, _ = store(tmp_path, [finetune("t.py::sst2", "sst2", [10.0])])
    before = path.read_bytes()
    with pytest.raises(BaselineError, match=r"already holds 'bert-large'.*'minilm'.*delete that entry"):
        store(tmp_path, [finetune("t.py::sst2", "sst2", [1.0], model="minilm")])
    assert path.read_bytes() == before


def test_what_cannot_be_stored(tmp_path):
    _, problems = store(tmp_path, [finetune("t.py::ok", "sst2", [10.0]), finetune("t.py::na", "mnli", []),
                                   finetune("t.py::x", "conll", [1.0]), finetune("t.py::y", "conll", [2.0])])
    assert any("finetune|mnli" in p and "cut-off not reached" in p for p in problems)
    assert any("finetune|conll: filled by 2 tests" in p for p in problems)
    with pytest.raises(BaselineError, match="no test produced a HULK cost"):
        reference_from_records([finetune("t.py::na", "mnli", [])], MACHINE, COMMIT, "now")
    with pytest.raises(BaselineError, match="measures one model"):
        reference_from_records([finetune("t.py::a", "sst2", [1.0]), finetune("t.py::b", "mnli", [1.0], model="x")],
                               MACHINE, COMMIT, "now")


def test_slots_come_from_protocols_and_tasks():
    assert slots_of(finetune("t.py::g", None, [1.0], group="sst2")) == [(Slot("finetune", "sst2"), {"cutoff": 0.9})]
    sweep = inference("t.py::s", "sst2", [1.0])
    sweep.extra_info["sweep_point"] = {"axis": "max_length"}
    assert slots_of(sweep) == []  # sweep points vary one model's settings: not HULK rows
    mixed = inference("t.py::m", "sst2", [1.0])
    mixed.protocols.append(protocol_from_dict({"protocol": "inference", "batch_size": 32}))
    assert slots_of(mixed) == []  # its cost metric mixes two batch sizes


@pytest.mark.parametrize("content, problem", [
    (b'{"schema": "pytest-energy/hulk-reference", "schema_version": 1, "refer', "not valid JSON"),
    (b'{"schema_version": 1, "entries": {}}', "not a HULK reference file"),
    (b'{"schema": "pytest-energy/hulk-reference", "schema_version": 2, "references": []}', "schema_version is 2"),
    (b'{"schema": "pytest-energy/hulk-reference", "schema_version": 1, "references": [{"machine": {}}]}',
     "reference #1: 'model' is missing"),
    (json.dumps({"schema": "pytest-energy/hulk-reference", "schema_version": 1, "references": [
        {"machine": {}, "model": "m", "datetime": "d", "commit": {}, "slots": {"finetune|sst2": {
            "protocol": "finetune", "task": "sst2", "batch_size": None, "cutoff": 0.9,
            "costs": {"time": {"metric": "finetune.duration_s", "unit": "s", "mean": -1, "n": 1}}}}}]}).encode(),
     "cost 'time' has mean -1"),
    (b'\xff\xfe', "not UTF-8"),
    (b'{"schema": "pytest-energy/hulk-reference", "schema_version": 1, "schema_version": 1, "references": []}',
     "key 'schema_version' appears twice"),
    (b'{"schema": "pytest-energy/hulk-reference", "schema_version": 1, "references": [], "x": NaN}',
     "non-standard JSON constant NaN"),
])
def test_a_damaged_file_is_an_error_naming_it_and_is_never_overwritten(tmp_path, content, problem):
    path = tmp_path / REFERENCE_FILENAME
    path.write_bytes(content)
    with pytest.raises(BaselineError) as info:
        load_reference(path)
    assert str(path) in str(info.value) and problem in str(info.value) and "--energy-save-reference" in str(info.value)
    with pytest.raises(BaselineError):
        store(tmp_path, [finetune("t.py::sst2", "sst2", [10.0])])
    assert path.read_bytes() == content


def test_the_baseline_store_leaves_the_reference_file_alone(tmp_path):
    assert REFERENCE_FILENAME in NOT_BASELINES
    store(tmp_path, [finetune("t.py::sst2", "sst2", [10.0])])
    assert BaselineStore(tmp_path).load_all() == {}
