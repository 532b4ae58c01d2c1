"""CUDA_VISIBLE_DEVICES resolved as CUDA resolves it, against the GPUs NVML lists."""

from __future__ import annotations

import pytest

from pytest_energy.errors import DeviceOrderWarning, MeterUnavailable
from pytest_energy.meters.fake import FakeGpu
from pytest_energy.meters.gpus import Gpu, index_order_warning, list_gpus, resolve_visible, visible_gpu_selectors
from pytest_energy.meters.nvml import NvmlMeter


def machine(n: int, name: str = "NVIDIA H100") -> list[Gpu]:
    return [Gpu(i, f"GPU-{i:08x}-1111-2222-3333-444444444444", name) for i in range(n)]


@pytest.mark.parametrize("env, expected", [
    (None, None), ("", []), ("-1", []), ("0,1", ["0", "1"]), ("1, 0", ["1", "0"]), ("0,-1,1", ["0"]),
    ("GPU-abc,1", ["GPU-abc", "1"]), ("0,foo,1", ["0"]), ("MIG-x", ["MIG-x"]),
])
def test_selectors_are_parsed_like_cuda(env, expected):
    assert visible_gpu_selectors(env) == expected


def test_unset_means_every_gpu_by_uuid_in_nvml_order():
    visible, warnings = resolve_visible(None, list(reversed(machine(3))))
    assert [v.index for v in visible] == [0, 1, 2]
    assert all(v.selector == v.uuid for v in visible) and warnings == []


def test_entries_keep_their_form_and_order():
    visible, _ = resolve_visible("3,GPU-00000001", machine(4))
    assert [(v.selector, v.index) for v in visible] == [("3", 3), ("GPU-00000001", 1)]


@pytest.mark.parametrize("env, indices, warning", [
    ("1,7,2", [1], "'7' matches no GPU"),
    ("GPU-0000000", [], "ambiguous (4 GPUs match)"),
    ("1,1,2", [1, 2], "listed twice"),
    ("MIG-aaaa", [None], "MIG instance"),
])
def test_what_cuda_would_ignore_is_ignored_and_said(env, indices, warning):
    visible, warnings = resolve_visible(env, machine(4))
    assert [v.index for v in visible] == indices
    assert warning in warnings[0]


def test_without_nvml_entries_are_taken_on_trust():
    visible, _ = resolve_visible("2,3", None)
    assert [v.selector for v in visible] == ["2", "3"]
    visible, warnings = resolve_visible(None, None)
    assert visible == [] and "cannot be listed" in warnings[0]


def test_index_order_warning_only_where_cuda_and_nvml_may_disagree():
    mixed = [Gpu(0, "GPU-a", "NVIDIA A100"), Gpu(1, "GPU-b", "NVIDIA H100")]
    assert "CUDA_DEVICE_ORDER=PCI_BUS_ID" in index_order_warning(["1"], mixed, order="")
    assert index_order_warning(["1"], mixed, order="PCI_BUS_ID") is None  # CUDA numbers by PCI bus then
    assert index_order_warning(["GPU-b"], mixed, order="") is None  # a UUID is unambiguous
    assert index_order_warning(["1"], machine(2), order="") is None  # one model: the orders agree
    assert index_order_warning(None, mixed, order="") is None


def test_nvml_meter_warns_about_an_ambiguous_index(fake_nvml, monkeypatch):
    fake_nvml(FakeGpu(name="NVIDIA A100", uuid="GPU-a"), FakeGpu(name="NVIDIA H100", uuid="GPU-b"))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    with pytest.warns(DeviceOrderWarning, match="may number these GPUs differently"), NvmlMeter() as meter:
        assert [d.device for d in meter.devices()] == ["gpu1"]
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    with NvmlMeter() as meter:  # no warning (warnings are errors in this suite)
        assert [d.device for d in meter.devices()] == ["gpu1"]


def test_list_gpus_asks_nvml_and_says_why_not(fake_nvml):
    driver = fake_nvml(FakeGpu(uuid="GPU-a", name="A"), FakeGpu(uuid="GPU-b", name="B"))
    assert list_gpus() == [Gpu(0, "GPU-a", "A"), Gpu(1, "GPU-b", "B")]
    assert driver.initialised == 0  # shut down again
    driver.loaded = False
    with pytest.raises(MeterUnavailable, match="no NVIDIA driver answered"):
        list_gpus()


def test_forced_polling_integrates_power_on_a_gpu_with_a_counter(fake_nvml):
    fake_nvml(FakeGpu(power_w=150.0))
    with NvmlMeter(poll_interval_s=0.01, polling=True) as meter:
        assert [str(d.method) for d in meter.devices()] == ["nvml-polling"]
