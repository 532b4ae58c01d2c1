"""The NVML meter against a fake driver that behaves like the real one."""

from __future__ import annotations

import sys
import time

import pytest
from pytest_energy.meters.fake import NVML_DEVICE_ARCH_PASCAL, FakeGpu

from pytest_energy.errors import MeasurementError, MeterUnavailable
from pytest_energy.errors import ShortWindowWarning
from pytest_energy.measure import Measurer
from pytest_energy.meters import open_meter
from pytest_energy.meters.nvml import NvmlMeter, visible_gpu_selectors

SLEEP_S = 1.5


def _average_power(meter, work=lambda: time.sleep(SLEEP_S)):
    with meter:
        with Measurer(meter).measure("sleep") as w:
            work()
    return w


# -- NVML -------------------------------------------------------------------------------------
def test_counter_path_reports_constant_power_within_2_percent(fake_nvml):
    fake_nvml(FakeGpu(power_w=250.0))
    w = _average_power(NvmlMeter())
    assert w.method == "nvml-counter"
    assert w.power_w == pytest.approx(250.0, rel=0.02)
    assert w.energy_j == pytest.approx(250.0 * w.duration_s, rel=0.02)
    assert w.duration_s >= SLEEP_S


def test_polling_path_before_volta_within_3_percent(fake_nvml):
    driver = fake_nvml(FakeGpu(name="Tesla P100", power_w=180.0, architecture=NVML_DEVICE_ARCH_PASCAL))
    w = _average_power(NvmlMeter(poll_interval_s=0.05))
    assert w.method == "nvml-polling"
    assert w.power_w == pytest.approx(180.0, rel=0.03)
    # The poller really polled in the background (about 1.5 s / 0.05 s times), not just at the edges.
    assert driver.calls["nvmlDeviceGetPowerUsage"] > 10


def test_polling_integrates_a_power_step_with_the_trapezoid_rule(fake_nvml):
    gpu = FakeGpu(power_w=100.0, architecture=NVML_DEVICE_ARCH_PASCAL)
    fake_nvml(gpu)

    def work():
        time.sleep(0.75)
        gpu.power_w = 300.0
        time.sleep(0.75)

    w = _average_power(NvmlMeter(poll_interval_s=0.02), work)
    assert w.power_w == pytest.approx(200.0, rel=0.05)


def test_two_gpus_sum_and_are_listed(fake_nvml):
    fake_nvml(FakeGpu(power_w=200.0, uuid="GPU-aaaa"), FakeGpu(power_w=100.0, uuid="GPU-bbbb"))
    w = _average_power(NvmlMeter())
    assert [d.device for d in w.devices] == ["gpu0", "gpu1"]
    assert w.power_w == pytest.approx(300.0, rel=0.02)
    assert w.energy_j == pytest.approx(sum(d.energy_j for d in w.devices))
    assert w.devices[0].energy_j == pytest.approx(2 * w.devices[1].energy_j, rel=0.04)


@pytest.mark.parametrize("visible, expected", [("1", ["gpu1"]), ("GPU-bbbb", ["gpu1"]), ("GPU-bb", ["gpu1"]),
                                               ("1,0", ["gpu1", "gpu0"]), ("0,junk,1", ["gpu0"])])
def test_cuda_visible_devices_narrows_the_metered_gpus(fake_nvml, monkeypatch, visible, expected):
    fake_nvml(FakeGpu(power_w=200.0, uuid="GPU-aaaa"), FakeGpu(power_w=100.0, uuid="GPU-bbbb"))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    with NvmlMeter() as meter:
        assert [d.device for d in meter.devices()] == expected


def test_cuda_visible_devices_narrowed_window_counts_only_visible_gpu(fake_nvml, monkeypatch):
    fake_nvml(FakeGpu(power_w=200.0, uuid="GPU-aaaa"), FakeGpu(power_w=100.0, uuid="GPU-bbbb"))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-bbbb")
    w = _average_power(NvmlMeter(), lambda: time.sleep(0.5))
    assert w.power_w == pytest.approx(100.0, rel=0.05)


@pytest.mark.parametrize("visible", ["", "-1", "GPU-cccc"])
def test_no_visible_gpu_is_a_clear_error(fake_nvml, monkeypatch, visible):
    fake_nvml(FakeGpu(uuid="GPU-aaaa"))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    with pytest.raises(MeterUnavailable, match="CUDA_VISIBLE_DEVICES"):
        NvmlMeter()


def test_visible_selector_parsing_follows_cuda():
    assert visible_gpu_selectors(None) is None
    assert visible_gpu_selectors("") == []
    assert visible_gpu_selectors("0, 2") == ["0", "2"]
    assert visible_gpu_selectors("GPU-1,MIG-2,3") == ["GPU-1", "MIG-2", "3"]
    assert visible_gpu_selectors("1,-1,2") == ["1"]


def test_no_driver_is_unavailable_with_the_reason(no_nvml):
    with pytest.raises(MeterUnavailable, match="no NVIDIA driver answered.*Library Not Found"):
        NvmlMeter()


def test_gpu_lost_mid_window_is_an_error_not_zero(fake_nvml):
    fake_nvml(FakeGpu(lost_after_s=0.3))
    with NvmlMeter() as meter, pytest.raises(MeasurementError, match="GPU 0 .*GPU is lost"):
        with Measurer(meter).measure("doomed"):
            time.sleep(0.4)


def test_gpu_lost_while_polling_is_reported_at_the_window_end(fake_nvml):
    fake_nvml(FakeGpu(architecture=NVML_DEVICE_ARCH_PASCAL, lost_after_s=0.2))
    with NvmlMeter(poll_interval_s=0.02) as meter, pytest.raises(MeasurementError, match="GPU is lost"):
        with Measurer(meter).measure("doomed"):
            time.sleep(0.4)


def test_short_window_warns_and_says_how_long_it_was(fake_nvml):
    fake_nvml(FakeGpu())
    with NvmlMeter() as meter, pytest.warns(ShortWindowWarning, match=r"lasted \d+\.\d ms"):
        with Measurer(meter).measure("blink") as w:
            pass
    assert w.warnings


def test_close_shuts_the_driver_down_and_stops_the_poller(fake_nvml):
    driver = fake_nvml(FakeGpu(architecture=NVML_DEVICE_ARCH_PASCAL))
    meter = NvmlMeter(poll_interval_s=0.01)
    thread = meter._thread
    meter.close()
    assert driver.initialised == 0
    assert not thread.is_alive()


def test_fingerprint_has_stable_facts(fake_nvml):
    fake_nvml(FakeGpu(name="NVIDIA A100-SXM4-40GB", power_limit_w=400.0))
    with NvmlMeter() as meter:
        fp = meter.fingerprint()
        assert fp["gpus"] == ["NVIDIA A100-SXM4-40GB"]
        assert fp["gpu_power_limit_w"] == [400.0]
        assert fp["gpu_driver"] == "580.95.05"
        assert meter.volatile_state()["gpu0"] == {"temperature_c": 45, "sm_clock_mhz": 1980}


def test_nvml_is_chosen_without_torch_seeing_cuda(fake_nvml, monkeypatch):
    fake_nvml(FakeGpu())
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` would fail: nothing asks torch
    with open_meter("nvml") as meter:
        assert meter.name == "nvml"
    with open_meter("auto") as meter:
        assert meter.name == "nvml"


# -- RAPL -------------------------------------------------------------------------------------


def test_fake_energy_counter_never_goes_backwards():
    """Reads within one counter step report the same value (a fake that moved back made negative windows)."""
    from pytest_energy.meters.fake import FakeDriver

    driver = FakeDriver([FakeGpu(counter_update_s=0.002)])
    nvml = driver.module()
    nvml.nvmlInit()
    handle = nvml.nvmlDeviceGetHandleByIndex(0)
    readings = [nvml.nvmlDeviceGetTotalEnergyConsumption(handle) for _ in range(20000)]
    assert all(b >= a for a, b in zip(readings, readings[1:]))
    assert readings[-1] > readings[0]
