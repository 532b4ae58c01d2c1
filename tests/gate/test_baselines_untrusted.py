"""Baseline files are committed by pull requests: the loader takes anything. Every file is either a clean
BaselineError naming it (exit 4 in a pytest run) or a valid store, and the bytes on disk are never touched."""

from __future__ import annotations

import copy
import json
import math
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_energy.errors import BaselineError, EnergyError
from pytest_energy.gate import baselines
from pytest_energy.gate.baselines import BaselineEntry, BaselineStore
from pytest_energy.gate.history import RunSummary
from pytest_energy.records import is_finite_number
from pytest_energy.records import Metric

NODE = "benchmarks/test_inference.py::test_x[a]"
FILE = "benchmarks__test_inference.json"
MACHINE = {"method": "estimate", "gpus": [], "cpu_model": "Xeon", "estimate_watts_per_core": 10.0}


def _entry(nodeid: str = NODE) -> BaselineEntry:
    runs = {f"r{i}": {"datetime": f"2026-12-01T0{i}:00:00+00:00", "commit": "abc", "probe_s": 0.03,
                      "probe_id": "v1"} for i in range(3)}
    return BaselineEntry(
        nodeid=nodeid, machine=dict(MACHINE), commit={"id": "abc", "dirty": False},
        datetime="2026-12-01T02:00:00+00:00", method="estimate",
        metrics={"energy_j": Metric("energy_j", "J", "lower", "measured", [10.0, 11.0], "estimate"),
                 "duration_s": Metric("duration_s", "s", "lower", "measured", [1.0, 1.5]),
                 "steps": Metric("steps", "steps", "lower", "deterministic", [40.0])},
        history={"energy_j": [RunSummary(10.0 + i, 0.5, 2, f"r{i}") for i in range(3)],
                 "duration_s": [RunSummary(1.0 + i, 0.1, 2, f"r{i}") for i in range(3)]},
        runs=runs, extra_info={"batch": 8, "notes": {"a": [1, 2]}})


VALID = {"schema_version": 2, "entries": {NODE: _entry().to_dict()}}


def _outcome(directory: Path, path: Path) -> dict[str, BaselineEntry] | None:
    """Load `directory`; assert the result is a clean error naming `path` or a valid store (one that saves
    and reads back the same), and that the file was not touched. Returns the entries, or None on an error."""
    before = path.read_bytes() if path.is_file() else None
    store = BaselineStore(directory)
    try:
        entries = store.load_all()
    except EnergyError as exc:
        assert isinstance(exc, BaselineError)
        assert str(path) in str(exc)
        entries = None
    else:  # the fast builder agrees with from_dict; what a save would write loads back the same
        parsed = json.loads(path.read_bytes())["entries"]
        assert entries == {k: BaselineEntry.from_dict(k, e) for k, e in parsed.items()}
        for entry in entries.values():
            baselines._check_savable(entry)
        text = baselines.document_text({k: e.to_dict() for k, e in entries.items()})
        again = baselines._check_document(path.name, json.loads(text))
        assert {k: e.to_dict() for k, e in again.items()} == {k: e.to_dict() for k, e in entries.items()}
    if before is not None:
        assert path.read_bytes() == before
    return entries


def _write(directory: Path, content: bytes | str, name: str = FILE) -> Path:
    path = directory / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


# --- shapes and sizes -------------------------------------------------------------------------------------

@pytest.mark.parametrize("opening, closing", [("[", "]"), ('{"a":', "}")])
def test_json_nested_100000_levels_is_an_error_naming_the_file(tmp_path, opening, closing):
    """Was INTERNALERROR with a RecursionError traceback."""
    path = _write(tmp_path, opening * 100_000 + "1" + closing * 100_000)
    with pytest.raises(BaselineError, match=rf"{FILE}: nested too deeply"):
        BaselineStore(tmp_path).load_all()
    assert _outcome(tmp_path, path) is None


def test_free_form_values_nested_deeper_than_the_limit_are_refused_on_load_and_save(tmp_path):
    deep: object = "bottom"
    for _ in range(baselines.MAX_DEPTH + 1):
        deep = {"x": deep}
    doc = copy.deepcopy(VALID)
    doc["entries"][NODE]["extra_info"]["deep"] = deep
    path = _write(tmp_path, json.dumps(doc))
    with pytest.raises(BaselineError, match=rf"{FILE}: .*'extra_info' is nested more than"):
        BaselineStore(tmp_path).load_all()
    entry = _entry()
    entry.extra_info["deep"] = deep
    with pytest.raises(BaselineError, match="nested more than"):
        BaselineStore(tmp_path / "new").save([entry])
    assert not (tmp_path / "new" / FILE).exists() and path.read_text() == json.dumps(doc)


def test_a_file_over_the_size_cap_is_refused_unread(tmp_path, monkeypatch):
    path = tmp_path / FILE
    with open(path, "wb") as f:  # sparse: 2 GB on paper, nothing on disk
        f.truncate(2 * 2**30)
    read = []
    monkeypatch.setattr(os, "read", lambda *a: read.append(a) or b"")
    with pytest.raises(BaselineError, match=rf"{FILE}: 2,147,483,648 bytes, more than the 134,217,728 .*not read"):
        BaselineStore(tmp_path).load_all()
    assert read == [] and path.stat().st_size == 2 * 2**30


def test_the_size_cap_counts_bytes_read_too(tmp_path, monkeypatch):
    path = _write(tmp_path, json.dumps(VALID))
    monkeypatch.setattr(baselines, "MAX_FILE_BYTES", len(path.read_bytes()) - 1)
    with pytest.raises(BaselineError, match="more than the"):
        BaselineStore(tmp_path).load_all()
    monkeypatch.setattr(baselines, "MAX_FILE_BYTES", len(path.read_bytes()))
    assert set(BaselineStore(tmp_path).load_all()) == {NODE}


def test_a_fifo_or_a_device_under_a_baseline_name_is_refused_without_hanging(tmp_path):
    os.mkfifo(tmp_path / FILE)
    with pytest.raises(BaselineError, match=rf"{FILE}: not a regular file"):
        BaselineStore(tmp_path).load_all()
    os.unlink(tmp_path / FILE)
    (tmp_path / FILE).symlink_to("/dev/zero")  # a committed symlink: endless bytes
    with pytest.raises(BaselineError, match=rf"{FILE}: not a regular file"):
        BaselineStore(tmp_path).load_all()


def test_a_folder_under_a_baseline_name_is_an_error(tmp_path):
    (tmp_path / FILE).mkdir()
    with pytest.raises(BaselineError, match=rf"{FILE}: not a regular file"):
        BaselineStore(tmp_path).load_all()


def test_many_entries_load(tmp_path):
    module = "benchmarks/test_inference.py"
    entries = {f"{module}::test_x[{i}]": _entry(f"{module}::test_x[{i}]").to_dict() for i in range(2000)}
    _write(tmp_path, json.dumps({"schema_version": 2, "entries": entries}))
    assert len(BaselineStore(tmp_path).load_all()) == 2000


@pytest.mark.parametrize("value", [10**400, -(10**400)])
def test_integers_beyond_any_measurement_are_errors_not_overflow(tmp_path, value):
    """math.isfinite(10**400) raises OverflowError: it escaped as an INTERNALERROR."""
    for change in (lambda e: e["metrics"]["energy_j"].update(samples=[value]),
                   lambda e: e["metrics"]["energy_j"]["history"][0].update(mean=value),
                   lambda e: e["metrics"]["energy_j"]["history"][0].update(n=value),
                   lambda e: e["runs"]["r0"].update(probe_s=value)):
        doc = copy.deepcopy(VALID)
        change(doc["entries"][NODE])
        path = _write(tmp_path, json.dumps(doc))
        with pytest.raises(BaselineError, match=FILE):
            BaselineStore(tmp_path).load_all()
        assert _outcome(tmp_path, path) is None


def test_a_round_count_beyond_a_billion_is_damage(tmp_path):
    doc = copy.deepcopy(VALID)
    doc["entries"][NODE]["metrics"]["energy_j"]["history"][0]["n"] = 2**63
    _write(tmp_path, json.dumps(doc))
    with pytest.raises(BaselineError, match=rf"{FILE}: .*'n' must be an integer from 1 to 1e\+09, got {2**63}"):
        BaselineStore(tmp_path).load_all()


# --- git conflict markers -----------------------------------------------------------------------------------

def test_conflict_markers_name_the_file_and_the_merge_driver(tmp_path):
    text = json.dumps(VALID, indent=2, sort_keys=True)
    ours, theirs = text.replace("11.0", "12.0"), text.replace("11.0", "13.0")
    lines = ["<<<<<<< HEAD", *ours.splitlines()[:5], "=======", *theirs.splitlines()[:5], ">>>>>>> other",
             *text.splitlines()[5:]]
    path = _write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(BaselineError) as exc:
        BaselineStore(tmp_path).load_all()
    message = str(exc.value)
    assert str(path) in message and "git conflict markers" in message
    assert "python -m pytest_energy merge-driver --install" in message
    assert _outcome(tmp_path, path) is None


# --- wrong types at every level -------------------------------------------------------------------------------

WRONG = [None, True, -1, 1.5, "x", [], {"a": 1}, 10**400]


def _paths(value, prefix=()):
    yield prefix
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        yield from _paths(child, (*prefix, key))


def _replaced(doc, path, new):
    doc = copy.deepcopy(doc)
    if not path:
        return new
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return doc


def test_every_value_replaced_by_every_wrong_type_is_an_error_or_a_valid_store(tmp_path):
    """Each of the ~80 places in a baseline file, each of 8 wrong values: an error naming the file or a
    store that saves and reads back the same, never another exception."""
    accepted = refused = 0
    for path in _paths(VALID):
        for wrong in WRONG:
            file = _write(tmp_path, json.dumps(_replaced(VALID, path, wrong)))
            if _outcome(tmp_path, file) is None:
                refused += 1
            else:
                accepted += 1
    assert refused > 300 and accepted > 30  # both branches really ran


# --- properties ---------------------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(JSON)
def test_arbitrary_json_is_an_error_naming_the_file_or_a_valid_store(value):
    with tempfile.TemporaryDirectory() as tmp:
        _outcome(Path(tmp), _write(Path(tmp), json.dumps(value)))


@PROPERTY
@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_an_error_naming_the_file_or_a_valid_store(raw):
    with tempfile.TemporaryDirectory() as tmp:
        _outcome(Path(tmp), _write(Path(tmp), raw))


@st.composite
def damaged_documents(draw):
    """A valid file with one to three values replaced by arbitrary JSON: reaches every check of the loader."""
    doc = VALID
    for _ in range(draw(st.integers(1, 3))):
        places = list(_paths(doc))
        doc = _replaced(doc, draw(st.sampled_from(places)), draw(JSON))
    return doc


@PROPERTY
@given(damaged_documents())
def test_damaged_valid_files_are_an_error_naming_the_file_or_a_valid_store(doc):
    with tempfile.TemporaryDirectory() as tmp:
        _outcome(Path(tmp), _write(Path(tmp), json.dumps(doc)))


@PROPERTY
@given(st.binary(max_size=40), st.integers(0, 400))
def test_bytes_spliced_into_a_valid_file(junk, at):
    text = json.dumps(VALID, indent=2).encode()
    with tempfile.TemporaryDirectory() as tmp:
        _outcome(Path(tmp), _write(Path(tmp), text[:at] + junk + text[at:]))


# --- the fast column checks only ever accept what the exact checks accept ------------------------------------

NUMBERS = st.one_of(st.integers(-(10**310), 10**310), st.floats(), st.booleans(), st.none(), st.text(max_size=2),
                    st.sampled_from([0, 0.0, -0.0, 1e300, -1e300, 1e301, math.inf, 5e-324]))
ITEMS = st.fixed_dictionaries({"run_id": st.sampled_from(["r0", "r1", "zz", 3]), "mean": NUMBERS, "sd": NUMBERS,
                               "n": st.one_of(st.integers(-2, 10**10), st.booleans(), st.floats())})
NAMES = st.sampled_from(["energy_j", "net_energy_j", "duration_s", "accuracy", "inference.duration_s"])


@settings(max_examples=400, deadline=None)
@given(NAMES, st.lists(st.one_of(ITEMS, NUMBERS), min_size=1, max_size=4))
def test_history_column_check_agrees_with_the_per_run_check(name, history):
    runs = {"r0": {}, "r1": {}}
    exact_ok = True
    for h in history:
        try:
            baselines._check_history_item("at", name, h, runs)
        except ValueError:
            exact_ok = False
    if baselines._history_columns_ok(name, history, runs):
        assert exact_ok


@settings(max_examples=400, deadline=None)
@given(NAMES, st.lists(NUMBERS, min_size=1, max_size=5))
def test_sample_checks_agree_with_the_per_value_rule(name, values):
    if baselines._all_numbers(values):
        assert all(is_finite_number(x) for x in values)
    if not all(is_finite_number(x) for x in values):
        return
    duration = name.endswith("duration_s")
    energy = name.endswith("energy_j") and "net_" not in name
    expected = all(abs(x) <= 1e300 and not (energy and x < 0) and not (duration and x <= 0) for x in values)
    try:
        baselines._check_values("at", name, values)
    except ValueError:
        assert not expected
    else:
        assert expected
