"""The committed `baselines/` folder: one stable, diff-friendly JSON file per test module.

File layout (schema_version 1):

    {"schema_version": 1,
     "entries": {nodeid: {"machine": {...}, "commit": {...}, "datetime": iso, "method": str,
                          "metrics": {name: Metric.to_dict()}, "extra_info": {...}}}}

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
from collections.abc import Iterator
from typing import Any

from ..errors import BaselineError
from ..files import write_atomic
from ..records import Metric

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent saves there are not protected
    fcntl = None  # type: ignore[assignment]

__all__ = ["SCHEMA_VERSION", "MATCH_KEYS", "BaselineEntry", "BaselineStore", "baseline_filename",
           "comparable_fingerprint", "lock_path_for", "machine_mismatch"]

SCHEMA_VERSION = 1
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
    """The stored result of one test: its metrics and where and how they were measured."""

    nodeid: str
    machine: dict[str, Any]
    commit: dict[str, Any]
    datetime: str
    method: str
    metrics: dict[str, Metric]
    extra_info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The value stored under the node id (the node id itself is the key, so it is not repeated)."""
        return {
            "machine": dict(self.machine),
            "commit": dict(self.commit),
            "datetime": self.datetime,
            "method": self.method,
            "metrics": {name: m.to_dict() for name, m in self.metrics.items()},
            "extra_info": dict(self.extra_info),
        }

    @classmethod
    def from_dict(cls, nodeid: str, d: dict[str, Any]) -> BaselineEntry:
        return cls(
            nodeid=nodeid,
            machine=dict(d["machine"]),
            commit=dict(d["commit"]),
            datetime=d["datetime"],
            method=d["method"],
            metrics={name: Metric.from_dict(m) for name, m in d["metrics"].items()},
            extra_info=dict(d.get("extra_info", {})),
        )


# --- validation -------------------------------------------------------------------------------------------

def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


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
    if m.get("method") is not None and not isinstance(m.get("method"), str):
        raise ValueError(f"{where}: metric {name!r}: 'method' must be a string or null")


def _check_document(path: Path, doc: Any) -> dict[str, BaselineEntry]:
    """Validate a parsed baseline file strictly; return its entries. Raises ValueError with the problem."""
    if not isinstance(doc, dict):
        raise ValueError(f"top level is {type(doc).__name__}, expected an object")
    version = doc.get("schema_version")
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise ValueError(f"schema_version is {version!r}, this pytest-energy reads {SCHEMA_VERSION}")
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
        for name, m in entry["metrics"].items():
            _check_metric(where, name, m)
        out[nodeid] = BaselineEntry.from_dict(nodeid, entry)
    return out


def _read(path: Path) -> dict[str, BaselineEntry]:
    """Entries of one file ({} if it does not exist); BaselineError naming the file if it is unusable."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise BaselineError(f"baseline file {path}: cannot be read: {exc}") from exc
    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant,
                         object_pairs_hook=_reject_duplicate_keys)
    except UnicodeDecodeError as exc:
        raise BaselineError(f"baseline file {path}: not UTF-8 text ({exc}); {_REPAIR}") from None
    except ValueError as exc:  # json.JSONDecodeError is a ValueError; so is a NaN/Infinity constant
        hint = " (truncated?)" if not raw.rstrip().endswith(b"}") else ""
        raise BaselineError(f"baseline file {path}: not valid JSON{hint}: {exc}; {_REPAIR}") from None
    try:
        return _check_document(path, doc)
    except ValueError as exc:
        raise BaselineError(f"baseline file {path}: {exc}; {_REPAIR}") from None


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A key twice in one object (e.g. a hand-merged file) would silently keep the last value: refuse it."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} appears twice in one object")
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


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

    def save(self, entries: list[BaselineEntry]) -> list[Path]:
        """Merge `entries` into their files (other tests' entries are kept); returns the files written.

        All files concerned are read and validated, and every new document is serialised, before the first
        write: a damaged file or an unserialisable entry raises BaselineError and nothing is written.
        """
        by_path: dict[Path, list[BaselineEntry]] = {}
        for entry in entries:
            by_path.setdefault(self.path_for(entry.nodeid), []).append(entry)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BaselineError(f"cannot create baseline directory {self.directory}: {exc}") from exc
        with self._locked():
            texts: dict[Path, str] = {}
            for path in sorted(by_path):
                merged = {nodeid: e.to_dict() for nodeid, e in _read(path).items()}
                for entry in by_path[path]:
                    _check_savable(entry)
                    merged[entry.nodeid] = entry.to_dict()
                texts[path] = json.dumps({"schema_version": SCHEMA_VERSION, "entries": merged},
                                         sort_keys=True, indent=2, allow_nan=False) + "\n"
            for path, text in texts.items():
                write_atomic(path, text, error=BaselineError, what="baseline file")
        return sorted(texts)

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
