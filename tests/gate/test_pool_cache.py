"""The baselines' pool cache (gate/pool_cache.py): a start-up that trusts it judges exactly as one that parses
and pools everything, and a cache that does not describe the files, or is no cache at all, changes nothing."""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_energy.errors import BaselineError
from pytest_energy.gate import baselines, pool_cache
from pytest_energy.gate.baselines import POOL_CACHE_NAME, BaselineEntry, BaselineStore, append_run
from pytest_energy.gate.history import Pooled, RunSummary
from pytest_energy.gate.judge import pool_histories
from pytest_energy.measure.probe import PROBE_ID
from pytest_energy.records import Metric

MACHINE = {"method": "estimate", "gpus": [], "cpu_model": "Xeon", "estimate_watts_per_core": 10.0, "python": "3.11"}
OTHER = {**MACHINE, "cpu_model": "EPYC"}
GPU = {"method": "nvml-counter", "gpus": ["H100", "A100"], "cpu_model": "Xeon"}


@pytest.fixture(autouse=True)
def _every_folder_gets_a_cache(monkeypatch):
    monkeypatch.setattr(pool_cache, "MIN_BYTES", 0)


def _entry(nodeid: str, rng: random.Random, run_ids: list[str], machine: dict, *, noisy: bool = False) -> BaselineEntry:
    """A test with duration, energy, a p99 latency and a memory figure, histories over `run_ids` (some runs probed
    with this probe, some with another, some not at all), and a deterministic count."""
    metrics, history = {}, {}
    spread = 0.5 if noisy else 0.04
    for name, unit in (("duration_s", "s"), ("energy_j", "J"), ("latency_ms_p99", "ms"), ("peak_memory_bytes", "B"),
                       ("examples_per_s", "examples/s"), ("tokens", "1")):
        centre = rng.uniform(0.5, 50.0)
        kind = "deterministic" if name == "tokens" else "measured"
        better = "higher" if unit.endswith("/s") else "lower"
        metrics[name] = Metric(name, unit, better, kind, [centre * math.exp(rng.gauss(0, spread)) for _ in range(3)])
        if kind == "measured":
            history[name] = [RunSummary(centre * math.exp(rng.gauss(0, spread)), centre * 0.01, rng.choice([3, 5]), rid)
                             for rid in run_ids]
    runs = {rid: {"datetime": f"2026-11-{i + 1:02d}T00:00:00+00:00", "commit": f"c{i}",
                  "probe_s": None if i % 4 == 3 else 0.03 * math.exp(rng.gauss(0, 0.03)),
                  "probe_id": "old-probe" if i % 5 == 4 else PROBE_ID}
            for i, rid in enumerate(run_ids)}
    return BaselineEntry(nodeid=nodeid, machine=dict(machine), commit={"id": run_ids[-1]},
                         datetime="2026-11-30T00:00:00+00:00", method=machine["method"], metrics=metrics,
                         history=history, runs=runs)


def _suite(folder: Path, n: int = 60, seed: int = 3) -> BaselineStore:
    """A folder of `n` tests in several modules and three machine classes, saved as a run would save them."""
    rng = random.Random(seed)
    run_ids = [f"run{i}" for i in range(8)]
    entries = []
    for t in range(n):
        machine = OTHER if t % 9 == 0 else GPU if t % 11 == 0 else MACHINE
        entries.append(_entry(f"bench/test_m{t % 4}.py::test_{t}", rng, run_ids[t % 3:], machine, noisy=t == 5))
    store = BaselineStore(folder)
    store.save(entries)
    return store


def _fresh(store: BaselineStore) -> list[BaselineEntry]:
    """Every entry as a load without a cache builds them, in load order."""
    out = []
    for path in sorted(store.directory.glob("*.json")):
        if path.name not in baselines.NOT_BASELINES:
            out.extend(baselines.read_file(path)[1].values())
    return out


def _bits(x):
    """A value with every float as its 8 bytes: NaN equals NaN, 0.0 differs from -0.0, 1 differs from 1.0."""
    if type(x) is float:
        return ("f", struct.pack("<d", x))
    if isinstance(x, dict):
        return [(_bits(k), _bits(v)) for k, v in x.items()]
    if isinstance(x, (list, tuple)):
        return [_bits(v) for v in x]
    if hasattr(x, "__dataclass_fields__"):
        return [(name, _bits(getattr(x, name))) for name in x.__dataclass_fields__]
    return (type(x).__name__, x)


def _same_pools(store: BaselineStore, machines=(MACHINE, OTHER, GPU, {"method": "rapl"})) -> None:
    loaded = store.load_all()
    entries = _fresh(store)
    for machine in machines:
        for probing in (False, True):
            got = pool_histories(loaded.values(), machine, probing)
            want = pool_histories(entries, machine, probing)
            assert got.probing == want.probing
            assert _bits(got.pools) == _bits(want.pools), (machine, probing)


# --- the cache gives what parsing and pooling give -------------------------------------------------------------

def test_the_cached_pools_equal_a_fresh_pool_bit_for_bit(tmp_path):
    store = _suite(tmp_path)
    assert (tmp_path / POOL_CACHE_NAME).is_file()
    loaded = store.load_all()
    assert loaded.vouched
    _same_pools(store)
    context = pool_histories(loaded.values(), MACHINE, True)
    assert {"time", "energy", "tail", "memory"} <= set(context.pools)
    assert any(p.n_screened for pools in context.pools.values() for p in pools.values())  # the noisy test


def test_the_cache_is_a_baseline_file_without_entries_to_every_reader_of_the_folder(tmp_path):
    """pytest-energy from before the cache reads every *.json of the folder as a baseline file (and its merge
    driver merges it as one): to it the cache is a valid file of no entries."""
    _suite(tmp_path)
    cache = tmp_path / POOL_CACHE_NAME
    assert baselines.read_file(cache, name=None) == (2, {})
    assert "NaN" not in cache.read_text() and "Infinity" not in cache.read_text()
    # NaN and infinity (no prior; one run) are written as words standard JSON can hold, and read back exactly
    p = Pooled(math.nan, 0.0, 0.0, math.inf, {"a": -0.0, "b": 1e-300}, {"a": 3, "b": 4}, False, 3, 2, 0)
    back = pool_cache._pooled(json.loads(json.dumps(pool_cache._pooled_dict(p), allow_nan=False)))
    assert _bits(back) == _bits(p)


def test_a_machine_with_different_spellings_of_the_same_class_finds_its_pools(tmp_path):
    store = _suite(tmp_path)
    loaded = store.load_all()
    same = {**MACHINE, "estimate_watts_per_core": 10, "gpus": None, "cpu_count": 64, "python": "3.12"}
    assert pool_histories(loaded.values(), same, True).pools == pool_histories(_fresh(store), MACHINE, True).pools
    flipped = {**GPU, "gpus": ["A100", "H100"]}
    assert _bits(pool_histories(loaded.values(), flipped, False).pools) == \
        _bits(pool_histories(_fresh(store), GPU, False).pools)


def test_a_vouched_folder_parses_a_file_only_when_one_of_its_entries_is_asked_for(tmp_path, monkeypatch):
    store = _suite(tmp_path)
    expected = {e.nodeid: e for e in _fresh(store)}
    parsed: list[str] = []
    real = baselines._parse_raw
    monkeypatch.setattr(baselines, "_parse_raw", lambda path, raw: parsed.append(path.name) or real(path, raw))
    loaded = store.load_all()
    pool_histories(loaded.values(), MACHINE, True)
    assert parsed == [] and len(loaded) == len(expected) and loaded
    assert loaded["bench/test_m1.py::test_1"] == expected["bench/test_m1.py::test_1"]
    assert loaded.get("bench/test_m1.py::test_9999") is None and "bench/test_m1.py::test_9999" not in loaded
    assert "nowhere/test_x.py::t" not in loaded and loaded.get(42) is None
    assert parsed == ["bench__test_m1.json"]
    # The Mapping a dict of them would be: same keys in the same order, same entries.
    assert list(loaded) == list(expected) and loaded == expected
    assert list(loaded.items()) == list(expected.items()) and list(loaded.values()) == list(expected.values())
    assert sorted(parsed) == sorted(p.name for p in tmp_path.glob("bench__*.json"))  # each file once


def test_small_folders_get_no_cache_and_a_shrunk_one_loses_it(tmp_path, monkeypatch):
    monkeypatch.setattr(pool_cache, "MIN_BYTES", 10**9)
    store = _suite(tmp_path / "small")
    assert sorted(p.name for p in (tmp_path / "small").iterdir() if p.name.startswith(".")) == []
    assert not store.load_all().vouched
    monkeypatch.setattr(pool_cache, "MIN_BYTES", 0)
    store = _suite(tmp_path / "big")
    assert (tmp_path / "big" / POOL_CACHE_NAME).exists()
    monkeypatch.setattr(pool_cache, "MIN_BYTES", 10**9)
    rng = random.Random(0)
    store.save([_entry("bench/test_m0.py::test_0", rng, ["r9", "r10", "r11"], MACHINE)])
    assert not (tmp_path / "big" / POOL_CACHE_NAME).exists()


def test_every_save_rewrites_the_cache_for_what_the_folder_now_holds(tmp_path):
    store = _suite(tmp_path)
    rng = random.Random(1)
    before = (tmp_path / POOL_CACHE_NAME).read_bytes()
    new = _entry("bench/test_m2.py::test_2", rng, ["r10", "r11", "r12"], MACHINE)
    store.save([new], combine=lambda old, n: append_run(old, n, keep=10))
    assert (tmp_path / POOL_CACHE_NAME).read_bytes() != before
    assert store.load_all().vouched
    _same_pools(store)
    store.save([_entry("fresh/test_new.py::t", rng, ["r1", "r2", "r3"], OTHER)])  # a new file
    assert store.load_all().vouched
    _same_pools(store)


# --- anything else: parsed and pooled as without a cache ---------------------------------------------------------

def _edit_file(folder: Path) -> Path:
    path = folder / "bench__test_m2.json"
    path.write_text(path.read_text() + " \n")  # still valid, different bytes
    return path


@pytest.mark.parametrize("change", ["edited file", "added file", "removed file", "another code", "cache edited",
                                    "cache truncated", "conflict markers", "empty cache", "cache is a folder"])
def test_a_cache_that_does_not_describe_the_folder_is_ignored(tmp_path, change, monkeypatch):
    store = _suite(tmp_path)
    cache = tmp_path / POOL_CACHE_NAME
    text = cache.read_text()
    if change == "edited file":
        _edit_file(tmp_path)
    elif change == "added file":
        shutil.copy(tmp_path / "bench__test_m2.json", tmp_path / "bench__test_m9.json")
        doc = json.loads((tmp_path / "bench__test_m9.json").read_text())
        doc["entries"] = {k.replace("test_m2", "test_m9"): v for k, v in doc["entries"].items()}
        (tmp_path / "bench__test_m9.json").write_text(json.dumps(doc))
    elif change == "removed file":
        (tmp_path / "bench__test_m3.json").unlink()
    elif change == "another code":
        monkeypatch.setattr(pool_cache, "code_key", lambda: "another pytest-energy")
    elif change == "cache edited":  # a number changed by hand: the check no longer matches
        cache.write_text(text.replace('"n_runs": 8', '"n_runs": 9', 1))
    elif change == "cache truncated":
        cache.write_text(text[: len(text) // 2])
    elif change == "conflict markers":
        cache.write_text("<<<<<<< ours\n" + text + "=======\n" + text + ">>>>>>> theirs\n")
    elif change == "empty cache":
        cache.write_text("")
    else:
        cache.unlink()
        cache.mkdir()
    loaded = store.load_all()
    assert not loaded.vouched
    assert loaded == {e.nodeid: e for e in _fresh(store)}
    _same_pools(store)


def test_an_edited_damaged_file_still_stops_the_load_naming_it(tmp_path):
    store = _suite(tmp_path)
    path = tmp_path / "bench__test_m1.json"
    path.write_text(path.read_text().replace('"unit": "J"', '"unit": 5', 1))
    with pytest.raises(BaselineError) as exc:
        store.load_all()
    assert str(path) in str(exc.value)


def test_a_cache_forged_to_vouch_for_a_damaged_file_gives_its_error_when_the_file_is_read(tmp_path, monkeypatch):
    """A cache vouches only for bytes it names; one recomputed by hand for a damaged file moves that file's
    error (still naming it) to the first entry asked for."""
    store = _suite(tmp_path)
    path = tmp_path / "bench__test_m1.json"
    path.write_text(path.read_text().replace('"unit": "J"', '"unit": 5', 1))
    doc = json.loads((tmp_path / POOL_CACHE_NAME).read_text())["pool_cache"]
    for item in doc["files"]:
        if item[0] == path.name:
            raw = path.read_bytes()
            item[1], item[2] = len(raw), pool_cache.file_digest(raw)
    del doc["check"]
    doc["check"] = pool_cache._check(doc)
    (tmp_path / POOL_CACHE_NAME).write_text(pool_cache._dump(doc))
    loaded = store.load_all()
    assert loaded.vouched and loaded["bench/test_m0.py::test_0"]
    with pytest.raises(BaselineError) as exc:
        loaded.get("bench/test_m1.py::test_1")
    assert str(path) in str(exc.value)


@pytest.mark.slow  # hundreds of hypothesis examples, each a folder on disk
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.binary(max_size=300), st.builds(lambda d: json.dumps(d).encode(),
                                                    st.recursive(st.none() | st.booleans() | st.floats() | st.text(),
                                                                 lambda c: st.lists(c) | st.dictionaries(st.text(), c),
                                                                 max_leaves=20))))
def test_any_bytes_as_a_cache_are_ignored_never_an_error(tmp_path_factory, raw):
    folder = tmp_path_factory.mktemp("cache")
    store = _suite(folder, n=8)
    (folder / POOL_CACHE_NAME).write_bytes(raw)
    assert pool_cache.read_cache(raw) is None
    loaded = store.load_all()
    assert not loaded.vouched and loaded == {e.nodeid: e for e in _fresh(store)}


def test_a_cache_with_wrong_types_inside_a_valid_check_is_ignored(tmp_path):
    store = _suite(tmp_path, n=12)
    doc = json.loads((tmp_path / POOL_CACHE_NAME).read_text())["pool_cache"]
    for damage in ("files", "pools", "pooled", "effects"):
        bad = json.loads(json.dumps(doc))
        if damage == "files":
            bad["files"][0][1] = "12"
        elif damage == "pools":
            bad["pools"][0]["probing"] = 1
        elif damage == "pooled":
            bad["pools"][0]["families"][0][1][0][1]["n_runs"] = 8.0
        else:
            bad["pools"][0]["families"][0][1][0][1]["run_effects"] = {"x": "0.1"}
        del bad["check"]
        bad["check"] = pool_cache._check(bad)
        raw = pool_cache._dump(bad).encode()
        assert pool_cache.read_cache(raw) is None, damage
        (tmp_path / POOL_CACHE_NAME).write_bytes(raw)
        assert not store.load_all().vouched


# --- saves: all or none, never stopped by the cache -------------------------------------------------------------

def test_a_damaged_file_the_save_does_not_touch_leaves_no_cache_and_the_save_goes_on(tmp_path):
    store = _suite(tmp_path)
    other = tmp_path / "zzz__test_other.json"
    other.write_text("not json")
    rng = random.Random(2)
    [written] = store.save([_entry("bench/test_m0.py::test_0", rng, ["a", "b", "c"], MACHINE)])
    assert written.name == "bench__test_m0.json" and not (tmp_path / POOL_CACHE_NAME).exists()
    with pytest.raises(BaselineError, match="zzz__test_other.json"):
        store.load_all()


def test_save_returns_the_baseline_files_not_the_cache(tmp_path):
    store = _suite(tmp_path)
    written = store.save([_entry("bench/test_m0.py::test_0", random.Random(5), ["a", "b", "c"], MACHINE)])
    assert [p.name for p in written] == ["bench__test_m0.json"]


THREE = ("a/test_a.py::t", "b/test_b.py::t", "c/test_c.py::t")


def _save_run(directory, run_id, nodeids=THREE):
    rng = random.Random(run_id)
    entries = [_entry(nodeid, rng, [f"{run_id}-{i}" for i in range(3)], MACHINE) for nodeid in nodeids]
    return BaselineStore(directory).save(entries, combine=append_run)


def _save_killed_at(directory, step):
    from pytest_energy import files

    pool_cache.MIN_BYTES = 0
    os.environ[files.KILL_AT_STEP_ENV] = str(step)
    files._steps_taken[0] = 0
    _save_run(directory, "r2", THREE + ("d/test_new.py::t",))


def test_a_save_killed_at_any_step_leaves_a_cache_that_describes_the_files_or_none(tmp_path, killed_saves):
    """kill -9 before each filesystem step of a save with a cache: every load then gives the entries and pools
    that parsing every file gives (the cache is in the same all-or-nothing group as the files it describes)."""
    setup = tmp_path / "setup"
    _save_run(setup, "r1")
    assert (setup / POOL_CACHE_NAME).exists()
    vouched = set()
    for step, directory in killed_saves(setup, lambda d: _save_run(d, "r2", THREE + ("d/test_new.py::t",)),
                                        _save_killed_at):
        store = BaselineStore(directory)
        loaded = store.load_all()  # a reader: reads a committed save's new versions, the cache's too
        vouched.add(loaded.vouched)
        fresh = {}
        pending = baselines.pending_group(store.journal, hidden=(POOL_CACHE_NAME,))
        for path in sorted(set(directory.glob("*.json")) | set(pending)):
            if path.name not in baselines.NOT_BASELINES:
                fresh.update(baselines.read_file(path, source=pending.get(path))[1])
        assert loaded == fresh, step
        for probing in (False, True):
            assert _bits(pool_histories(loaded.values(), MACHINE, probing).pools) == \
                _bits(pool_histories(list(fresh.values()), MACHINE, probing).pools), step
        _save_run(directory, "r3")  # the next save rolls the journal forward or discards the temporaries
        assert BaselineStore(directory).load_all().vouched, step
        assert sorted(p.name for p in directory.iterdir() if p.name.startswith(".")) == [POOL_CACHE_NAME], step
    assert vouched == {True}  # before the commit point the old cache, after it the new one: always current


# --- git: two branches' caches ------------------------------------------------------------------------------------

def test_the_merge_driver_keeps_our_cache_and_never_conflicts(tmp_path):
    from pytest_energy.cli.merge_driver import merge_driver

    ours_store = _suite(tmp_path / "ours", seed=1)
    _suite(tmp_path / "theirs", seed=2)
    ours = tmp_path / "ours" / POOL_CACHE_NAME
    kept = ours.read_bytes()
    said: list[str] = []
    status = merge_driver(tmp_path / "theirs" / POOL_CACHE_NAME, ours, tmp_path / "theirs" / POOL_CACHE_NAME,
                          f"baselines/{POOL_CACHE_NAME}", 10, say=said.append)
    assert status == 0 and ours.read_bytes() == kept and "pool cache" in said[0]
    assert ours_store.load_all().vouched


def test_write_pool_cache_makes_a_merged_or_edited_folder_current_again(tmp_path, monkeypatch):
    store = _suite(tmp_path)
    _edit_file(tmp_path)  # as a git merge leaves it
    assert not store.load_all().vouched
    assert store.write_pool_cache() == tmp_path / POOL_CACHE_NAME
    assert store.load_all().vouched
    _same_pools(store)
    monkeypatch.setattr(pool_cache, "MIN_BYTES", 10**9)
    _edit_file(tmp_path)
    assert store.write_pool_cache() is None and store.write_pool_cache(min_bytes=0) is not None
    (tmp_path / "zzz__test_bad.json").write_text("{")
    assert store.write_pool_cache(min_bytes=0) is None
    assert BaselineStore(tmp_path / "missing").write_pool_cache() is None


def test_baseline_load_time_times_both_starts(tmp_path):
    import subprocess
    import sys

    tool = Path(__file__).resolve().parents[2] / "tools" / "baseline_load_time.py"
    for flags, said in (([], "no pool cache"), (["--cache"], "pool cache used")):
        done = subprocess.run([sys.executable, str(tool), "--tests", "150", "--repeat", "1", *flags],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert "150 tests" in done.stdout and said in done.stdout, done.stdout
