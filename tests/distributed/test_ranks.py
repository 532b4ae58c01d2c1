"""torchrun ranks without launching processes: ranks simulated on one in-process HashStore."""

from __future__ import annotations

import math
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_energy.distributed.ranks import (ClaimedMeter, RankContext, RankExchange, RankInfo, claim_devices,
                                             combine_records, combine_windows, combined_fingerprint, describe_devices)
from pytest_energy.errors import DistributedError, UsageError
from pytest_energy.gate.baselines import machine_mismatch
from pytest_energy.meters.fake import manual_meter
from pytest_energy.records import DeviceEnergy, TestRecord, Window

TORCHRUN_ENV = {"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
                "MASTER_ADDR": "localhost", "MASTER_PORT": "29500", "TORCHELASTIC_USE_AGENT_STORE": "True",
                "TORCHELASTIC_RUN_ID": "abc", "TORCHELASTIC_RESTART_COUNT": "2"}


def ranks(world: int, timeout_s: float = 5.0) -> list[RankExchange]:
    dist = pytest.importorskip("torch.distributed")
    store = dist.HashStore()
    return [RankExchange(RankInfo(rank=r, world_size=world, local_rank=r, local_world_size=world), store,
                         timeout_s=timeout_s) for r in range(world)]


def test_rank_info_from_the_torchrun_environment():
    info = RankInfo.from_env(TORCHRUN_ENV)
    assert (info.rank, info.world_size, info.local_rank, info.local_world_size) == (1, 4, 1, 2)
    assert info.agent_store and info.master_port == 29500 and info.distributed
    assert RankExchange(info).prefix == "pytest_energy/abc/2/"  # a restarted job never reads stale keys
    with pytest.raises(UsageError, match="RANK=4 is outside WORLD_SIZE=4"):
        RankInfo.from_env({**TORCHRUN_ENV, "RANK": "4"})


def test_a_single_process_has_no_rank_context_and_needs_no_store():
    assert RankContext.from_env(env={}) is None
    ex = RankExchange(RankInfo.from_env({}))
    assert ex.gather("k", {"a": 1}) == [{"a": 1}] and ex.all_gather("k", {"b": 2}) == [{"b": 2}]
    ex.release()
    assert ex._store is None  # torch was never needed


def test_no_master_address_is_a_clear_error():
    with pytest.raises(DistributedError, match="MASTER_ADDR/MASTER_PORT are not set"):
        RankExchange(RankInfo.from_env({"WORLD_SIZE": "2", "RANK": "1"})).gather("k", {})


def test_gather_gives_rank0_everything_in_rank_order_and_cleans_up():
    r0, r1, r2 = ranks(3)
    assert r2.gather("test:a.py::t[x/y]", {"rank": 2}) is None  # the others do not wait
    assert r1.gather("test:a.py::t[x/y]", {"rank": 1}) is None
    assert r0.gather("test:a.py::t[x/y]", {"rank": 0}) == [{"rank": 0}, {"rank": 1}, {"rank": 2}]
    assert r0.store.num_keys() == 0


def test_rank0_waits_for_a_late_rank():
    r0, r1 = ranks(2)
    threading.Timer(0.3, lambda: r1.gather("k", {"rank": 1})).start()
    started = time.monotonic()
    assert r0.gather("k", {"rank": 0}) == [{"rank": 0}, {"rank": 1}]
    assert time.monotonic() - started >= 0.25


def test_a_missing_rank_is_named():
    r0, _, r2, _ = ranks(4, timeout_s=0.3)
    r2.gather("k", {})
    with pytest.raises(DistributedError, match=r"rank\(s\) 1, 3 of 4 sent nothing for 'k' within 0.3 s "
                                               r"\(arrived: 0, 2\)"):
        r0.gather("k", {})


def test_a_nan_fails_on_the_rank_that_sent_it():
    _, r1 = ranks(2)
    with pytest.raises(ValueError):
        r1.gather("k", {"energy_j": math.nan})


def test_release_holds_the_other_ranks_until_rank0_is_done():
    r0, r1 = ranks(2)
    released = []
    t = threading.Thread(target=lambda: (r1.release(), released.append(time.monotonic())))
    t.start()
    time.sleep(0.3)
    assert not released
    done_at = time.monotonic()
    r0.release()
    t.join(5)
    assert released and released[0] >= done_at


# -- who meters what ------------------------------------------------------------------------------

def test_rapl_once_per_node_gpus_by_uuid_the_estimate_per_rank():
    candidates = []
    for rank in range(4):
        host = "a" if rank < 2 else "b"
        candidates.append({"rank": rank, "devices": [
            {"key": f"{host}/gpu{rank % 2}", "physical": f"GPU-{rank}"},
            {"key": f"{host}/cpu-package-0", "physical": f"{host}/cpu-package-0"},
            {"key": f"rank{rank}/cpu-estimate", "physical": f"rank{rank}/cpu-estimate"}]})
    plan, notes = claim_devices(candidates)
    assert plan == {0: ["a/gpu0", "a/cpu-package-0", "rank0/cpu-estimate"], 1: ["a/gpu1", "rank1/cpu-estimate"],
                    2: ["b/gpu0", "b/cpu-package-0", "rank2/cpu-estimate"], 3: ["b/gpu1", "rank3/cpu-estimate"]}
    assert notes == ["rank 1 also uses a/cpu-package-0 (a/cpu-package-0); rank 0 meters it, so it is counted once",
                     "rank 3 also uses b/cpu-package-0 (b/cpu-package-0); rank 2 meters it, so it is counted once"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(0, 5), max_size=4), min_size=1, max_size=6))
def test_every_physical_device_is_metered_once_by_its_lowest_user(uses):
    candidates = [{"rank": r, "devices": [{"key": f"k{p}", "physical": f"p{p}"} for p in dict.fromkeys(ps)]}
                  for r, ps in enumerate(uses)]
    plan, _ = claim_devices(candidates)
    metered = [k for keys in plan.values() for k in keys]
    assert len(metered) == len(set(metered)) == len({p for ps in uses for p in ps})
    for r, keys in plan.items():
        for k in keys:
            assert min(i for i, ps in enumerate(uses) if int(k[1:]) in ps) == r


def test_device_keys_are_qualified_by_host_or_rank():
    meter, _ = manual_meter(method="rapl")
    info = RankInfo(rank=3, world_size=4, host="nodeA")
    (d,) = describe_devices(info, meter)
    assert (d["key"], d["physical"]) == ("nodeA/fake0", "nodeA/fake0")
    meter, _ = manual_meter(method="estimate")
    (d,) = describe_devices(info, meter)
    assert d["key"] == "rank3/fake0"


def test_a_claimed_meter_reads_only_its_devices():
    meter, clock = manual_meter()
    claimed = ClaimedMeter(meter, [])
    start = claimed.read()
    clock.advance(1.0, 50.0)
    assert claimed.devices() == [] and claimed.delta_j(start, claimed.read()) == {}
    assert ClaimedMeter(meter, ["fake0"]).read().energy_j == {"fake0": clock.energy_j}


def test_the_jobs_fingerprint_lists_every_metered_gpu_and_the_topology():
    def claim(rank, host, uuid):
        fingerprint = {"method": "nvml-counter", "gpus": ["H100"], "cpu_model": "X"}
        return {"rank": rank, "host": host, "fingerprint": fingerprint,
                "devices": [{"key": f"{host}/gpu{rank}", "physical": uuid, "name": "H100", "method": "nvml-counter",
                             "power_limit_w": 700.0}]}
    claims = [claim(0, "a", "GPU-0"), claim(1, "a", "GPU-1"), claim(2, "b", "GPU-2")]
    fp = combined_fingerprint(claims, claim_devices(claims)[0])
    assert fp["gpus"] == ["H100"] * 3 and fp["gpu_uuids"] == ["GPU-0", "GPU-1", "GPU-2"]
    assert fp["distributed"] == "3 ranks on 2 node(s)" and fp["cpu_model"] == "X"
    # A job's baseline is never compared with one process's, nor with another topology.
    single = {"method": "estimate", "gpus": [], "cpu_model": "X"}
    assert machine_mismatch(single, {**single, "distributed": "2 ranks on 1 node(s)"})
    assert machine_mismatch(single, dict(single)) == []


# -- combining ---------------------------------------------------------------------------------------

def window(label: str, duration_s: float, devices: dict[str, float], method: str = "nvml-counter") -> Window:
    return Window(label, duration_s, sum(devices.values()),
                  tuple(DeviceEnergy(k, v, method) for k, v in devices.items()), method, closed=True)


def test_windows_sum_energy_take_the_longest_duration_and_keep_each_rank():
    (w,) = combine_windows([(0, "n", [window("w", 0.3, {"n/gpu0": 30.0, "n/cpu-package-0": 15.0})]),
                            (1, "n", [window("w", 0.5, {"n/gpu1": 100.0})])])
    assert w.energy_j == 145.0 and w.duration_s == 0.5 and w.method == "nvml-counter"
    assert [d.device for d in w.devices] == ["n/cpu-package-0", "n/gpu0", "n/gpu1"]
    assert w.per_rank == [{"rank": 0, "host": "n", "energy_j": 45.0, "duration_s": 0.3,
                           "devices": ["n/gpu0", "n/cpu-package-0"]},
                          {"rank": 1, "host": "n", "energy_j": 100.0, "duration_s": 0.5, "devices": ["n/gpu1"]}]


def test_a_device_reported_twice_or_mismatched_windows_are_errors():
    with pytest.raises(DistributedError, match="counted twice"):
        combine_windows([(0, "n", [window("w", 1, {"n/x": 1.0})]), (1, "n", [window("w", 1, {"n/x": 1.0})])])
    with pytest.raises(DistributedError, match="different labels"):
        combine_windows([(0, "n", [window("a", 1, {})]), (1, "n", [window("b", 1, {})])])
    with pytest.raises(DistributedError, match="different numbers of windows"):
        combine_windows([(0, "n", [window("a", 1, {})]), (1, "n", [])])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(0.001, 100), st.floats(0, 1e4)), min_size=1, max_size=8))
def test_combined_energy_is_the_sum_and_duration_the_max(parts):
    (w,) = combine_windows([(r, "n", [window("w", d, {f"rank{r}/x": e})]) for r, (d, e) in enumerate(parts)])
    assert w.energy_j == pytest.approx(sum(e for _, e in parts))
    assert w.duration_s == max(d for d, _ in parts)


def test_records_combine_energy_and_time_and_name_what_is_rank0s_only():
    payloads = []
    for rank, (seconds, joules) in enumerate([(1.0, 100.0), (1.5, 300.0)]):
        record = TestRecord("t.py::test_x", "test_x")
        record.windows.append(window("round", seconds, {f"n/gpu{rank}": joules}))
        record.metric("duration_s", "s").add(seconds)
        record.metric("energy_j", "J", method="nvml-counter").add(joules)
        record.metric("tokens", "tokens", kind="deterministic").add(1000 + rank)
        payloads.append({"rank": rank, "host": "n", "record": record.to_dict()})
    combined = combine_records(payloads)
    assert combined.metrics["energy_j"].samples == [400.0] and combined.metrics["energy_j"].method == "nvml-counter"
    assert combined.metrics["duration_s"].samples == [1.5]
    assert combined.metrics["tokens"].samples == [1000]
    assert combined.extra_info["distributed"] == {"ranks": 2, "rank0_only_metrics": ["tokens"], "ignored_metrics": []}
    assert combined.windows[0].energy_j == 400.0
