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

Safety rules: a file that cannot be read back exactly (truncated, not JSON, wrong schema, wrong shape)
raises BaselineError naming the file and the problem, and is never modified, not even by `save`. Writes
merge under an exclusive lock (pytest-xdist workers, parallel jobs) and replace the file atomically.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import BaselineError, BaselineSaveError
from ..files import read_json, write_atomic
from ..records import Kind, Metric
from .history import RunSummary

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent saves there are not protected
    fcntl = None  # type: ignore[assignment]

__all__ = ["SCHEMA_VERSION", "READABLE_SCHEMAS", "MATCH_KEYS", "BaselineEntry", "BaselineStore", "baseline_filename",
           "comparable_fingerprint", "lock_path_for", "machine_mismatch", "append_run"]

SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)
# The fingerprint keys that decide whether a baseline is comparable at all. Versions, clocks and
# temperatures change under the same hardware and must never block a comparison. `distributed` is set
# only under torchrun ("2 ranks on 1 node(s)"): a job's summed energy is not one process's.
MATCH_KEYS = ("method", "gpus", "cpu_model", "estimate_watts_per_core", "distributed")
# Other files kept in the baseline folder: the stored HULK reference (analysis/hulk_store.py).
NOT_BASELINES = ("hulk-reference.json",)

_ENTRY_FIELDS = {"machine": dict, "commit": dict, "datetime": str, "method": str, "metrics": dict,
                 "extra_info": dict}
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
# 255 bytes is the usual file-name limit; leave room for ".json" and for the temporary name of an atomic
# write (".{name}.{pid}.{8 hex}.tmp").
_MAX_STEM = 200
_REPAIR = "fix or delete it, then re-record with --energy-save-baseline"


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
                   for name, m in d["metrics"].items() if "history" in m}
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

def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


# Larger magnitudes are no physical figure but a damaged value, and sums of them overflow (math.fsum).
_MAX_MAGNITUDE = 1e300


def _check_values(at: str, name: str, values: list[float]) -> None:
    """Values a metric can physically have: bounded, energy >= 0 (net-of-idle aside), durations > 0."""
    for x in values:
        if abs(x) > _MAX_MAGNITUDE:
            raise ValueError(f"{at}: {x!r} is beyond any measurable value (|x| > {_MAX_MAGNITUDE:g})")
        if name.endswith("energy_j") and "net_" not in name and x < 0:
            raise ValueError(f"{at}: a negative energy ({x!r} J) cannot have been measured")
        if name.endswith("duration_s") and x <= 0:
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
    if not isinstance(samples, list) or not samples or not all(_is_number(x) for x in samples):
        raise ValueError(f"{where}: metric {name!r}: 'samples' must be a non-empty list of finite numbers")
    _check_values(f"{where}: metric {name!r}: samples", name, samples)
    if m.get("method") is not None and not isinstance(m.get("method"), str):
        raise ValueError(f"{where}: metric {name!r}: 'method' must be a string or null")


def _check_history(where: str, name: str, m: dict[str, Any], runs: dict[str, Any]) -> None:
    history = m.get("history")
    if history is None:
        return
    if not isinstance(history, list) or not history:
        raise ValueError(f"{where}: metric {name!r}: 'history' must be a non-empty list of runs")
    for i, h in enumerate(history):
        at = f"{where}: metric {name!r}: history[{i}]"
        if not isinstance(h, dict):
            raise ValueError(f"{at} is {type(h).__name__}, expected an object")
        if not isinstance(h.get("run_id"), str) or h["run_id"] not in runs:
            raise ValueError(f"{at}: 'run_id' {h.get('run_id')!r} is not one of the entry's 'runs'")
        if not _is_number(h.get("mean")) or not _is_number(h.get("sd")) or h["sd"] < 0:
            raise ValueError(f"{at}: 'mean' and 'sd' must be finite numbers, sd >= 0")
        _check_values(f"{at}: mean", name, [h["mean"]])
        if h["sd"] > _MAX_MAGNITUDE:
            raise ValueError(f"{at}: sd {h['sd']!r} is beyond any measurable value")
        n = h.get("n")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"{at}: 'n' must be an integer >= 1, got {n!r}")


def _check_runs(where: str, runs: Any) -> None:
    if not isinstance(runs, dict):
        raise ValueError(f"{where}: 'runs' is missing or not an object")
    for rid, run in runs.items():
        at = f"{where}: run {rid!r}"
        if not isinstance(run, dict) or not isinstance(run.get("datetime"), str):
            raise ValueError(f"{at} must be an object with a string 'datetime'")
        if run.get("commit") is not None and not isinstance(run["commit"], str):
            raise ValueError(f"{at}: 'commit' must be a string or null")
        probe = run.get("probe_s")
        if probe is not None and not (_is_number(probe) and probe > 0):
            raise ValueError(f"{at}: 'probe_s' must be a positive number or null, got {probe!r}")
        if run.get("probe_id") is not None and not isinstance(run["probe_id"], str):
            raise ValueError(f"{at}: 'probe_id' must be a string or null")


def _check_document(path: Path, doc: Any) -> dict[str, BaselineEntry]:
    """Validate a parsed baseline file strictly; return its entries. Raises ValueError with the problem."""
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
    for nodeid, entry in entries.items():
        where = f"entry {nodeid!r}"
        if baseline_filename(nodeid) != path.name:
            raise ValueError(f"{where} belongs in {baseline_filename(nodeid)}, not in this file")
        if not isinstance(entry, dict):
            raise ValueError(f"{where} is {type(entry).__name__}, expected an object")
        for key, typ in _ENTRY_FIELDS.items():
            if not isinstance(entry.get(key), typ):
                raise ValueError(f"{where}: '{key}' is missing or not a {typ.__name__}")
        runs = entry.get("runs", {}) if version == 1 else entry.get("runs")
        _check_runs(where, runs)
        for name, m in entry["metrics"].items():
            _check_metric(where, name, m)
            if version > 1:
                _check_history(where, name, m, runs)
        out[nodeid] = BaselineEntry.from_dict(nodeid, entry)
    return out


def _read(path: Path) -> dict[str, BaselineEntry]:
    """Entries of one file ({} if it does not exist); BaselineError naming the file if it is unusable."""
    try:
        doc = read_json(path, what="baseline file", repair=_REPAIR, error=BaselineError)
    except FileNotFoundError:
        return {}
    try:
        return _check_document(path, doc)
    except ValueError as exc:
        raise BaselineError(f"baseline file {path}: {exc}; {_REPAIR}") from None


# --- the store --------------------------------------------------------------------------------------------

class BaselineStore:
    """Baselines under `directory` (created on the first save)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def path_for(self, nodeid: str) -> Path:
        return self.directory / baseline_filename(nodeid)

    def load(self, nodeid: str) -> BaselineEntry | None:
        """The stored entry of `nodeid`, or None. The whole file is validated: a damaged file raises."""
        return _read(self.path_for(nodeid)).get(nodeid)

    def load_all(self) -> dict[str, BaselineEntry]:
        """Every entry of every *.json file in the directory, by node id ({} if there is no directory)."""
        if not self.directory.is_dir():
            return {}
        entries: dict[str, BaselineEntry] = {}
        for path in sorted(self.directory.glob("*.json")):
            if path.name not in NOT_BASELINES:
                entries.update(_read(path))
        return entries

    def save(self, entries: list[BaselineEntry],
             combine: Callable[[BaselineEntry | None, BaselineEntry], BaselineEntry] | None = None) -> list[Path]:
        """Merge `entries` into their files (other tests' entries are kept); returns the files written.

        `combine(stored, new)` decides what is stored for a test whose file already has an entry (e.g.
        `append_run`); it runs under the lock, on the entry as it is on disk then, so concurrent saves add
        their runs instead of losing one. Without it `new` replaces the stored entry.
        Every file concerned is read and validated before the first write: a damaged one raises BaselineError
        and nothing is written. An entry that cannot be stored (a NaN sample, ...) is left out and the others
        are saved; each file is written on its own. Entries left out or files that could not be written
        raise BaselineSaveError at the end, naming each test and problem, with the files that were written.
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
            _remove_stale_temporaries(self.directory)
            stored_by_path = {path: _read(path) for path in sorted(by_path)}  # a damaged file stops all here
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
                if not changed:
                    continue
                text = json.dumps({"schema_version": SCHEMA_VERSION, "entries": merged},
                                  sort_keys=True, indent=2, allow_nan=False) + "\n"
                try:
                    write_atomic(path, text, error=BaselineError, what="baseline file")
                except BaselineError as exc:
                    problems.append(str(exc))
                    continue
                written.append(path)
        if problems:
            raise BaselineSaveError("not every baseline was saved: " + "; ".join(problems), written)
        return written

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Exclusive lock on one lock file for the whole directory, so a multi-file save is one unit.

        The lock file lives in the temporary folder (lock_path_for), not in the baseline folder, so nothing
        but baselines lands in the user's repository. It is left in place on purpose: deleting it would let a
        waiter lock a file that a newcomer no longer sees.
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
            raise BaselineError(f"cannot open lock file {lock_path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock


_TEMPORARY = re.compile(r"\A\..+\.(\d+)\.[0-9a-f]{8}\.tmp\Z")  # files.write_atomic's temporary names


def _remove_stale_temporaries(directory: Path) -> None:
    """Remove temporary files of atomic writes whose process died before finishing (killed, not Ctrl-C:
    an interrupted write removes its own). Called under the lock, so no live save of ours is affected."""
    for path in directory.glob(".*.tmp"):
        match = _TEMPORARY.match(path.name)
        if match is None:
            continue
        pid = int(match.group(1))
        if pid == os.getpid():
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
        except (TypeError, ValueError) as exc:
            raise BaselineError(f"{where}: '{key}' is not JSON-serialisable: {exc}") from None
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
    restarting then would keep the history from ever reaching 3 runs. `verdicts`: gate.compare.Verdict.
    """
    from ..records import VerdictKind
    from .compare import Rule

    return frozenset(v.metric for v in verdicts
                     if v.verdict in (VerdictKind.REGRESSION, VerdictKind.IMPROVED) and Rule.is_history(v.rule))
