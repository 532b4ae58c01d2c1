"""The committed `baselines/` folder: one stable, diff-friendly JSON file per test module.

File layout (schema_version 2):

    {"schema_version": 2,
     "entries": {nodeid: {"machine": {...}, "commit": {...}, "datetime": iso, "method": str,
                          "metrics": {name: {**Metric.to_dict(),            # samples: the latest saved run
                                             "history": [{"run_id", "mean", "sd", "n"}, ...]}},
                          "runs": {run_id: {"datetime", "commit", "probe_s", "probe_id"}},
                          "extra_info": {...}}}}

Every measured metric keeps the run history the gate judges against (gate/history.py): one summary per
saving run, oldest first, at most `--energy-history` of them. `runs` describes each run once (its probe
seconds are shared by the test's metrics); run ids are per pytest session, shared by every test it saved,
which is what lets the gate estimate the drift common to a run. Deterministic metrics keep no history.

Schema 1 files (no history; written by pytest-energy 0.1) still load: their samples become a history of one
run, with id "v1:<datetime>". The next save writes the file as schema 2.

`benchmarks/test_inference.py::test_x[a]` lives in `benchmarks__test_inference.json`; parametrised ids are
keys inside it. Files are written with sorted keys and 2-space indent so a re-recorded baseline diffs as
the numbers that changed.

Safety rules: baseline files are committed by pull requests, so they are read as untrusted input. A file
that cannot be read back exactly (truncated, not JSON, wrong schema, wrong shape, git conflict markers,
nested too deeply, over MAX_FILE_BYTES, not a regular file) raises BaselineError naming the file and the
problem, and is never modified, not even by `save`. Writes merge under an exclusive lock (pytest-xdist
workers, parallel jobs), loads read under a shared one, and one save's files are replaced all or none
(files.write_group: a journal, rolled forward by the next save, read through by the next load). Two
branches' versions of a file are merged by git's merge driver, cli/merge_driver.py.

Start-up: a save of a large folder also writes its pool cache (`.pool-cache.json`, gate/pool_cache.py) in the
same group: every file's hash and the pooled histories. `load_all` reads and hashes every file; when the cache
names exactly these bytes, each file is parsed when one of its entries is first asked for (StoredEntries) and
the pools come from the cache; otherwise every file is parsed and validated up front, as without a cache.
"""

from __future__ import annotations

import gc
import hashlib
import json
import math
import os
import re
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable, ItemsView, Iterator, Mapping, ValuesView
from typing import Any

from ..errors import BaselineError, BaselineSaveError
from ..files import is_temporary, parse_json, pending_group, read_bytes, read_json, recover_group, write_group
from ..records import Better, Kind, Metric, is_finite_number
from .history import RunSummary

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent saves there are not protected
    fcntl = None  # type: ignore[assignment]

__all__ = ["SCHEMA_VERSION", "READABLE_SCHEMAS", "MATCH_KEYS", "MAX_FILE_BYTES", "MAX_DEPTH", "CONFLICT_HINT",
           "JOURNAL_NAME", "POOL_CACHE_NAME", "BaselineEntry", "BaselineStore",
           "StoredEntries", "baseline_filename", "comparable_fingerprint",
           "checked_document_text", "document_text", "lock_path_for", "machine_mismatch", "append_run", "read_file"]

SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)
# The fingerprint keys that decide whether a baseline is comparable at all. Versions, clocks and
# temperatures change under the same hardware and must never block a comparison. `distributed` is set
# only under torchrun ("2 ranks on 1 node(s)"): a job's summed energy is not one process's.
MATCH_KEYS = ("method", "gpus", "cpu_model", "estimate_watts_per_core", "distributed")
# What a save of a large folder writes beside its baselines so that a start-up need not parse them
# (gate/pool_cache.py): a summary of the files, committed with them.
POOL_CACHE_NAME = ".pool-cache.json"
# Other files kept in the baseline folder: the stored HULK reference (analysis/hulk_store.py), the pool cache.
NOT_BASELINES = ("hulk-reference.json", POOL_CACHE_NAME)

_ENTRY_FIELDS = {"machine": dict, "commit": dict, "datetime": str, "method": str, "metrics": dict,
                 "extra_info": dict}
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
# 255 bytes is the usual file-name limit; leave room for ".json" and for the temporary name of an atomic
# write (".{name}.{pid}.{8 hex}.tmp").
_MAX_STEM = 200
_REPAIR = "fix or delete it, then re-record with --energy-save-baseline"
# git merged two branches' saves as text. The driver merges run histories instead (cli/merge_driver.py).
CONFLICT_HINT = ("install pytest-energy's merge driver for baseline files (`python -m pytest_energy merge-driver "
                 "--install --apply`), then redo this file's merge (`git checkout -m FILE`, then `git add FILE`), "
                 "or take one side (`git checkout --ours FILE`) and re-record with --energy-save-baseline")
# A baseline file is read whole; a larger one is refused unread (a 10,000-test module with 10-run histories
# is about 70 MB).
MAX_FILE_BYTES = 128 * 2**20
# Left by a multi-file save while it commits (files.write_group); not a *.json, so never read as a baseline.
JOURNAL_NAME = ".pytest-energy-save.journal"


def baseline_filename(nodeid: str) -> str:
    """'benchmarks/test_inference.py::test_x[a]' -> 'benchmarks__test_inference.json'.

    Only the module part of the node id counts. Two modules that map to the same name would merely share a
    file: entries are keyed by full node id inside it.
    """
    module = nodeid.split("::", 1)[0].replace("\\", "/")
    if module.endswith(".py"):
        module = module[: -len(".py")]
    stem = _UNSAFE_CHARS.sub("_", "__".join(part for part in module.split("/") if part)).lstrip(".") or "_"
    if len(stem) > _MAX_STEM:
        # File systems refuse names over 255 bytes: keep the readable end (the module's own name) and make
        # the name unique with a hash of the whole path.
        digest = hashlib.sha256(stem.encode()).hexdigest()[:12]
        stem = f"{digest}__{stem[-(_MAX_STEM - len(digest) - 2):]}"
    return stem + ".json"


@dataclass
class BaselineEntry:
    """The stored result of one test: its metrics, their run history, and where and how they were measured.

    `metrics` hold the latest saved run's samples. `history` maps each measured metric to its runs, oldest
    first (RunSummary without probe: probes live in `runs`, see `history_for`); `runs` describes each run
    ({"datetime", "commit", "probe_s", "probe_id"}). A measured metric given without history gets one: its
    samples as a single run (that is how a schema 1 entry reads).
    """

    nodeid: str
    machine: dict[str, Any]
    commit: dict[str, Any]
    datetime: str
    method: str
    metrics: dict[str, Metric]
    extra_info: dict[str, Any] = field(default_factory=dict)
    history: dict[str, list[RunSummary]] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        legacy = f"v1:{self.datetime}"
        for name, metric in self.metrics.items():
            if metric.kind == Kind.MEASURED and name not in self.history and metric.samples:
                self.history[name] = [RunSummary.of(metric.samples, run_id=legacy)]
                self.runs.setdefault(legacy, {"datetime": self.datetime, "commit": self.commit.get("id"),
                                              "probe_s": None, "probe_id": None})

    def history_for(self, name: str, probe_id: str | None = None) -> list[RunSummary]:
        """The runs of metric `name`, oldest first, with each run's probe seconds when it was taken with
        probe `probe_id` (pytest_energy.measure.probe.PROBE_ID); runs probed otherwise count as unprobed."""
        out = []
        for h in self.history.get(name, []):
            run = self.runs.get(h.run_id or "", {})
            probe = run.get("probe_s") if probe_id is not None and run.get("probe_id") == probe_id else None
            out.append(RunSummary(h.mean, h.sd, h.n, h.run_id, probe))
        return out

    def to_dict(self) -> dict[str, Any]:
        """The value stored under the node id (the node id itself is the key, so it is not repeated)."""
        metrics = {}
        for name, m in self.metrics.items():
            metrics[name] = m.to_dict()
            if name in self.history:
                metrics[name]["history"] = [{"run_id": h.run_id, "mean": h.mean, "sd": h.sd, "n": h.n}
                                            for h in self.history[name]]
        used = {h.run_id for runs in self.history.values() for h in runs}
        return {
            "machine": dict(self.machine),
            "commit": dict(self.commit),
            "datetime": self.datetime,
            "method": self.method,
            "metrics": metrics,
            "runs": {rid: dict(run) for rid, run in self.runs.items() if rid in used},
            "extra_info": dict(self.extra_info),
        }

    @classmethod
    def from_dict(cls, nodeid: str, d: dict[str, Any]) -> BaselineEntry:
        history = {name: [RunSummary(float(h["mean"]), float(h["sd"]), int(h["n"]), h["run_id"])
                          for h in m["history"]]
                   for name, m in d["metrics"].items() if m.get("history") is not None}
        return cls(
            nodeid=nodeid,
            machine=dict(d["machine"]),
            commit=dict(d["commit"]),
            datetime=d["datetime"],
            method=d["method"],
            metrics={name: Metric.from_dict(m) for name, m in d["metrics"].items()},
            extra_info=dict(d.get("extra_info", {})),
            history=history,
            runs={rid: dict(run) for rid, run in d.get("runs", {}).items()},
        )


def append_run(old: BaselineEntry | None, new: BaselineEntry, *, keep: int = 10,
               restart: frozenset[str] | set[str] = frozenset(), reset: bool = False) -> BaselineEntry:
    """`new` (this run: a history of one run per measured metric) appended to `old`'s history.

    A metric's history starts afresh with this run when `reset`, when it is in `restart` (its verdict in this
    run was REGRESSION or IMPROVED: an accepted change must not be averaged with the old code), when the old
    entry is from another machine class, or when its unit, direction or kind changed. Each history keeps
    its last `keep` runs. Everything else (metrics' latest samples, machine, commit, extra_info) is `new`'s.
    """
    if old is None or reset or machine_mismatch(old.machine, new.machine):
        return new
    history: dict[str, list[RunSummary]] = {}
    for name, runs in new.history.items():
        before = old.metrics.get(name)
        now = new.metrics[name]
        same_kind = before is not None and (before.unit, before.better, before.kind) == (now.unit, now.better,
                                                                                         now.kind)
        earlier = old.history.get(name, []) if same_kind and name not in restart else []
        history[name] = (list(earlier) + list(runs))[-keep:]
    used = {h.run_id for runs in history.values() for h in runs}
    runs = {rid: run for rid, run in {**old.runs, **new.runs}.items() if rid in used}
    return BaselineEntry(nodeid=new.nodeid, machine=new.machine, commit=new.commit, datetime=new.datetime,
                         method=new.method, metrics=new.metrics, extra_info=new.extra_info, history=history,
                         runs=runs)


# --- validation -------------------------------------------------------------------------------------------
#
# A baseline file is committed by pull requests: untrusted input. Every check below runs on every load, so
# each is written twice over: a fast test of whole columns (C-level type sets, min, max) that only ever
# accepts, and, when it does not, the exact per-value check that decides and names the problem.

_NUMBER_TYPES = frozenset((int, float))


def _all_numbers(values: list[Any]) -> bool:
    """Fast: True only if every value is a finite number (exact int/float types; NaN propagates into fsum)."""
    try:
        return _NUMBER_TYPES.issuperset(map(type, values)) and math.isfinite(math.fsum(values))
    except (OverflowError, ValueError):  # an int beyond float range; inf - inf
        return False


# Larger magnitudes are no physical figure but a damaged value, and sums of them overflow (math.fsum).
_MAX_MAGNITUDE = 1e300
# Rounds per run: more is no measurement but a damaged count (and beyond float range breaks the pooling).
_MAX_ROUNDS = 10**9
# Free-form values (machine, commit, extra_info, runs) nested deeper than this are refused: deeper nesting
# is no fingerprint or note but a crafted file, and writing it back (json's indenting encoder recurses in
# Python) would fail.
MAX_DEPTH = 32


def _check_values(at: str, name: str, values: list[float]) -> None:
    """Values a metric can physically have: bounded, energy >= 0 (net-of-idle aside), durations > 0."""
    duration = name.endswith("duration_s")
    energy = name.endswith("energy_j") and "net_" not in name
    if values:  # the common case, decided on the extremes
        low, high = min(values), max(values)
        if -_MAX_MAGNITUDE <= low and high <= _MAX_MAGNITUDE and (low > 0 if duration else low >= 0 or not energy):
            return
    for x in values:
        if abs(x) > _MAX_MAGNITUDE:
            raise ValueError(f"{at}: {x!r} is beyond any measurable value (|x| > {_MAX_MAGNITUDE:g})")
        if energy and x < 0:
            raise ValueError(f"{at}: a negative energy ({x!r} J) cannot have been measured")
        if duration and x <= 0:
            raise ValueError(f"{at}: a duration of {x!r} s cannot have been measured")


def _check_metric(where: str, name: str, m: Any) -> None:
    if not isinstance(m, dict):
        raise ValueError(f"{where}: metric {name!r} is {type(m).__name__}, expected an object")
    if m.get("name") != name:
        raise ValueError(f"{where}: metric {name!r} has name {m.get('name')!r}")
    if not isinstance(m.get("unit"), str):
        raise ValueError(f"{where}: metric {name!r} has no string 'unit'")
    if m.get("better") not in ("lower", "higher"):
        raise ValueError(f"{where}: metric {name!r}: 'better' is {m.get('better')!r}, expected 'lower' or 'higher'")
    if m.get("kind") not in ("measured", "deterministic"):
        raise ValueError(f"{where}: metric {name!r}: 'kind' is {m.get('kind')!r}, "
                         "expected 'measured' or 'deterministic'")
    samples = m.get("samples")
    if not isinstance(samples, list) or not samples or not (_all_numbers(samples)
                                                            or all(is_finite_number(x) for x in samples)):
        raise ValueError(f"{where}: metric {name!r}: 'samples' must be a non-empty list of finite numbers")
    _check_values(f"{where}: metric {name!r}: samples", name, samples)
    if m.get("method") is not None and not isinstance(m.get("method"), str):
        raise ValueError(f"{where}: metric {name!r}: 'method' must be a string or null")


def _history_columns_ok(name: str, history: list[Any], runs: dict[str, Any]) -> bool:
    """Fast: True only if every run of `history` passes `_check_history_item`."""
    try:
        run_ids = [h["run_id"] for h in history]
        means = [h["mean"] for h in history]
        sds = [h["sd"] for h in history]
        counts = [h["n"] for h in history]
    except (TypeError, KeyError):
        return False
    return (all(type(h) is dict for h in history) and _STR_TYPE.issuperset(map(type, run_ids))
            and runs.keys() >= set(run_ids) and _all_numbers(means) and _all_numbers(sds)
            and min(sds) >= 0 and max(sds) <= _MAX_MAGNITUDE
            and _INT_TYPE.issuperset(map(type, counts)) and min(counts) >= 1 and max(counts) <= _MAX_ROUNDS
            and _values_ok(name, means))


_STR_TYPE = frozenset((str,))
_INT_TYPE = frozenset((int,))


def _values_ok(name: str, values: list[float]) -> bool:
    try:
        _check_values("", name, values)
    except ValueError:
        return False
    return True


def _check_history_item(at: str, name: str, h: Any, runs: dict[str, Any]) -> None:
    if not isinstance(h, dict):
        raise ValueError(f"{at} is {type(h).__name__}, expected an object")
    if not isinstance(h.get("run_id"), str) or h["run_id"] not in runs:
        raise ValueError(f"{at}: 'run_id' {h.get('run_id')!r} is not one of the entry's 'runs'")
    if not is_finite_number(h.get("mean")) or not is_finite_number(h.get("sd")) or h["sd"] < 0:
        raise ValueError(f"{at}: 'mean' and 'sd' must be finite numbers, sd >= 0")
    _check_values(f"{at}: mean", name, [h["mean"]])
    if h["sd"] > _MAX_MAGNITUDE:
        raise ValueError(f"{at}: sd {h['sd']!r} is beyond any measurable value")
    n = h.get("n")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= _MAX_ROUNDS:
        raise ValueError(f"{at}: 'n' must be an integer from 1 to {_MAX_ROUNDS:g}, got {n!r}")


def _check_history(where: str, name: str, m: dict[str, Any], runs: dict[str, Any]) -> None:
    history = m.get("history")
    if history is None:
        return
    if not isinstance(history, list) or not history:
        raise ValueError(f"{where}: metric {name!r}: 'history' must be a non-empty list of runs")
    if _history_columns_ok(name, history, runs):
        return
    for i, h in enumerate(history):
        _check_history_item(f"{where}: metric {name!r}: history[{i}]", name, h, runs)


def _check_run(at: str, run: Any) -> None:
    if not isinstance(run, dict) or not isinstance(run.get("datetime"), str):
        raise ValueError(f"{at} must be an object with a string 'datetime'")
    if run.get("commit") is not None and not isinstance(run["commit"], str):
        raise ValueError(f"{at}: 'commit' must be a string or null")
    probe = run.get("probe_s")
    if probe is not None and not (is_finite_number(probe) and probe > 0):
        raise ValueError(f"{at}: 'probe_s' must be a positive number or null, got {probe!r}")
    if run.get("probe_id") is not None and not isinstance(run["probe_id"], str):
        raise ValueError(f"{at}: 'probe_id' must be a string or null")


def _check_runs(where: str, runs: Any) -> None:
    if not isinstance(runs, dict):
        raise ValueError(f"{where}: 'runs' is missing or not an object")
    for rid, run in runs.items():
        if not (type(run) is dict and type(run.get("datetime")) is str
                and (run.get("commit") is None or type(run["commit"]) is str)
                and (run.get("probe_id") is None or type(run["probe_id"]) is str)
                and (run.get("probe_s") is None or (type(run["probe_s"]) is float and 0 < run["probe_s"] < math.inf))):
            _check_run(f"{where}: run {rid!r}", run)


_CONTAINERS = frozenset((dict, list))


def _too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether `value` nests dicts or lists more than `limit` levels deep (level by level: no recursion; a
    level without containers is recognised in C, which is every level of a usual fingerprint or note)."""
    level, depth = [value], 1
    while level:
        if depth > limit:
            return True
        below: list[Any] = []
        for item in level:
            children = item.values() if type(item) is dict else item
            if not _CONTAINERS.isdisjoint(map(type, children)):
                below.extend(c for c in children if type(c) is dict or type(c) is list)
        level, depth = below, depth + 1
    return False


def _check_entry(where: str, entry: Any, version: int) -> None:
    """Validate one entry of a parsed baseline file strictly. Raises ValueError with the problem."""
    if not isinstance(entry, dict):
        raise ValueError(f"{where} is {type(entry).__name__}, expected an object")
    for key, typ in _ENTRY_FIELDS.items():
        if not isinstance(entry.get(key), typ):
            raise ValueError(f"{where}: '{key}' is missing or not a {typ.__name__}")
    runs = entry.get("runs", {}) if version == 1 else entry.get("runs")
    _check_runs(where, runs)
    for name, m in entry["metrics"].items():
        _check_metric(where, name, m)
        _check_history(where, name, m, runs)  # schema 1 had none: one there must be valid too
    free_form = ("machine", "commit", "extra_info", "runs")
    if _too_deep([entry.get(key, {}) for key in free_form], MAX_DEPTH + 1):  # all at once: the usual case
        for key in free_form:
            if _too_deep(entry.get(key, {})):
                raise ValueError(f"{where}: '{key}' is nested more than {MAX_DEPTH} levels deep")


def _check_document(name: str | None, doc: Any) -> dict[str, BaselineEntry]:
    """Validate a parsed baseline file strictly; return its entries. Raises ValueError with the problem.
    `name`: the file's name, which every entry's node id must map to (None: not checked)."""
    if not isinstance(doc, dict):
        raise ValueError(f"top level is {type(doc).__name__}, expected an object")
    version = doc.get("schema_version")
    if version not in READABLE_SCHEMAS or isinstance(version, bool):
        readable = " and ".join(str(v) for v in READABLE_SCHEMAS)
        raise ValueError(f"schema_version is {version!r}, this pytest-energy reads {readable}")
    entries = doc.get("entries")
    if not isinstance(entries, dict):
        raise ValueError("'entries' is missing or not an object")
    out = {}
    file_of_module: dict[str, str] = {}  # every test of a module maps to the same file: compute it once
    for nodeid, entry in entries.items():
        where = f"entry {nodeid!r}"
        if name is not None:
            module = nodeid.split("::", 1)[0]
            expected = file_of_module.get(module)
            if expected is None:
                expected = file_of_module[module] = baseline_filename(nodeid)
            if expected != name:
                raise ValueError(f"{where} belongs in {expected}, not in this file")
        _check_entry(where, entry, version)
        out[nodeid] = _from_parsed(nodeid, entry)
    return out


def read_file(path: str | os.PathLike[str], *, name: str | None = "",
              source: Path | None = None) -> tuple[int, dict[str, BaselineEntry]]:
    """(schema_version, entries) of the baseline file `path`, read and validated as on load. Every entry must
    belong in a file called `name` (default: the path's own name; None: not checked, e.g. git's temporary
    copies in the merge driver). `source`: read that file instead (the committed new version of `path` an
    interrupted save has not renamed yet). A missing file raises FileNotFoundError, anything unusable
    BaselineError naming the file."""
    path = Path(path)
    doc = read_json(path, what="baseline file", repair=_REPAIR, error=BaselineError, max_bytes=MAX_FILE_BYTES,
                    conflict_hint=CONFLICT_HINT, source=source)
    entries = _checked(path, path.name if name == "" else name, doc)
    return doc["schema_version"], entries


def _checked(path: Path, name: str | None, doc: Any) -> dict[str, BaselineEntry]:
    try:
        return _check_document(name, doc)
    except ValueError as exc:
        raise BaselineError(f"baseline file {path}: {exc}; {_REPAIR}") from None


def _read_raw(path: Path, source: Path | None = None) -> bytes:
    """The bytes of a baseline file, with every check that needs no parsing (regular file, size cap)."""
    return read_bytes(path, what="baseline file", repair=_REPAIR, error=BaselineError, max_bytes=MAX_FILE_BYTES,
                      source=source)


def _parse_raw(path: Path, raw: bytes) -> dict[str, BaselineEntry]:
    """The entries of baseline file `path` from its bytes `raw` (_read_raw), validated as read_file does."""
    doc = parse_json(raw, path, what="baseline file", repair=_REPAIR, error=BaselineError,
                     conflict_hint=CONFLICT_HINT)
    return _checked(path, path.name, doc)


_BETTER = {b.value: b for b in Better}
_KIND = {k.value: k for k in Kind}


def _from_parsed(nodeid: str, d: dict[str, Any]) -> BaselineEntry:
    """BaselineEntry.from_dict for an entry `_check_entry` has just validated, of a document only this load
    holds: it takes the parsed values as they are, without copies or conversions a valid entry does not
    need (a start-up builds tens of thousands of these; tests check that both give equal entries)."""
    metrics, history = {}, {}
    for name, m in d["metrics"].items():
        metrics[name] = Metric(name, m["unit"], _BETTER[m["better"]], _KIND[m["kind"]], list(map(float, m["samples"])),
                               m.get("method"))
        runs = m.get("history")
        if runs is not None:
            history[name] = [RunSummary(float(h["mean"]), float(h["sd"]), h["n"], h["run_id"]) for h in runs]
    return BaselineEntry(nodeid, d["machine"], d["commit"], d["datetime"], d["method"], metrics,
                         d.get("extra_info", {}), history, d.get("runs", {}))


def _read(path: Path, source: Path | None = None) -> dict[str, BaselineEntry]:
    """Entries of one file ({} if it does not exist); BaselineError naming the file if it is unusable."""
    try:
        return read_file(path, source=source)[1]
    except FileNotFoundError:
        return {}


# --- what load_all returns ------------------------------------------------------------------------------

class StoredEntries(Mapping[str, BaselineEntry]):
    """The entries of a baseline folder by node id (BaselineStore.load_all), read-only.

    Built from every baseline file's bytes, read under the lock. When the folder's pool cache vouches for
    every file (gate/pool_cache.py) a file is parsed when one of its entries is first asked for, and `values()`
    carries the cached pools (judge.pool_histories takes them). Otherwise every file is parsed here, and a
    damaged one raises BaselineError naming it. Iteration is in file order, then each file's order.
    """

    def __init__(self, raws: dict[Path, bytes], cache_raw: bytes | None = None) -> None:
        self._paths = {path.name: path for path in raws}
        self._raws: dict[str, bytes] = {path.name: raw for path, raw in raws.items()}
        self._parsed: dict[str, dict[str, BaselineEntry]] = {}
        self._cache = None
        if cache_raw is not None:
            from .pool_cache import read_cache

            cache = read_cache(cache_raw)
            if cache is not None and cache.matches(self._raws):
                self._cache = cache
                return
        for _ in self.by_file():
            pass

    def _file(self, name: str) -> dict[str, BaselineEntry]:
        parsed = self._parsed.get(name)
        if parsed is None:
            # A file's entries are thousands of objects, none of them in a reference cycle: the cyclic garbage
            # collector would scan them (and every entry before them) again and again, a third of a load's time.
            collecting = gc.isenabled()
            gc.disable()
            try:
                parsed = self._parsed[name] = _parse_raw(self._paths[name], self._raws[name])
            finally:
                if collecting:
                    gc.enable()
            del self._raws[name]  # the entries stand for it now
        return parsed

    def __getitem__(self, nodeid: str) -> BaselineEntry:
        # _check_document keeps every entry in the file its node id names, so that file is the only place
        name = baseline_filename(nodeid) if isinstance(nodeid, str) else None
        if name not in self._paths:
            raise KeyError(nodeid)
        return self._file(name)[nodeid]

    def __contains__(self, nodeid: object) -> bool:
        try:
            self[nodeid]  # type: ignore[index]
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        for name in self._paths:
            yield from self._file(name)

    def __len__(self) -> int:
        cache = self._cache
        return sum(len(self._parsed[name]) if name in self._parsed else cache.count(name)  # type: ignore[union-attr]
                   for name in self._paths)

    def values(self) -> StoredValues:
        return StoredValues(self)

    def items(self) -> ItemsView[str, BaselineEntry]:
        return _StoredItems(self)

    def by_file(self) -> Iterator[dict[str, BaselineEntry]]:
        for name in self._paths:
            yield self._file(name)

    def cached_pools(self, machine: dict[str, Any], probing: bool) -> dict[str, Any] | None:
        """judge.pool_histories(self.values(), machine, probing).pools from the pool cache; None without one."""
        return self._cache.pools(machine, probing) if self._cache is not None else None

    @property
    def vouched(self) -> bool:
        """Whether the pool cache vouched for every file (then they are parsed when first asked for)."""
        return self._cache is not None

    def __repr__(self) -> str:
        return f"<StoredEntries: {len(self)} entries in {len(self._paths)} file(s)>"


class StoredValues(ValuesView):
    """StoredEntries.values(): what judge.pool_histories recognises, to take the cached pools."""

    _mapping: StoredEntries

    def __iter__(self) -> Iterator[BaselineEntry]:
        for entries in self._mapping.by_file():
            yield from entries.values()

    def cached_pools(self, machine: dict[str, Any], probing: bool) -> dict[str, Any] | None:
        return self._mapping.cached_pools(machine, probing)


class _StoredItems(ItemsView):
    _mapping: StoredEntries

    def __iter__(self) -> Iterator[tuple[str, BaselineEntry]]:
        for entries in self._mapping.by_file():
            yield from entries.items()


# --- the store --------------------------------------------------------------------------------------------

class BaselineStore:
    """Baselines under `directory` (created on the first save)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def path_for(self, nodeid: str) -> Path:
        return self.directory / baseline_filename(nodeid)

    @property
    def journal(self) -> Path:
        """Where a multi-file save records its renames while it commits (files.write_group)."""
        return self.directory / JOURNAL_NAME

    def load(self, nodeid: str) -> BaselineEntry | None:
        """The stored entry of `nodeid`, or None. The whole file is validated: a damaged file raises."""
        path = self.path_for(nodeid)
        with self._locked(shared=True):
            return _read(path, pending_group(self.journal, error=BaselineError).get(path)).get(nodeid)

    def load_all(self) -> Mapping[str, BaselineEntry]:
        """Every entry of every *.json file in the directory, by node id ({} if there is no directory): a
        read-only Mapping (StoredEntries) in file order, then each file's order, as a dict of them would be.

        Read under a shared lock, so a save in progress is seen whole or not at all; a save that was killed
        after its commit point is seen finished (its journal's new versions are read, nothing is written).
        Every file is validated before this returns, so a damaged one raises BaselineError naming it: parsed
        here, or, when the folder's pool cache vouches for every file's bytes (gate/pool_cache.py), parsed
        when one of its entries is first asked for, from the bytes read here.
        """
        if not self.directory.is_dir():
            return {}
        raws: dict[Path, bytes] = {}
        cache_raw = None
        with self._locked(shared=True):
            pending = pending_group(self.journal, error=BaselineError, hidden=(POOL_CACHE_NAME,))
            for path in sorted(set(self.directory.glob("*.json")) | set(pending)):
                if path.name not in NOT_BASELINES:
                    try:
                        raws[path] = _read_raw(path, pending.get(path))
                    except FileNotFoundError:
                        continue
            cache_path = self.directory / POOL_CACHE_NAME
            try:  # a cache that cannot be read is no cache: never an error
                cache_raw = _read_raw(cache_path, pending.get(cache_path))
            except (OSError, BaselineError):
                pass
        return StoredEntries(raws, cache_raw)

    def save(self, entries: list[BaselineEntry],
             combine: Callable[[BaselineEntry | None, BaselineEntry], BaselineEntry] | None = None) -> list[Path]:
        """Merge `entries` into their files (other tests' entries are kept); returns the files written.

        `combine(stored, new)` decides what is stored for a test whose file already has an entry (e.g.
        `append_run`); it runs under the lock, on the entry as it is on disk then, so concurrent saves add
        their runs instead of losing one. Without it `new` replaces the stored entry.
        Every file concerned is read and validated before the first write: a damaged one raises BaselineError
        and nothing is written. An entry that cannot be stored (a NaN sample, ...) is left out and the others
        are saved. The files are written all or none (files.write_group), also if the process is killed: a
        run is in every file it touched or in none. Entries left out, or files that could not be written
        (then none was), raise BaselineSaveError at the end, naming each test and problem, with the files
        that were written.
        """
        by_path: dict[Path, list[BaselineEntry]] = {}
        for entry in entries:
            by_path.setdefault(self.path_for(entry.nodeid), []).append(entry)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BaselineError(f"cannot create baseline directory {self.directory}: {exc}") from exc
        problems: list[str] = []
        written: list[Path] = []
        with self._locked():
            # finish a killed save first: it was committed
            recover_group(self.journal, error=BaselineError, hidden=(POOL_CACHE_NAME,))
            _remove_stale_temporaries(self.directory)
            stored_by_path = {path: _read(path) for path in sorted(by_path)}  # a damaged file stops all here
            texts: dict[Path, str] = {}
            for path, stored in stored_by_path.items():
                merged = {nodeid: e.to_dict() for nodeid, e in stored.items()}
                changed = False
                for entry in by_path[path]:
                    try:
                        if combine is not None:
                            entry = combine(stored.get(entry.nodeid), entry)
                        _check_savable(entry)
                    except BaselineError as exc:
                        problems.append(str(exc))
                        continue
                    merged[entry.nodeid] = entry.to_dict()
                    changed = True
                if changed:
                    texts[path] = document_text(merged)
            cache = self._pool_cache_text(texts) if texts else None
            try:
                group = dict(texts)
                if cache is not None:
                    group[self.directory / POOL_CACHE_NAME] = cache
                written = write_group(group, self.journal, error=BaselineError, what="baseline file")
                written = [path for path in written if path.name != POOL_CACHE_NAME]
            except BaselineError as exc:
                problems.append(str(exc))
            else:
                if texts and cache is None:  # the files changed and no cache describes them: it would mislead
                    try:
                        (self.directory / POOL_CACHE_NAME).unlink()
                    except OSError:
                        pass  # a stale cache is ignored anyway (its hashes no longer match)
        if problems:
            raise BaselineSaveError("not every baseline was saved: " + "; ".join(problems), written)
        return written

    def write_pool_cache(self, *, min_bytes: int | None = None) -> Path | None:
        """Write the folder's pool cache (gate/pool_cache.py) for its files as they are, without saving anything:
        after a git merge or a hand edit, so that runs need not parse every file until the next save. Returns
        the cache's path, or None when none is written: a folder under `min_bytes` of baselines (default
        pool_cache.MIN_BYTES) or holding a file that is not a valid baseline (a load names it)."""
        from ..files import write_atomic

        if not self.directory.is_dir():
            return None
        with self._locked():
            recover_group(self.journal, error=BaselineError, hidden=(POOL_CACHE_NAME,))
            text = self._pool_cache_text({}, min_bytes)
            if text is None:
                return None
            return write_atomic(self.directory / POOL_CACHE_NAME, text, error=BaselineError, what="pool cache")

    def _pool_cache_text(self, texts: dict[Path, str], min_bytes: int | None = None) -> str | None:
        """The pool cache (gate/pool_cache.py) of the folder as it will be once `texts` are written; None for a
        folder of less than `min_bytes` (default pool_cache.MIN_BYTES), or one holding a file that is not a
        valid baseline (the save goes on: a file it does not touch never stops it; the next load names it)."""
        from . import pool_cache

        raws: dict[Path, bytes] = {path: text.encode("utf-8") for path, text in texts.items()}
        for path in self.directory.glob("*.json"):
            if path not in raws and path.name not in NOT_BASELINES:
                try:
                    raws[path] = _read_raw(path)
                except (FileNotFoundError, BaselineError):
                    return None
        if sum(map(len, raws.values())) < (pool_cache.MIN_BYTES if min_bytes is None else min_bytes):
            return None
        entries: list[BaselineEntry] = []
        counts: dict[str, int] = {}
        collecting = gc.isenabled()
        gc.disable()  # see load_all
        try:
            for path in sorted(raws):
                try:
                    parsed = _parse_raw(path, raws[path])  # what a load will build: the pools are exact
                except BaselineError:
                    return None
                entries.extend(parsed.values())
                counts[path.name] = len(parsed)
            return pool_cache.cache_text({path.name: raw for path, raw in raws.items()}, entries, counts)
        finally:
            if collecting:
                gc.enable()

    @contextmanager
    def _locked(self, shared: bool = False) -> Iterator[None]:
        """Exclusive lock (saves), or shared lock (loads), on one lock file for the whole directory, so a
        multi-file save is one unit for every reader and writer.

        The lock file lives in the temporary folder (lock_path_for), not in the baseline folder, so nothing
        but baselines lands in the user's repository. It is left in place on purpose: deleting it would let a
        waiter lock a file that a newcomer no longer sees. A reader that cannot open it reads unlocked.
        """
        if fcntl is None:
            yield
            return
        lock_path = lock_path_for(self.directory)
        try:
            # Read-only is enough for flock, so another user's lock file can be shared; O_NOFOLLOW: a planted
            # symlink in the shared temporary folder is refused rather than followed.
            fd = os.open(lock_path, os.O_RDONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
        except OSError as exc:
            if shared:
                yield
                return
            raise BaselineError(f"cannot open lock file {lock_path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock


def document_text(entries: dict[str, dict[str, Any]]) -> str:
    """A baseline file's text: sorted keys, 2-space indent, so a re-recorded baseline diffs as the numbers."""
    return json.dumps({"schema_version": SCHEMA_VERSION, "entries": entries}, sort_keys=True, indent=2,
                      allow_nan=False) + "\n"


def checked_document_text(entries: dict[str, BaselineEntry], name: str | None) -> str:
    """The text of a baseline file holding `entries`, checked to load back as they are (the merge driver's
    result); BaselineError says what would not. `name`: the file they must belong in (None: not checked)."""
    for entry in entries.values():
        _check_savable(entry)
    text = document_text({nodeid: e.to_dict() for nodeid, e in entries.items()})
    try:
        _check_document(name, json.loads(text))
    except ValueError as exc:
        raise BaselineError(str(exc)) from None
    return text


def _remove_stale_temporaries(directory: Path) -> None:
    """Remove temporary files of atomic writes whose process died before finishing (killed, not Ctrl-C:
    an interrupted write removes its own). Called under the lock, after recover_group, so no live save of
    ours and no committed save is affected."""
    for path in directory.glob(".*.tmp"):
        pid = is_temporary(path.name)
        if pid is None or pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
            continue  # that process is alive: maybe another save in progress elsewhere
        except ProcessLookupError:
            pass
        except OSError:
            continue  # alive but not ours (EPERM)
        try:
            path.unlink()
        except OSError:
            pass


def lock_path_for(directory: str | os.PathLike[str]) -> Path:
    """The lock file of a baseline folder: in the temporary folder, named after the folder's absolute path,
    so every process on this machine that saves into the same folder takes the same lock."""
    key = hashlib.sha256(os.path.abspath(directory).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"pytest-energy-baselines-{key}.lock"


def _check_savable(entry: BaselineEntry) -> None:
    """Refuse to store what could not be read back: NaN/inf samples, empty metrics, odd fields."""
    where = f"cannot save baseline of {entry.nodeid!r}"
    for name, metric in entry.metrics.items():
        try:
            _check_metric(where, name, metric.to_dict())
        except ValueError as exc:
            raise BaselineError(str(exc)) from None
    for key in ("machine", "commit", "extra_info"):
        try:
            json.dumps(getattr(entry, key), allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            raise BaselineError(f"{where}: '{key}' is not JSON-serialisable: {exc}") from None
        if _too_deep(getattr(entry, key)):
            raise BaselineError(f"{where}: '{key}' is nested more than {MAX_DEPTH} levels deep")
    try:
        doc = entry.to_dict()
        _check_runs(where, doc["runs"])
        for name, m in doc["metrics"].items():
            _check_history(where, name, m, doc["runs"])
    except ValueError as exc:
        raise BaselineError(str(exc)) from None


# --- machine matching ------------------------------------------------------------------------------------

def _normalise(key: str, value: Any) -> Any:
    """Comparable form of one fingerprint value: empty means unknown, GPU lists compare as multisets."""
    if value in (None, "", [], ()):
        return None
    if key == "gpus" and isinstance(value, (list, tuple)):
        return sorted(str(v) for v in value)
    return value


def comparable_fingerprint(machine: dict[str, Any]) -> dict[str, Any]:
    """The part of a fingerprint that decides comparability (MATCH_KEYS, normalised): equal for two
    machines exactly when `machine_mismatch` finds no difference. Names a machine class."""
    return {key: _normalise(key, machine.get(key)) for key in MATCH_KEYS}


def machine_mismatch(baseline_machine: dict[str, Any], current_machine: dict[str, Any]) -> list[str]:
    """Human lines for every MATCH_KEYS difference, e.g. "gpus: ['A100'] (baseline) != ['H100'] (now)".

    Empty when the baseline is comparable. Keys outside MATCH_KEYS (versions, clocks, temperatures, driver)
    never count; a missing key, None and an empty list all mean "none/unknown" and are equal.
    """
    lines = []
    for key in MATCH_KEYS:
        old, new = baseline_machine.get(key), current_machine.get(key)
        if _normalise(key, old) != _normalise(key, new):
            lines.append(f"{key}: {old!r} (baseline) != {new!r} (now)")
    return lines


# --- one run of one test as an entry: the session and `merge` save alike -------------------------------------

def run_entry(nodeid: str, metrics: dict[str, Metric], *, machine: dict[str, Any], commit: dict[str, Any],
              datetime_iso: str, run_id: str, extra_info: dict[str, Any] | None = None,
              probe_s: float | None = None, probe_id: str | None = None) -> BaselineEntry:
    """One run of one test as a baseline entry whose history is this run alone (what `append_run` appends).

    `run_id` is shared by every test one run saves (the history rule estimates a run's common drift from it);
    `probe_s` is the run's calibration probe (None: unprobed, e.g. a merged shard report, which carries none).
    """
    history = {name: [RunSummary.of(m.samples, run_id=run_id)] for name, m in metrics.items()
               if m.kind == Kind.MEASURED and m.samples}
    run = {"datetime": datetime_iso, "commit": commit.get("id"), "probe_s": probe_s,
           "probe_id": probe_id if probe_s is not None else None}
    return BaselineEntry(nodeid=nodeid, machine=machine, commit=commit, datetime=datetime_iso,
                         method=str(machine.get("method")), metrics=metrics, extra_info=dict(extra_info or {}),
                         history=history, runs={run_id: run})


def restarted_metrics(verdicts: list[Any]) -> frozenset[str]:
    """The metrics whose history a save of this run starts afresh: those the *history* rule called REGRESSION
    or IMPROVED (the change is accepted by saving, so it must not be averaged with the old code).

    Only the history rule's verdicts count: while a history holds fewer than 3 runs the within-run rule
    decides, and on a drifting runner it calls unchanged code REGRESSION or IMPROVED (docs/statistics.md);
    restarting then would keep the history from ever reaching 3 runs. `verdicts`: records.Verdict.
    """
    from ..records import VerdictKind

    return frozenset(v.metric for v in verdicts
                     if v.verdict in (VerdictKind.REGRESSION, VerdictKind.IMPROVED) and v.by_history)
