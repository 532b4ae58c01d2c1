"""The baselines' pool cache, `baselines/.pool-cache.json`: what a start-up would learn by parsing every baseline
file and pooling every history, stored by the save that wrote them.

A `pytest --energy` run needs, before its first test, (a) to know that no baseline file is damaged and (b) the
pooled noise of its machine class (judge.pool_histories over every stored history); each test then needs (c)
its own entry. For a 10,000-benchmark suite (about 70 MB of JSON) parsing alone takes longer than the 0.5 s
issue 17 allows. So every save of a large folder (at least MIN_BYTES of baselines) writes, in the same
all-or-nothing group as the baseline files (files.write_group):

    {"schema_version": 2, "entries": {},                 # a baseline file without entries to older versions
     "pool_cache": {"format": 1, "code": <key of the code and interpreter that computed it>,
                    "files": [[name, bytes, sha256, entries], ...],     # every baseline file, sorted
                    "pools": [{"machine": comparable_fingerprint, "probing": bool,
                               "families": [[family, [[probe_normalised, Pooled fields], ...]], ...]}, ...],
                    "check": sha256 of the canonical text of the above}}

`pools` holds pool_histories' result for every machine class in the folder, with and without the probe. A load
reads every baseline file's bytes and hashes them (sha256: about 1 GB/s); when the cache's file list, sizes
and hashes equal the folder's, each file was validated when this code wrote it, so none is parsed up front
(BaselineStore.load_all returns entries parsed per file, when first asked for), and the pools are taken from
the cache. Anything else -- no cache, a damaged, edited or git-merged cache, a file added, removed or changed
by hand or by git, another pytest-energy, Python or platform (`code`) -- and the cache is ignored: every file
is parsed and validated, and the pools computed, as without a cache. A cache is never an error.

The cache is committed with the baselines: a fresh clone has no other key (file times differ in every clone).
Trust: a cache can only vouch for the very bytes it names, so editing a baseline file disables it; one forged
to vouch for a damaged file delays that file's error (naming it) to the first test of its module.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import platform
import sys
from collections.abc import Iterable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from .baselines import POOL_CACHE_NAME, SCHEMA_VERSION, BaselineEntry, comparable_fingerprint, machine_mismatch
from .history import Pooled

__all__ = ["POOL_CACHE_NAME", "MIN_BYTES", "FORMAT", "PoolCache", "cache_text", "code_key", "file_digest",
           "read_cache"]

# Below this many bytes of baselines (about 600 benchmarks with 10-run histories, 0.15 s of parsing and
# pooling) a cache saves less than it costs to keep a derived file in the repository: none is written.
MIN_BYTES = 4 * 2**20
FORMAT = 1
# The modules whose code decides what a load accepts and what the pool is: a cache computed by other code
# vouches for nothing.
_CODE = ("gate/__init__.py", "gate/baselines.py", "gate/history.py", "gate/judge.py", "gate/stats.py",
         "gate/pool_cache.py", "records.py", "files.py", "measure/probe.py")
_POOLED_FIELDS = tuple(f.name for f in fields(Pooled))
_NUMBER = (int, float)
_NOT_FINITE = ("nan", "inf", "-inf")


@functools.lru_cache(maxsize=1)
def code_key() -> str | None:
    """sha256 of this cache format, the source of the modules in _CODE, the interpreter and the platform (math
    functions may round differently elsewhere); None when a module's source cannot be read (no cache then)."""
    digest = hashlib.sha256(f"{FORMAT}\0{sys.version}\0{sys.platform}\0{platform.machine()}\0".encode())
    try:
        digest.update(os.confstr("CS_GNU_LIBC_VERSION").encode())  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        pass
    package = Path(__file__).resolve().parents[1]
    for name in _CODE:
        try:
            digest.update(name.encode() + b"\0" + (package / name).read_bytes())
        except OSError:
            return None
    return digest.hexdigest()


def file_digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


# --- writing ----------------------------------------------------------------------------------------------

def _number(x: Any) -> Any:
    # NaN and infinity are legitimate pool values (no prior: s0_sq NaN; one run: common_df inf), and standard
    # JSON (which every pytest-energy reads) has no word for them.
    return x if type(x) is not float or math.isfinite(x) else repr(x)


def _pooled_dict(p: Pooled) -> dict[str, Any]:
    return {name: dict(getattr(p, name)) if name in ("run_effects", "run_counts") else _number(getattr(p, name))
            for name in _POOLED_FIELDS}


def cache_text(files: Mapping[str, bytes], entries: Iterable[BaselineEntry], counts: Mapping[str, int]) -> str | None:
    """The cache of a folder whose baseline files are `files` (name -> bytes, as on disk) holding `entries` (in
    load order: files sorted by name, each file's entries in its order; `counts`: entries per file). None when
    no cache can be written (no code key).

    The text is also a valid baseline file without entries, so that a pytest-energy from before the cache,
    which reads every *.json of the folder, reads it as one (and its merge driver merges it as one: the cache
    is then dropped, so ignored, until the next save)."""
    from .judge import pool_histories

    key = code_key()
    if key is None:
        return None
    entries = list(entries)
    classes: dict[str, dict[str, Any]] = {}
    for entry in entries:
        cls = comparable_fingerprint(entry.machine)
        classes.setdefault(json.dumps(cls, sort_keys=True), cls)
    pools = []
    for cls in classes.values():
        for probing in (False, True):
            context = pool_histories(entries, cls, probing)
            pools.append({"machine": cls, "probing": probing,
                          "families": [[family, [[normalise, _pooled_dict(p)] for normalise, p in by_flag.items()]]
                                       for family, by_flag in context.pools.items()]})
    body = {"format": FORMAT, "code": key,
            "files": [[name, len(raw), file_digest(raw), counts[name]] for name, raw in sorted(files.items())],
            "pools": pools}
    try:
        return _dump({**body, "check": _check(body)})
    except ValueError:  # a value standard JSON cannot hold: no cache rather than one other versions refuse
        return None


def _dump(cache: dict[str, Any]) -> str:
    # One line per file keeps a git diff readable.
    return json.dumps({"schema_version": SCHEMA_VERSION, "entries": {}, "pool_cache": cache}, sort_keys=True,
                      indent=1, allow_nan=False) + "\n"


def _check(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, allow_nan=False).encode()).hexdigest()


# --- reading ----------------------------------------------------------------------------------------------

class PoolCache:
    """A cache read back and checked (read_cache): its files and, per machine class and probing, the pools."""

    def __init__(self, files: dict[str, tuple[int, str, int]],
                 pools: list[tuple[dict[str, Any], bool, dict[str, dict[bool, Pooled]]]]) -> None:
        self.files = files
        self._pools = pools

    def matches(self, raws: Mapping[str, bytes]) -> bool:
        """Whether the folder's baseline files (name -> bytes) are exactly those the cache was computed from."""
        if raws.keys() != self.files.keys():
            return False
        if any(len(raw) != self.files[name][0] for name, raw in raws.items()):  # cheap before hashing
            return False
        return all(file_digest(raw) == self.files[name][1] for name, raw in raws.items())

    def count(self, name: str) -> int:
        return self.files[name][2]

    def pools(self, machine: dict[str, Any], probing: bool) -> dict[str, dict[bool, Pooled]]:
        """pool_histories(every entry, machine, probing).pools. Every machine class of the folder is in the
        cache, so a machine that matches none of them matches no entry: its pools are empty."""
        for cls, cached_probing, pools in self._pools:
            if cached_probing == probing and not machine_mismatch(cls, machine):
                return pools
        return {}


def read_cache(raw: bytes | None) -> PoolCache | None:
    """The cache in `raw`, or None if it is not a cache of this code (absent, damaged, edited, merged, stale)."""
    if raw is None:
        return None
    try:
        outer = json.loads(raw.decode("utf-8"), parse_constant=_refuse)
        if type(outer) is not dict or outer.keys() != {"schema_version", "entries", "pool_cache"}:
            return None
        doc = outer["pool_cache"]
        if type(doc) is not dict or doc.keys() != {"format", "code", "files", "pools", "check"}:
            return None
        body = {k: v for k, v in doc.items() if k != "check"}
        if doc["format"] != FORMAT or doc["code"] != code_key() or doc["check"] != _check(body):
            return None
        return PoolCache(_files(doc["files"]), [_class_pools(item) for item in doc["pools"]])
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError, _Refused):
        return None


class _Refused(Exception):
    pass


def _refuse(_: str) -> Any:
    raise _Refused


def _require(ok: bool) -> None:
    if not ok:
        raise _Refused


def _files(items: Any) -> dict[str, tuple[int, str, int]]:
    _require(type(items) is list)
    out = {}
    for item in items:
        _require(type(item) is list and len(item) == 4)
        name, size, digest, count = item
        _require(type(name) is str and type(size) is int and type(digest) is str and type(count) is int
                 and name not in out)
        out[name] = (size, digest, count)
    return out


def _class_pools(item: Any) -> tuple[dict[str, Any], bool, dict[str, dict[bool, Pooled]]]:
    _require(type(item) is dict and item.keys() == {"machine", "probing", "families"})
    machine, probing, families = item["machine"], item["probing"], item["families"]
    _require(type(machine) is dict and type(probing) is bool and type(families) is list)
    pools: dict[str, dict[bool, Pooled]] = {}
    for family in families:
        _require(type(family) is list and len(family) == 2 and type(family[0]) is str and type(family[1]) is list)
        by_flag: dict[bool, Pooled] = {}
        for pair in family[1]:
            _require(type(pair) is list and len(pair) == 2 and type(pair[0]) is bool)
            by_flag[pair[0]] = _pooled(pair[1])
        pools[family[0]] = by_flag
    return machine, probing, pools


def _pooled(d: Any) -> Pooled:
    """A Pooled from its cached fields, each of the type `pool` gives it (ints stay ints: bit for bit)."""
    _require(type(d) is dict and d.keys() == set(_POOLED_FIELDS))
    d = dict(d)
    for name in ("s0_sq", "d0", "common_sq", "common_df"):
        value = d[name]
        if type(value) is str:
            _require(value in _NOT_FINITE)
            d[name] = float(value)
        else:
            _require(type(value) in _NUMBER)
    for name in ("n_series", "n_runs", "n_screened"):
        _require(type(d[name]) is int)
    _require(type(d["probe_normalised"]) is bool)
    effects, counts = d["run_effects"], d["run_counts"]
    _require(type(effects) is dict and type(counts) is dict and effects.keys() == counts.keys())
    _require(all(type(v) is float and math.isfinite(v) for v in effects.values()))
    _require(all(type(v) is int and v > 0 for v in counts.values()))
    return Pooled(**d)
