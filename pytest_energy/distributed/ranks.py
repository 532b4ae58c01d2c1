"""pytest under torchrun: every rank meters its own devices, rank 0 combines, gates, reports and saves.

No pytest here. The parts:

* `RankInfo`: who this process is, from the variables torchrun (or srun/mpirun with env://) sets.
* `RankExchange`: rank 0 gathers JSON payloads from every rank through a c10d *store*, never through a
  process group, so it works whether or not the code under test creates one (gloo or NCCL), and never
  adds a collective inside a measured window. Under torchrun (TORCHELASTIC_USE_AGENT_STORE=True) it is one
  more client of the TCPStore the elastic agent hosts at MASTER_ADDR:MASTER_PORT for the whole job, the
  store `init_process_group("env://")` itself connects to. Without an agent store, rank 0 serves that
  TCPStore exactly as `init_process_group("env://")` would (multi-tenant, so a later user init on rank 0
  shares it) and the other ranks connect. Our keys live under a prefix of our own (run id and restart
  count). Only rank 0 waits during the run: the others post and go on, so nothing can deadlock against
  the user's collectives.
* Device claims: each physical device is metered by exactly one rank, the lowest that uses it: a GPU by
  its UUID, the CPU package (RAPL, node-wide) once per host, the CPU-time estimate by every rank for its
  own process. Device ids are qualified (`host/gpu1`, `host/cpu-package-0`, `rank1/cpu-estimate`), so
  nothing is counted twice and equal local names on different nodes never collide.
* `combine_windows` / `combine_records`: energy summed over ranks and devices, duration the longest rank's
  (each rank's own clock; clocks of different nodes are never subtracted), per-rank parts kept.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import DistributedError, MeterUnavailable, UsageError
from ..meters.base import DeviceInfo, Meter, Reading
from ..records import Metric, TestRecord, Window, combine_methods, is_estimate

__all__ = ["DEFAULT_TIMEOUT_S", "ClaimedMeter", "RankContext", "RankExchange", "RankInfo", "claim_devices",
           "combine_records", "combine_windows", "combined_fingerprint", "describe_devices"]

DEFAULT_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class RankInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    host: str = field(default_factory=socket.gethostname)
    run_id: str = "none"
    restart: int = 0
    master_addr: str | None = None
    master_port: int | None = None
    agent_store: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RankInfo:
        env = os.environ if env is None else env

        def integer(name: str, default: int) -> int:
            raw = env.get(name)
            if raw in (None, ""):
                return default
            try:
                return int(raw)
            except ValueError:
                raise UsageError(f"{name}={raw!r} is not an integer") from None

        world = integer("WORLD_SIZE", 1)
        rank = integer("RANK", 0)
        if not 0 <= rank < max(world, 1):
            raise UsageError(f"RANK={rank} is outside WORLD_SIZE={world}")
        return cls(rank=rank, world_size=world, local_rank=integer("LOCAL_RANK", 0),
                   local_world_size=integer("LOCAL_WORLD_SIZE", world), host=socket.gethostname(),
                   run_id=env.get("TORCHELASTIC_RUN_ID", "none"), restart=integer("TORCHELASTIC_RESTART_COUNT", 0),
                   master_addr=env.get("MASTER_ADDR"),
                   master_port=integer("MASTER_PORT", 0) or None,
                   agent_store=env.get("TORCHELASTIC_USE_AGENT_STORE") == "True")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "world_size": self.world_size, "local_rank": self.local_rank,
                "local_world_size": self.local_world_size, "host": self.host}


# --- the exchange ---------------------------------------------------------------------------------------

class RankExchange:
    """Gather JSON-serialisable dicts on rank 0 through a c10d store, under a prefix of our own."""

    def __init__(self, info: RankInfo, store: Any = None, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.info = info
        self.timeout_s = timeout_s
        # A restarted elastic job (restart count + 1) never reads the previous attempt's keys.
        self.prefix = f"pytest_energy/{info.run_id}/{info.restart}/"
        self._store = store  # a ready store (tests); otherwise connected on first use
        self._serving = False
        self.mode = "given store" if store is not None else "not connected"

    @property
    def store(self) -> Any:
        if self._store is None:
            self._store = self._connect()
        return self._store

    def _connect(self) -> Any:
        info = self.info
        if info.master_addr is None or info.master_port is None:
            raise DistributedError(
                f"WORLD_SIZE={info.world_size} but MASTER_ADDR/MASTER_PORT are not set, so the ranks cannot "
                "exchange results; launch with torchrun, or set them as for init_process_group('env://')")
        try:
            import torch.distributed as dist  # only in a distributed run: a plain pytest run never imports torch
        except ImportError as exc:
            raise DistributedError(f"WORLD_SIZE={info.world_size}: the ranks exchange results through "
                                   f"torch.distributed, which cannot be imported ({exc})") from None

        timeout = datetime.timedelta(seconds=self.timeout_s)
        try:
            if info.agent_store:
                base = dist.TCPStore(info.master_addr, info.master_port, is_master=False, timeout=timeout)
                self.mode = "torchrun agent store"
            else:
                base = dist.TCPStore(info.master_addr, info.master_port, world_size=None,
                                     is_master=info.rank == 0, timeout=timeout, wait_for_workers=False,
                                     multi_tenant=True)
                self._serving = info.rank == 0
                self.mode = "TCPStore served by rank 0"
        except Exception as exc:  # DistNetworkError, RuntimeError, ...
            raise DistributedError(f"rank {info.rank} cannot reach the c10d store at "
                                   f"{info.master_addr}:{info.master_port}: {exc}") from exc
        return dist.PrefixStore(self.prefix, base)

    @staticmethod
    def _slot(key: str) -> str:
        return hashlib.sha1(key.encode()).hexdigest()[:20]  # node ids are long and may contain anything

    def _key(self, key: str, rank: int) -> str:
        return f"g/{self._slot(key)}/{rank}"

    def _wait(self, key: str, keys: list[str]) -> None:
        try:
            self.store.wait(keys, datetime.timedelta(seconds=self.timeout_s))
        except Exception as exc:  # DistStoreError on timeout
            missing = [r for r, k in enumerate(keys) if not self.store.check([k])]
            if not missing:
                raise DistributedError(f"waiting for {key!r}: {exc}") from exc
            arrived = sorted(set(range(self.info.world_size)) - set(missing))
            raise DistributedError(
                f"rank(s) {', '.join(map(str, missing))} of {self.info.world_size} sent nothing for {key!r} "
                f"within {self.timeout_s:g} s (arrived: {', '.join(map(str, arrived)) or 'none'}). A rank "
                "crashed or hung, or the ranks run different tests (-k, -m and the test order must be the "
                "same on every rank); --energy-dist-timeout-s sets the wait") from exc

    def gather(self, key: str, payload: dict[str, Any]) -> list[dict[str, Any]] | None:
        """Every rank calls it once per key: rank 0 gets every payload in rank order, the others None at once."""
        data = json.dumps(payload, allow_nan=False)  # fails on the rank that built a NaN, not on rank 0
        if not self.info.distributed:
            return [json.loads(data)]
        store = self.store
        store.set(self._key(key, self.info.rank), data)
        if self.info.rank != 0:
            return None
        keys = [self._key(key, r) for r in range(self.info.world_size)]
        self._wait(key, keys)
        out = [json.loads(store.get(k)) for k in keys]
        for k in keys:
            store.delete_key(k)  # the agent store lives as long as the job: it must not grow per test
        return out

    def all_gather(self, key: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
        """Every rank gets every payload; every rank waits (used once, at start-up)."""
        data = json.dumps(payload, allow_nan=False)
        if not self.info.distributed:
            return [json.loads(data)]
        store = self.store
        store.set(self._key(key, self.info.rank), data)
        keys = [self._key(key, r) for r in range(self.info.world_size)]
        self._wait(key, keys)
        return [json.loads(store.get(k)) for k in keys]

    def release(self, key: str = "release") -> None:
        """End of the session: rank 0 calls it once its reports are written; the others wait here until then.

        torchrun stops every rank as soon as one exits non-zero, so a rank whose tests failed must not
        exit before rank 0 has written the report and the baselines.
        """
        if not self.info.distributed:
            return
        store = self.store
        done, acks = f"{self._slot(key)}/done", f"{self._slot(key)}/acks"
        if self.info.rank == 0:
            store.set(done, "1")
            if self._serving:  # the other ranks read `done` from our server: stay up until they have
                deadline = time.monotonic() + min(30.0, self.timeout_s)
                while store.add(acks, 0) < self.info.world_size - 1 and time.monotonic() < deadline:
                    time.sleep(0.01)
            return
        try:
            store.wait([done], datetime.timedelta(seconds=self.timeout_s))
            store.add(acks, 1)
        except Exception:  # rank 0 died or gave up: nothing is left to protect
            pass


# --- which rank meters which device ---------------------------------------------------------------------

def device_scope(method: str) -> str:
    """'gpu' (one physical GPU), 'node' (a node-wide counter: RAPL) or 'process' (the CPU-time estimate)."""
    if is_estimate(method):
        return "process"
    return "gpu" if str(method).startswith("nvml") else "node"


def describe_devices(info: RankInfo, meter: Meter) -> list[dict[str, Any]]:
    """What this rank could meter: local id, qualified key, physical id (what claims compare), name, method."""
    uuids = {g.device: g.uuid for g in getattr(meter, "gpus", ())}  # NvmlMeter's GPUs
    limits = meter.fingerprint().get("gpu_power_limit_w") or []
    out = []
    for i, d in enumerate(meter.devices()):
        scope = device_scope(d.method)
        if scope == "process":
            key = physical = f"rank{info.rank}/{d.device}"
        elif scope == "gpu":
            key, physical = f"{info.host}/{d.device}", uuids.get(d.device) or f"{info.host}/{d.device}"
        else:
            key = physical = f"{info.host}/{d.device}"
        out.append({"local": d.device, "key": key, "physical": physical, "name": d.name, "method": str(d.method),
                    "power_limit_w": limits[i] if scope == "gpu" and i < len(limits) else None})
    return out


def claim_devices(candidates: Sequence[Mapping[str, Any]]) -> tuple[dict[int, list[str]], list[str]]:
    """Which rank meters each physical device: the lowest rank that could.

    `candidates`: one entry per rank, {"rank": r, "devices": [{"key", "physical"}, ...]}. Returns
    (rank -> keys it meters, notes on devices a rank uses but another rank meters).
    """
    owner: dict[str, int] = {}
    for entry in sorted(candidates, key=lambda c: c["rank"]):
        for d in entry["devices"]:
            owner.setdefault(d["physical"], entry["rank"])
    plan: dict[int, list[str]] = {c["rank"]: [] for c in candidates}
    notes = []
    for entry in candidates:
        for d in entry["devices"]:
            first = owner[d["physical"]]
            if first == entry["rank"]:
                plan[entry["rank"]].append(d["key"])
            else:
                notes.append(f"rank {entry['rank']} also uses {d['key']} ({d['physical']}); rank {first} meters it, "
                             "so it is counted once")
    return plan, notes


class ClaimedMeter(Meter):
    """The devices of `inner` this rank meters; the others are metered by another rank."""

    def __init__(self, inner: Meter, keep: Sequence[str]) -> None:
        self.inner = inner
        self.keep = set(keep)
        self.name = inner.name
        self.min_window_s = inner.min_window_s
        self.fallback_reasons = inner.fallback_reasons

    def devices(self) -> list[DeviceInfo]:
        return [d for d in self.inner.devices() if d.device in self.keep]

    def read(self) -> Reading:
        reading = self.inner.read()
        return Reading(reading.t_s, {k: v for k, v in reading.energy_j.items() if k in self.keep})

    def delta_j(self, start: Reading, end: Reading) -> dict[str, float]:
        return self.inner.delta_j(start, end)

    def fingerprint(self) -> dict[str, object]:
        return self.inner.fingerprint()

    def volatile_state(self) -> dict[str, Any] | None:
        state = getattr(self.inner, "volatile_state", None)
        return {k: v for k, v in state().items() if k in self.keep} if state is not None else None

    def close(self) -> None:
        self.inner.close()


def combined_fingerprint(claims: Sequence[Mapping[str, Any]], plan: Mapping[int, Sequence[str]]) -> dict[str, Any]:
    """The machine class of the whole job: every metered device of every rank, and the topology.

    Rank 0's fingerprint (CPU model, versions, the estimate's W/core) with the GPU list and method
    rebuilt from the devices the ranks meter, and `distributed` ("2 ranks on 1 node(s)"): a baseline of
    a 2-rank job is never compared with a single-process run, or with 4 ranks.
    """
    by_rank = sorted(claims, key=lambda c: c["rank"])
    metered = [d for c in by_rank for d in c["devices"] if d["key"] in plan.get(c["rank"], ())]
    gpus = [d for d in metered if device_scope(d["method"]) == "gpu"]
    fp = dict(by_rank[0]["fingerprint"])
    fp.update({
        "method": combine_methods(d["method"] for d in metered),
        "gpus": [d["name"] for d in gpus],
        "gpu_uuids": [d["physical"] for d in gpus],
        "gpu_power_limit_w": [d.get("power_limit_w") for d in gpus],
        "distributed": f"{len(by_rank)} ranks on {len({c['host'] for c in by_rank})} node(s)",
    })
    if "rapl_domains" in fp:
        fp["rapl_domains"] = [d["key"] for d in metered if device_scope(d["method"]) == "node"]
    return fp


# --- combining --------------------------------------------------------------------------------------------

def _methods(values: Sequence[str | None]) -> str:
    return combine_methods(m for v in values if v for m in str(v).split("+") if m != "none")


def combine_windows(per_rank: Sequence[tuple[int, str, Sequence[Window]]]) -> list[Window]:
    """Combine one test's windows across ranks: [(rank, host, windows)], windows matched by position.

    Energy is summed over ranks (device ids must already be qualified: one reported twice is an error),
    duration is the longest rank's, idle and net energy are summed, peak memory is the largest rank's.
    """
    if not per_rank:
        return []
    counts = {rank: len(ws) for rank, _, ws in per_rank}
    if len(set(counts.values())) != 1:
        raise DistributedError(f"ranks measured different numbers of windows (rank: windows): {counts}")
    combined = []
    for i in range(next(iter(counts.values()))):
        parts = [(rank, host, ws[i]) for rank, host, ws in sorted(per_rank, key=lambda p: p[0])]
        labels = {rank: w.label for rank, _, w in parts}
        if len(set(labels.values())) != 1:
            raise DistributedError(f"window {i} has different labels on different ranks: {labels}")
        devices: dict[str, Any] = {}
        for _, _, w in parts:
            for d in w.devices:
                if d.device in devices:
                    raise DistributedError(f"device {d.device} is reported by more than one rank in window "
                                           f"{w.label!r}: it would be counted twice")
                devices[d.device] = d
        windows = [w for _, _, w in parts]
        idle = [w.idle_power_w for w in windows]
        net = [w.net_energy_j for w in windows]
        peaks = [(w.peak_memory_bytes, w.peak_memory_source) for w in windows if w.peak_memory_bytes is not None]
        peak = max(peaks, key=lambda p: p[0]) if peaks else (None, None)
        combined.append(Window(
            label=windows[0].label,
            duration_s=max(w.duration_s for w in windows),
            energy_j=math.fsum(w.energy_j for w in windows),
            devices=tuple(devices[k] for k in sorted(devices)),
            method=_methods([w.method for w in windows]),
            idle_power_w=math.fsum(idle) if None not in idle else None,
            net_energy_j=math.fsum(net) if None not in net else None,
            peak_memory_bytes=peak[0],
            peak_memory_source=f"{peak[1]} (largest rank)" if peak[1] else None,
            warnings=[f"rank {rank}: {m}" for rank, _, w in parts for m in w.warnings],
            closed=all(w.closed for w in windows),
            per_rank=[{"rank": rank, "host": host, "energy_j": w.energy_j, "duration_s": w.duration_s,
                       "devices": [d.device for d in w.devices]} for rank, host, w in parts]))
    return combined


def combine_records(payloads: Sequence[Mapping[str, Any]]) -> TestRecord:
    """One test's record combined over ranks. `payloads`: {"rank", "host", "record": TestRecord.to_dict()}.

    Windows as in `combine_windows`. Metrics: energy (unit J) summed sample by sample, durations (unit s)
    the longest rank's; every other metric (steps, tokens, accuracy, J/example, ...) is rank 0's, because
    how to combine it depends on how the work was split, and the record says which metrics those are.
    """
    records = [(p["rank"], p["host"], TestRecord.from_dict(p["record"]))
               for p in sorted(payloads, key=lambda p: p["rank"])]
    rank0 = records[0][2]
    windows = combine_windows([(rank, host, r.windows) for rank, host, r in records])
    metrics: dict[str, Metric] = {}
    rank0_only = []
    for name, m in rank0.metrics.items():
        if m.unit not in ("J", "s"):
            metrics[name] = Metric(m.name, m.unit, m.better, m.kind, list(m.samples), m.method)
            rank0_only.append(name)
            continue
        parts = [r.metrics.get(name) for _, _, r in records]
        shapes = {rank: (len(p.samples) if p else None) for (rank, _, _), p in zip(records, parts)}
        if len(set(shapes.values())) != 1:
            raise DistributedError(f"metric {name!r} has different numbers of samples on different ranks "
                                   f"(rank: samples): {shapes}")
        columns = list(zip(*(p.samples for p in parts)))
        samples = [math.fsum(c) if m.unit == "J" else max(c) for c in columns]
        metrics[name] = Metric(m.name, m.unit, m.better, m.kind, samples, _methods([p.method for p in parts]) or None)
    others = sorted({n for _, _, r in records[1:] for n in r.metrics} - set(rank0.metrics))
    extra_info = dict(rank0.extra_info)
    extra_info["distributed"] = {**extra_info.get("distributed", {}), "ranks": len(records),
                                 "rank0_only_metrics": rank0_only, "ignored_metrics": others}
    return TestRecord(nodeid=rank0.nodeid, name=rank0.name, group=rank0.group, params=rank0.params,
                      metrics=metrics, windows=windows, extra_info=extra_info, protocols=rank0.protocols)


# --- one rank's view of the job ---------------------------------------------------------------------------

class RankContext:
    """This rank's part: the exchange, the devices it meters, and what rank 0 learns about the others."""

    def __init__(self, info: RankInfo, exchange: RankExchange) -> None:
        self.info = info
        self.exchange = exchange
        self.claims: list[dict[str, Any]] = []
        self.plan: dict[int, list[str]] = {}
        self.notes: list[str] = []
        self.qualify: dict[str, str] = {}  # this rank's local device id -> qualified key
        self._posts: dict[str, int] = {}

    @classmethod
    def from_env(cls, timeout_s: float = DEFAULT_TIMEOUT_S, env: Mapping[str, str] | None = None) -> RankContext | None:
        """None for a single process (WORLD_SIZE unset or 1): nothing changes and torch is never imported."""
        info = RankInfo.from_env(env)
        return cls(info, RankExchange(info, timeout_s=timeout_s)) if info.distributed else None

    @property
    def is_main(self) -> bool:
        return self.info.rank == 0

    def open_meter(self, choice: str, cpu_watts_per_core: float) -> Meter:
        """Open this rank's meter on its local GPU(s) and claim devices with the other ranks (every rank
        calls this once, at start-up: it waits for all of them)."""
        from ..machine import fingerprint
        from ..meters import open_meter

        meter = open_meter(choice, cpu_watts_per_core=cpu_watts_per_core, visible_devices=self._local_gpus(choice))
        try:
            mine = {"rank": self.info.rank, "host": self.info.host, "local_rank": self.info.local_rank,
                    "meter": meter.name, "devices": describe_devices(self.info, meter),
                    "fingerprint": fingerprint(meter)}
            self.claims = self.exchange.all_gather("claims", mine)
        except BaseException:
            meter.close()
            raise
        self.plan, self.notes = claim_devices(self.claims)
        keep = [d["local"] for d in mine["devices"] if d["key"] in self.plan[self.info.rank]]
        self.qualify = {d["local"]: d["key"] for d in mine["devices"]}
        return meter if len(keep) == len(mine["devices"]) else ClaimedMeter(meter, keep)

    def _local_gpus(self, choice: str) -> str | None:
        """UUIDs of this rank's block of the visible GPUs (torch's convention: rank r uses cuda:LOCAL_RANK),
        or None to leave the meter's default. Ranks a launcher already isolated see one GPU each."""
        if choice not in ("auto", "nvml"):
            return None
        from ..meters.gpus import ENV, list_gpus, resolve_visible
        from .split import split_gpus

        try:
            listed = list_gpus()
        except MeterUnavailable:
            return None  # open_meter says why NVML is unusable
        visible = [v for v in resolve_visible(os.environ.get(ENV), listed)[0] if v.index is not None]
        if not visible:
            return None
        plan = split_gpus(visible, self.info.local_world_size)
        block = plan.assignments[self.info.local_rank % len(plan.assignments)]
        return ",".join(v.uuid or v.selector for v in block.gpus)

    def fingerprint(self) -> dict[str, Any]:
        return combined_fingerprint(self.claims, self.plan)

    def devices(self) -> list[DeviceInfo]:
        """Every device metered by any rank, under its qualified key."""
        return [DeviceInfo(d["key"], d["name"], d["method"]) for c in sorted(self.claims, key=lambda c: c["rank"])
                for d in c["devices"] if d["key"] in self.plan.get(c["rank"], ())]

    def placement(self) -> dict[str, Any]:
        """What each benchmark result says about where it ran."""
        return {"distributed": {
            "world_size": self.info.world_size, "exchange": self.exchange.mode, "notes": list(self.notes),
            "ranks": [{"rank": c["rank"], "host": c["host"], "local_rank": c["local_rank"],
                       "meters": [d["key"] for d in c["devices"] if d["key"] in self.plan.get(c["rank"], ())]}
                      for c in sorted(self.claims, key=lambda c: c["rank"])]}}

    def post_test(self, nodeid: str, outcome: str, record: TestRecord | None) -> list[dict[str, Any]] | None:
        """Send this rank's part of one test; rank 0 gets every rank's part, the others None.

        A record that cannot be sent is sent as a failure (so rank 0 does not wait for it) and raises
        DistributedError here, on the rank whose test it is."""
        n = self._posts[nodeid] = self._posts.get(nodeid, 0) + 1  # the same test may run twice
        data, problem = None, None
        if record is not None:
            conversions = record.make_jsonable()  # numpy values and the like, as pytest-energy stores them
            if conversions:
                record.extra_info.setdefault("distributed", {})["conversions"] = conversions
            data = record.to_dict()
            for w in data["windows"]:
                for d in w["devices"]:
                    d["device"] = self.qualify.get(d["device"], d["device"])
            try:
                json.dumps(data, allow_nan=False)
            except (TypeError, ValueError) as exc:
                data, outcome = None, "failed"
                problem = f"rank {self.info.rank} cannot send its record of {nodeid}: {exc}"
        parts = self.exchange.gather(f"test:{n}:{nodeid}", {"rank": self.info.rank, "host": self.info.host,
                                                             "outcome": outcome, "record": data})
        if problem:
            raise DistributedError(problem)
        return parts
