"""Splitting GPUs among workers: documented examples, and hypothesis for the invariants."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_energy.errors import UsageError
from pytest_energy.meters.gpus import Gpu, VisibleGpu, resolve_visible
from pytest_energy.distributed.split import default_gpus_per_worker, split_gpus


def machine(n: int) -> list[Gpu]:
    return [Gpu(i, f"GPU-{i:08x}-1111-2222-3333-444444444444", "NVIDIA H100") for i in range(n)]


def plan(env, gpus, n_workers, per_worker=None):
    return split_gpus(resolve_visible(env, gpus)[0], n_workers, per_worker)


def test_eight_gpus_four_workers_two_each():
    p = plan(None, machine(8), 4)
    assert p.per_worker == 2
    assert [[g.index for g in a.gpus] for a in p.assignments] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert not p.shared and p.warnings == () and p.notes == ()


def test_the_parents_index_list_is_split_verbatim():
    assert [a.env for a in plan("4,5,6,7", machine(8), 2).assignments] == ["4,5", "6,7"]


def test_more_workers_than_gpus_share_and_the_warning_says_who_and_what():
    p = plan("0,1", machine(2), 4)
    assert [a.env for a in p.assignments] == ["0", "1", "0", "1"]
    assert [a.shared_with for a in p.assignments] == [(2,), (3,), (0,), (1,)]
    (warning,) = p.warnings
    assert "GPU 0 (GPU-00000000-1111-2222-3333-444444444444) by gw0, gw2" in warning
    assert "every test on gw0, gw1, gw2, gw3" in warning and "power, energy per item, CO2 and cost" in warning
    assert "-n 2 or fewer" in warning


def test_left_over_gpus_are_named_not_handed_out_unevenly():
    p = plan(None, machine(5), 2)
    assert [len(a.gpus) for a in p.assignments] == [2, 2]
    assert [v.index for v in p.unused] == [4] and "not given to any worker" in p.notes[0]


def test_fewer_workers_than_blocks_leave_gpus_idle_and_say_so():
    p = plan(None, machine(8), 2, per_worker=1)
    assert [a.env for a in p.assignments] == [machine(8)[0].uuid, machine(8)[1].uuid]
    assert len(p.unused) == 6 and "left idle" in p.notes[0]


def test_zero_means_do_not_split_with_a_warning():
    p = plan(None, machine(2), 3, per_worker=0)
    assert p.assignments == () and "all 3 workers see all 2 GPUs" in p.warnings[0]


def test_no_visible_gpu_splits_nothing():
    p = plan("-1", machine(4), 2)
    assert p.assignments == () and "no GPU is visible" in p.notes[0]


def test_more_gpus_per_worker_than_visible_is_a_usage_error():
    with pytest.raises(UsageError, match="3 GPUs per worker asked for, but only 2 are visible: GPU 0"):
        plan(None, machine(2), 1, per_worker=3)


@st.composite
def setups(draw):
    n_gpus = draw(st.integers(0, 9))
    gpus = machine(n_gpus)
    mode = draw(st.sampled_from(["unset", "indices", "uuids", "mixed"]))
    env = None
    if mode != "unset" and n_gpus:
        chosen = draw(st.lists(st.sampled_from(range(n_gpus)), unique=True, max_size=n_gpus))
        parts = []
        for i in chosen:
            by_uuid = mode == "uuids" or (mode == "mixed" and draw(st.booleans()))
            parts.append(gpus[i].uuid[:draw(st.integers(12, len(gpus[i].uuid)))] if by_uuid else str(i))
        env = ",".join(parts)
    return gpus, env, draw(st.integers(1, 12)), draw(st.one_of(st.none(), st.integers(1, 4)))


@settings(max_examples=300, deadline=None)
@given(setups())
def test_split_invariants(setup):
    gpus, env, n_workers, per_worker = setup
    visible, _ = resolve_visible(env, gpus)
    g = len(visible)
    if per_worker is not None and per_worker > g > 0:
        with pytest.raises(UsageError):
            plan(env, gpus, n_workers, per_worker)
        return
    p = plan(env, gpus, n_workers, per_worker)
    if g == 0:
        assert p.assignments == ()
        return
    k = p.per_worker
    assert k == (default_gpus_per_worker(g, n_workers) if per_worker is None else per_worker)
    assert len(p.assignments) == n_workers
    blocks = g // k
    use: Counter = Counter()
    for a in p.assignments:
        assert len(a.gpus) == k and len({x.index for x in a.gpus}) == k  # exactly K distinct GPUs
        assert set(a.gpus) <= set(visible)
        # The worker's CUDA_VISIBLE_DEVICES means, in the worker, exactly the GPUs meant for it.
        child, child_warnings = resolve_visible(a.env, gpus)
        assert [x.index for x in child] == [x.index for x in a.gpus] and child_warnings == []
        if env is None:
            assert all(x.selector == x.uuid for x in a.gpus)  # UUIDs where the parent set nothing
        else:
            assert all(x.selector in env.split(",") for x in a.gpus)  # else the parent's entries verbatim
        use.update(x.index for x in a.gpus)
    assert max(use.values()) <= -(-n_workers // blocks)  # balanced
    assert p.shared == (n_workers > blocks) == bool(p.warnings)
    for a in p.assignments:
        for o in p.assignments:
            if o is not a:
                overlap = bool({x.index for x in a.gpus} & {x.index for x in o.gpus})
                assert (o.position in a.shared_with) == overlap
    unused = {x.index for x in p.unused}
    assert unused | set(use) == {x.index for x in visible} and not unused & set(use)
    if per_worker is None and n_workers <= g:
        assert len(p.unused) < n_workers  # an even split idles fewer GPUs than there are workers


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 9), st.integers(1, 12), st.one_of(st.none(), st.integers(1, 3)))
def test_a_workers_gpus_depend_only_on_its_position(n_gpus, n_workers, k):
    """So the replacement of a crashed worker (same spec, same position) gets the same GPUs."""
    visible = [VisibleGpu(str(i), i, f"GPU-{i}") for i in range(n_gpus)]
    if k is not None and k > n_gpus:
        return
    a = split_gpus(visible, n_workers, k)
    b = split_gpus(visible, n_workers + 3, k)
    if a.per_worker == b.per_worker:
        assert [x.gpus for x in a.assignments] == [x.gpus for x in b.assignments[:n_workers]]
    assert a == split_gpus(visible, n_workers, k)
