from __future__ import annotations

import json
import math
import multiprocessing
import os
import stat

import pytest

from pathlib import Path

from pytest_energy.gate.baselines import (
    SCHEMA_VERSION, BaselineEntry, BaselineStore, append_run, baseline_filename, machine_mismatch,
)
from pytest_energy.gate.history import RunSummary
from pytest_energy.errors import BaselineError
from pytest_energy.records import Metric

NODE = "benchmarks/test_inference.py::test_x[a]"
MACHINE = {"meter": "estimate", "method": "estimate", "gpus": [], "cpu_model": "Xeon", "cpu_count": 2,
           "python": "3.11.7", "estimate_watts_per_core": 10.0}


def entry(nodeid=NODE, energy_j=(10.0, 11.0, 12.0)):
    return BaselineEntry(
        nodeid=nodeid, machine=dict(MACHINE), commit={"id": "abc", "dirty": False},
        datetime="2024-05-01T12:00:00+00:00", method="estimate",
        metrics={"energy_j": Metric("energy_j", "J", "lower", "measured", list(energy_j), "estimate"),
                 "steps": Metric("steps", "steps", "lower", "deterministic", [40.0])},
        extra_info={"batch": 8})


@pytest.mark.parametrize("nodeid, name", [
    ("benchmarks/test_inference.py::test_x[a]", "benchmarks__test_inference.json"),
    ("benchmarks/test_inference.py::TestA::test_y", "benchmarks__test_inference.json"),
    ("test_top.py::test_z", "test_top.json"),
    ("a b/test-é.py::t", "a_b__test-_.json"),
    ("../up/test_u.py::t", "__up__test_u.json"),
])
def test_baseline_filename(nodeid, name):
    assert baseline_filename(nodeid) == name


def test_round_trip_and_stable_format(tmp_path):
    store = BaselineStore(tmp_path / "baselines")
    [path] = store.save([entry()])
    assert path == tmp_path / "baselines" / "benchmarks__test_inference.json"
    text = path.read_text()
    doc = json.loads(text)
    assert doc["schema_version"] == SCHEMA_VERSION == 2
    assert text == json.dumps(doc, sort_keys=True, indent=2) + "\n"
    assert store.load(NODE) == entry()
    assert store.load("benchmarks/test_inference.py::test_x[b]") is None
    assert store.load("other/test_none.py::t") is None
    store.save([entry()])
    assert path.read_text() == text  # re-saving the same data is a byte-for-byte no-op


def test_save_merges_and_keeps_other_entries(tmp_path):
    store = BaselineStore(tmp_path)
    store.save([entry(NODE), entry("benchmarks/test_train.py::test_t")])
    store.save([entry("benchmarks/test_inference.py::test_x[b]", energy_j=(1.0, 2.0))])
    store.save([entry(NODE, energy_j=(5.0, 6.0))])
    everything = store.load_all()
    assert set(everything) == {NODE, "benchmarks/test_inference.py::test_x[b]", "benchmarks/test_train.py::test_t"}
    assert everything[NODE].metrics["energy_j"].samples == [5.0, 6.0]
    assert sorted(p.name for p in tmp_path.glob("*.json")) == ["benchmarks__test_inference.json",
                                                                 "benchmarks__test_train.json"]


def test_new_files_follow_the_umask_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        [path] = BaselineStore(tmp_path).save([entry()])
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_load_all_without_directory_is_empty(tmp_path):
    assert BaselineStore(tmp_path / "missing").load_all() == {}


def _valid_text():
    return json.dumps({"schema_version": 2, "entries": {NODE: entry().to_dict()}}, sort_keys=True, indent=2) + "\n"


def _mutate(change):
    doc = json.loads(_valid_text())
    change(doc)
    return json.dumps(doc)


DAMAGED = {
    "truncated": _valid_text()[: len(_valid_text()) // 2],
    "empty": "",
    "not json": "this is not json\n",
    "NaN constant": _valid_text().replace("10.0", "NaN", 1),
    "top-level list": "[]",
    "no schema": json.dumps({"entries": {}}),
    "future schema": _mutate(lambda d: d.update(schema_version=3)),
    "entries list": _mutate(lambda d: d.update(entries=[])),
    "samples string": _mutate(lambda d: d["entries"][NODE]["metrics"]["energy_j"].update(samples="1,2")),
    "samples bool": _mutate(lambda d: d["entries"][NODE]["metrics"]["energy_j"].update(samples=[True])),
    "samples empty": _mutate(lambda d: d["entries"][NODE]["metrics"]["energy_j"].update(samples=[])),
    "bad better": _mutate(lambda d: d["entries"][NODE]["metrics"]["energy_j"].update(better="less")),
    "no unit": _mutate(lambda d: d["entries"][NODE]["metrics"]["energy_j"].pop("unit")),
    "metric renamed": _mutate(lambda d: d["entries"][NODE]["metrics"]["energy_j"].update(name="x")),
    "machine missing": _mutate(lambda d: d["entries"][NODE].pop("machine")),
    "entry in the wrong file": _mutate(lambda d: d["entries"].update({"other.py::t": d["entries"][NODE]})),
    "runs missing": _mutate(lambda d: d["entries"][NODE].pop("runs")),
    "history of an unknown run": _mutate(
        lambda d: d["entries"][NODE]["metrics"]["energy_j"]["history"][0].update(run_id="nowhere")),
    "history n bool": _mutate(lambda d: d["entries"][NODE]["metrics"]["energy_j"]["history"][0].update(n=True)),
    "history sd negative": _mutate(
        lambda d: d["entries"][NODE]["metrics"]["energy_j"]["history"][0].update(sd=-1.0)),
    "history empty": _mutate(lambda d: d["entries"][NODE]["metrics"]["energy_j"].update(history=[])),
    "probe negative": _mutate(lambda d: next(iter(d["entries"][NODE]["runs"].values())).update(probe_s=-0.03)),
}


@pytest.mark.parametrize("damage", sorted(DAMAGED))
def test_damaged_file_is_reported_and_never_touched(tmp_path, damage):
    store = BaselineStore(tmp_path)
    path = store.path_for(NODE)
    path.write_text(DAMAGED[damage])
    before = path.read_bytes()
    with pytest.raises(BaselineError) as exc:
        store.load(NODE)
    assert str(path) in str(exc.value)
    with pytest.raises(BaselineError, match="--energy-save-baseline"):
        store.save([entry("benchmarks/test_inference.py::test_x[new]")])
    with pytest.raises(BaselineError):
        store.load_all()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []


def test_truncated_file_error_says_so(tmp_path):
    store = BaselineStore(tmp_path)
    store.path_for(NODE).write_text(DAMAGED["truncated"])
    with pytest.raises(BaselineError, match=r"benchmarks__test_inference\.json: not valid JSON \(truncated\?\)"):
        store.load(NODE)


def test_a_damaged_file_stops_a_multi_file_save_before_any_write(tmp_path):
    store = BaselineStore(tmp_path)
    store.path_for("z/test_z.py::t").write_text("{")
    with pytest.raises(BaselineError):
        store.save([entry("a/test_a.py::t"), entry("z/test_z.py::t")])
    assert not store.path_for("a/test_a.py::t").exists()


def test_unsavable_samples_are_refused(tmp_path):
    store = BaselineStore(tmp_path)
    store.save([entry()])
    before = store.path_for(NODE).read_bytes()
    with pytest.raises(BaselineError, match=r"test_x\[a\].*energy_j.*finite"):
        store.save([entry(energy_j=(1.0, math.nan))])
    assert store.path_for(NODE).read_bytes() == before


# --- run history (schema 2) ---------------------------------------------------------------------------------

def run_entry(run_id, energy_j=(10.0, 11.0), probe_s=0.03, machine=None, unit="J"):
    """One run of one test as the session builds it: a history of this run alone."""
    metrics = {"energy_j": Metric("energy_j", unit, "lower", "measured", list(energy_j), "estimate"),
               "steps": Metric("steps", "steps", "lower", "deterministic", [40.0])}
    return BaselineEntry(
        nodeid=NODE, machine=dict(machine or MACHINE), commit={"id": run_id, "dirty": False},
        datetime=f"2024-05-01T12:00:{len(run_id):02d}+00:00", method="estimate", metrics=metrics,
        history={"energy_j": [RunSummary.of(energy_j, run_id)]},
        runs={run_id: {"datetime": "2024-05-01T12:00:00+00:00", "commit": run_id, "probe_s": probe_s,
                       "probe_id": "v1-test"}})


def test_the_committed_baselines_load_with_a_history_the_gate_can_use():
    """The repository's own baselines/ (what `pytest benchmarks/ --energy` gates against) load, and every
    measured metric has the three runs the history rule needs, the latest being the stored samples.
    Schema-1 files are covered by tests/test_golden_formats.py."""
    directory = Path(__file__).parents[2] / "baselines"
    assert all(json.loads(p.read_text())["schema_version"] == 2 for p in directory.glob("benchmarks__*.json"))
    entries = BaselineStore(directory).load_all()
    assert len(entries) == 17
    for entry in entries.values():
        for name, metric in entry.metrics.items():
            if metric.kind != "measured":
                assert name not in entry.history
                continue
            runs = entry.history[name]
            assert len(runs) >= 3 or name.startswith("hulk."), (entry.nodeid, name, len(runs))
            assert runs[-1].n == len(metric.samples) and runs[-1].mean == pytest.approx(metric.mean)


def test_saves_append_runs_and_keep_the_last_n(tmp_path):
    store = BaselineStore(tmp_path)
    for i in range(5):
        store.save([run_entry(f"r{i}", energy_j=(10.0 + i, 11.0 + i))],
                   combine=lambda old, new: append_run(old, new, keep=3))
    loaded = store.load(NODE)
    assert [r.run_id for r in loaded.history["energy_j"]] == ["r2", "r3", "r4"]
    assert [r.mean for r in loaded.history["energy_j"]] == [12.5, 13.5, 14.5]
    assert set(loaded.runs) == {"r2", "r3", "r4"}  # runs no history refers to are dropped
    assert loaded.metrics["energy_j"].samples == [14.0, 15.0]  # the latest run's samples
    assert "steps" not in loaded.history
    probes = [r.probe for r in loaded.history_for("energy_j", "v1-test")]
    assert probes == [0.03] * 3 and [r.probe for r in loaded.history_for("energy_j", "v2-other")] == [None] * 3


def test_a_restarted_metric_a_reset_and_another_machine_start_new_histories():
    old = append_run(run_entry("r0"), run_entry("r1"))
    assert len(old.history["energy_j"]) == 2
    assert [r.run_id for r in append_run(old, run_entry("r2"), restart={"energy_j"}).history["energy_j"]] == ["r2"]
    assert [r.run_id for r in append_run(old, run_entry("r2"), reset=True).history["energy_j"]] == ["r2"]
    other = dict(MACHINE, cpu_model="EPYC")
    assert [r.run_id for r in append_run(old, run_entry("r2", machine=other)).history["energy_j"]] == ["r2"]
    assert [r.run_id for r in append_run(old, run_entry("r2", unit="Wh")).history["energy_j"]] == ["r2"]
    assert [r.run_id for r in append_run(old, run_entry("r2")).history["energy_j"]] == ["r0", "r1", "r2"]


def test_a_schema_1_file_is_rewritten_as_schema_2_keeping_its_run(tmp_path):
    store = BaselineStore(tmp_path)
    v1 = {"schema_version": 1, "entries": {NODE: {k: v for k, v in entry().to_dict().items() if k != "runs"}}}
    for m in v1["entries"][NODE]["metrics"].values():
        m.pop("history", None)
    store.path_for(NODE).write_text(json.dumps(v1))
    store.save([run_entry("r1")], combine=append_run)
    loaded = store.load(NODE)
    assert [r.run_id for r in loaded.history["energy_j"]] == [f"v1:{entry().datetime}", "r1"]
    assert json.loads(store.path_for(NODE).read_text())["schema_version"] == 2


def _append_many(directory, worker, count):
    store = BaselineStore(directory)
    for i in range(count):
        store.save([run_entry(f"w{worker}-{i}")], combine=lambda old, new: append_run(old, new, keep=1000))


def _in_processes(target, directory, workers, per_worker):
    ctx = multiprocessing.get_context("fork") if hasattr(os, "fork") else multiprocessing.get_context()
    procs = [ctx.Process(target=target, args=(str(directory), w, per_worker)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0


def test_concurrent_appends_to_one_test_all_land(tmp_path):
    """Each save appends under the lock to the entry as it is on disk then: no run is lost."""
    _in_processes(_append_many, tmp_path, 4, 5)
    assert len(BaselineStore(tmp_path).load(NODE).history["energy_j"]) == 4 * 5


def _save_many(directory, worker, count):
    store = BaselineStore(directory)
    for i in range(count):
        store.save([entry(f"benchmarks/test_inference.py::test_x[w{worker}-{i}]")])


def test_concurrent_saves_from_several_processes_all_land(tmp_path):
    _in_processes(_save_many, tmp_path, 6, 8)
    assert len(BaselineStore(tmp_path).load_all()) == 6 * 8


# --- machine matching ---------------------------------------------------------------------------------------

def test_machine_mismatch_lines():
    base = {"method": "nvml-counter", "gpus": ["A100"], "cpu_model": "EPYC", "torch": "2.2"}
    now = {"method": "nvml-counter", "gpus": ["H100"], "cpu_model": "EPYC", "torch": "2.3"}
    assert machine_mismatch(base, now) == ["gpus: ['A100'] (baseline) != ['H100'] (now)"]
    now2 = dict(base, method="estimate", estimate_watts_per_core=12.0)
    assert machine_mismatch(base, now2) == ["method: 'nvml-counter' (baseline) != 'estimate' (now)",
                                            "estimate_watts_per_core: None (baseline) != 12.0 (now)"]


def test_volatile_fields_never_mismatch():
    base = dict(MACHINE, gpu_driver="535", gpu_power_limit_w=[300], python="3.10", torch="2.2", platform="x",
                cpu_count=2, clock_mhz=2400, temperature_c=40)
    now = dict(MACHINE, gpu_driver="550", gpu_power_limit_w=[250], python="3.12", torch="2.4", platform="y",
               cpu_count=64, clock_mhz=3100, temperature_c=80)
    assert machine_mismatch(base, now) == []


def test_missing_none_and_empty_mean_the_same_and_gpu_order_does_not_matter():
    assert machine_mismatch({"gpus": None, "method": "rapl"}, {"gpus": [], "method": "rapl"}) == []
    assert machine_mismatch({"method": "rapl"}, {"method": "rapl", "gpus": [], "cpu_model": None}) == []
    assert machine_mismatch({"gpus": ["A", "B"]}, {"gpus": ["B", "A"]}) == []
    assert machine_mismatch({"gpus": ["A", "A"]}, {"gpus": ["A"]}) != []


def test_long_module_paths_get_short_unique_file_names(tmp_path):
    deep = "/".join(f"folder_{i:02d}_with_a_long_name" for i in range(12))
    a, b = f"{deep}/test_a.py::t", f"{deep}/x/test_a.py::t"
    name_a, name_b = baseline_filename(a), baseline_filename(b)
    assert len(name_a) <= 205 and len(name_b) <= 205 and name_a != name_b
    assert name_a.endswith("test_a.json")  # the module's own name stays readable
    store = BaselineStore(tmp_path)
    store.save([entry(a), entry(b)])  # [Errno 36] File name too long before
    assert store.load(a) == entry(a) and store.load(b) == entry(b)


def test_duplicate_keys_are_an_error_not_last_one_wins(tmp_path):
    store = BaselineStore(tmp_path)
    [path] = store.save([entry()])
    text = path.read_text()
    doubled = text.replace('"entries": {', '"entries": {' + f'"{NODE}": {{}},', 1)
    path.write_text(doubled)
    with pytest.raises(BaselineError, match="appears twice"):
        store.load(NODE)
    assert path.read_text() == doubled  # left as it was


def test_the_lock_file_stays_out_of_the_baseline_folder(tmp_path, monkeypatch):
    import tempfile
    from pathlib import Path

    from pytest_energy.gate.baselines import lock_path_for

    store = BaselineStore(tmp_path / "baselines")
    store.save([entry()])
    assert sorted(p.name for p in (tmp_path / "baselines").iterdir()) == ["benchmarks__test_inference.json"]
    lock = lock_path_for(tmp_path / "baselines")
    assert lock.parent == Path(tempfile.gettempdir()) and lock.exists()
    monkeypatch.chdir(tmp_path)
    assert lock_path_for("baselines") == lock  # one folder, one lock, however it is named
    assert lock_path_for(tmp_path / "other") != lock


@pytest.mark.parametrize("name, samples, problem", [
    ("energy_j", [1e308, 1e308], "beyond any measurable value"),
    ("energy_j", [-5.03], "negative energy"),
    ("duration_s", [0.0], "duration of 0.0 s"),
    ("inference.duration_s", [-1.0], "duration of -1.0 s"),
])
def test_impossible_values_are_refused_on_load_naming_the_file(tmp_path, name, samples, problem):
    """1e308 crashed the run (OverflowError in fsum); -5 J gave '-5.03 J -> 0 J REGRESSION' and 0 s '+inf %'."""
    store = BaselineStore(tmp_path)
    [path] = store.save([entry()])
    doc = json.loads(path.read_text())
    metric = {"name": name, "unit": "J" if "energy" in name else "s", "better": "lower", "kind": "measured",
              "samples": samples, "method": None}
    next(iter(doc["entries"].values()))["metrics"][name] = metric
    path.write_text(json.dumps(doc))
    with pytest.raises(BaselineError, match=rf"{path.name}.*{problem}"):
        store.load_all()


def test_net_energy_may_be_negative(tmp_path):
    store = BaselineStore(tmp_path)
    e = entry()
    e.metrics["net_energy_j"] = Metric("net_energy_j", "J", "lower", "measured", [-0.5, 0.2], "estimate")
    store.save([e])
    assert store.load(NODE).metrics["net_energy_j"].samples == [-0.5, 0.2]


def test_one_unsavable_entry_does_not_lose_the_others(tmp_path):
    """A NaN sample in one test lost every baseline of the run; now that test is named and the rest saved."""
    from pytest_energy.errors import BaselineSaveError

    store = BaselineStore(tmp_path)
    good, bad = entry("a/test_a.py::t"), entry("z/test_z.py::t", energy_j=(1.0, math.nan))
    with pytest.raises(BaselineSaveError, match=r"test_z.*energy_j.*finite") as exc:
        store.save([good, bad])
    assert exc.value.written == [store.path_for("a/test_a.py::t")]
    assert store.load("a/test_a.py::t") is not None and store.load("z/test_z.py::t") is None


def test_temporaries_of_a_killed_save_are_removed_by_the_next_save(tmp_path):
    store = BaselineStore(tmp_path)
    stale = tmp_path / ".benchmarks__test_inference.json.999999999.0123abcd.tmp"  # no such pid
    stale.write_text("half a file")
    mine = tmp_path / ".notes.txt.tmp"  # not one of ours: left alone
    mine.write_text("x")
    store.save([entry()])
    assert not stale.exists() and mine.exists()


# --- all or nothing across files (files.write_group) ----------------------------------------------------------

THREE = ("a/test_a.py::t", "b/test_b.py::t", "c/test_c.py::t")


def _save_run(directory, run_id, nodeids=THREE):
    entries = []
    for nodeid in nodeids:
        e = run_entry(run_id)
        e.nodeid = nodeid
        entries.append(e)
    return BaselineStore(directory).save(entries, combine=append_run)


def _save_killed_at(directory, step):
    from pytest_energy import files

    os.environ[files.KILL_AT_STEP_ENV] = str(step)
    files._steps_taken[0] = 0
    _save_run(directory, "r2", THREE + ("d/test_new.py::t",))  # three files updated, one created


def _runs_in(store):
    return {nodeid: [r.run_id for r in e.history["energy_j"]] for nodeid, e in store.load_all().items()}


def test_a_save_killed_at_any_step_is_in_every_file_or_in_none(tmp_path, killed_saves):
    """kill -9 before each filesystem step of a four-file save (create, write, fsync, rename, unlink): a
    reader then sees the run in all four files or in none, and the next save completes or discards it."""
    setup = tmp_path / "setup"
    _save_run(setup, "r1")
    seen = set()
    for step, directory in killed_saves(setup, lambda d: _save_run(d, "r2", THREE + ("d/test_new.py::t",)),
                                        _save_killed_at):
        store = BaselineStore(directory)
        runs = _runs_in(store)  # a reader: sees a committed save finished, writes nothing
        saved = [nodeid for nodeid in (*THREE, "d/test_new.py::t") if "r2" in runs.get(nodeid, [])]
        assert saved in ([], [*THREE, "d/test_new.py::t"]), (step, runs)
        seen.add(bool(saved))
        _save_run(directory, "r3")  # the next save rolls the journal forward or discards the temporaries
        after = _runs_in(store)
        expected = ["r1", "r2", "r3"] if saved else ["r1", "r3"]
        assert all(after[nodeid] == expected for nodeid in THREE), (step, after)
        assert sorted(p.name for p in directory.iterdir() if p.name.startswith(".")) == [], step
    assert seen == {False, True}  # kills before and after the commit point both happened
