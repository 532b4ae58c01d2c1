"""`python -m pytest_energy doctor`: on this machine as it is, under the fake NVIDIA driver, and with a fake
CUDA device whose work runs asynchronously, as a GPU's does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import types

import pytest

from pytest_energy.cli import main
from pytest_energy.cli.doctor import run_doctor, update_period_s
from pytest_energy.meters.fake import NVML_DEVICE_ARCH_PASCAL, FakeGpu

QUICK = ("--load-s", "1", "--idle-s", "0.5")


def test_runs_here_and_says_what_it_measured(tmp_path):
    """The command as a user types it, on whatever this machine is (CPU-only for this project)."""
    done = subprocess.run([sys.executable, "-m", "pytest_energy", "doctor", "--load-s", "0.5", "--idle-s", "0.2",
                           "--json", str(tmp_path / "doctor.json")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "estimate  answers" in done.stdout and "result: OK" in done.stdout
    report = json.loads((tmp_path / "doctor.json").read_text())
    assert report["cpu"]["load"]["energy_j"]["estimate"] > 0
    if not report["gpus"]:
        assert f"no GPU: {report['no_gpu_reason']}" in done.stdout and "measured instead" in done.stdout


def test_a_meter_asked_for_that_is_unusable_exits_1(no_nvml, capsys):
    assert main(["doctor", "--meter", "nvml", *QUICK]) == 1
    out = capsys.readouterr().out
    assert "no GPU: NVML: no NVIDIA driver answered" in out
    assert "the meter asked for (nvml) is unusable: NVML: no NVIDIA driver answered" in out


def test_bad_usage_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["doctor", "--load-s", "-1"])
    assert exit_.value.code == 2 and "expected a positive number" in capsys.readouterr().err


def test_under_the_fake_driver(fake_nvml, tmp_path, capsys):
    fake_nvml(FakeGpu(power_w=250.0, uuid="GPU-aaaa", counter_update_s=0.02),
              FakeGpu(name="Tesla P100", power_w=120.0, uuid="GPU-bbbb", architecture=NVML_DEVICE_ARCH_PASCAL))
    assert main(["doctor", "--meter", "nvml", *QUICK, "--json", str(tmp_path / "d.json"),
                 "--markdown", str(tmp_path / "d.md")]) == 0
    report = json.loads((tmp_path / "d.json").read_text())
    volta, pascal = report["gpus"]
    assert volta["method"] == "nvml-counter" and pascal["method"] == "nvml-polling"
    assert volta["counter_period_s"] == pytest.approx(0.02, rel=0.25)
    assert volta["idle_power_w"] == pytest.approx(250.0, rel=0.02)
    assert volta["load"]["agreement_pct"] == pytest.approx(0.0, abs=2.0)
    assert volta["load"]["energy_j"]["nvml-counter"] == pytest.approx(250.0 * volta["load"]["seconds"], rel=0.03)
    assert pascal["load"]["power_w"]["nvml-polling"] == pytest.approx(120.0, rel=0.03)
    assert volta["sync"]["works"] is None  # torch cannot use CUDA here: said, not guessed
    table = (tmp_path / "d.md").read_text()
    assert table.startswith("Measured with `python -m pytest_energy doctor --meter nvml --load-s 1")
    assert "| 0: NVIDIA H100 80GB HBM3 | nvml-counter | " in table and " | not checked |" in table
    assert "CUDA synchronisation at window edges: not checked: no CUDA load" in capsys.readouterr().out


def test_rapl_is_checked_under_the_cpu_load(fake_rapl, no_nvml, tmp_path):
    root, package, dram = fake_rapl
    stop = threading.Event()

    def tick():  # the package draws 20 W and the DRAM 5 W (µJ as RAPL counts), written every millisecond or so
        started = time.perf_counter()
        while not stop.wait(0.001):
            for path, start_uj, watts in ((package, 1_000_000, 20), (dram, 2_000_000, 5)):
                tmp = path.with_name("energy_uj.tmp")
                tmp.write_text(f"{start_uj + int(watts * (time.perf_counter() - started) * 1e6)}\n")
                os.replace(tmp, path)  # whole, as sysfs gives it: a reader never sees a half-written value

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        assert main(["doctor", *QUICK, "--powercap-root", str(root), "--json", str(tmp_path / "d.json")]) == 0
    finally:
        stop.set()
        ticker.join()
    report = json.loads((tmp_path / "d.json").read_text())
    assert {m["name"]: m["usable"] for m in report["meters"]} == {"nvml": False, "rapl": True, "estimate": True}
    assert report["auto_choice"] == "rapl"
    load = report["cpu"]["load"]
    assert set(load["energy_j"]) == {"estimate", "rapl"}
    assert load["power_w"]["rapl"] == pytest.approx(25.0, rel=0.15)  # the writer lags under the CPU load
    assert report["cpu"]["rapl_period_s"] is not None


def test_a_frozen_rapl_counter_is_a_problem_when_rapl_is_the_meter(fake_rapl, no_nvml, capsys):
    root, _, _ = fake_rapl  # the counters never move
    assert main(["doctor", *QUICK, "--powercap-root", str(root)]) == 1
    out = capsys.readouterr().out
    assert "rapl: FAILED: meter 'rapl' read exactly 0 J" in out and "result: PROBLEMS" in out
    assert main(["doctor", *QUICK, "--powercap-root", str(root), "--meter", "estimate"]) == 0


def test_update_period_is_the_median_time_between_changes():
    started = time.perf_counter()
    assert update_period_s(lambda: int((time.perf_counter() - started) / 0.01), 0.3)[0] == pytest.approx(0.01, rel=0.3)
    assert update_period_s(lambda: 7, 0.05) == (None, 0)  # a reading that never moves has no period


# --- a fake CUDA device: work queued by `a @ b` runs later, as on a GPU ----------------------------------

class _Stream:
    """One device's queue: each matmul takes MATMUL_S of 'GPU time' after the work queued before it."""

    MATMUL_S = 0.002

    def __init__(self) -> None:
        self.busy_until = time.perf_counter()

    def launch(self) -> None:
        self.busy_until = max(self.busy_until, time.perf_counter()) + self.MATMUL_S

    def synchronize(self) -> None:
        time.sleep(max(0.0, self.busy_until - time.perf_counter()))


def _fake_torch(uuid: str, synchronize_works: bool = True) -> types.ModuleType:
    stream = _Stream()

    class Tensor:
        def __matmul__(self, other):
            stream.launch()
            return Tensor()

    class Event:
        def __init__(self, enable_timing: bool = False) -> None:
            self.t = None

        def record(self) -> None:
            self.t = max(stream.busy_until, time.perf_counter())  # when the work queued before it is done

        def elapsed_time(self, end: Event) -> float:
            return (end.t - self.t) * 1000.0

    cuda = types.SimpleNamespace(
        is_available=lambda: True, is_initialized=lambda: True, device_count=lambda: 1,
        get_device_properties=lambda i: types.SimpleNamespace(uuid=uuid[len("GPU-"):]),
        synchronize=lambda device=None: stream.synchronize() if synchronize_works else None, Event=Event,
        max_memory_allocated=lambda i=None: 0, reset_peak_memory_stats=lambda i=None: None)
    return types.SimpleNamespace(__version__="fake", cuda=cuda, float16="torch.float16", float32="torch.float32",
                                 randn=lambda *a, **k: Tensor())


def test_cuda_synchronisation_check_on_a_device_that_runs_work_later(fake_nvml, monkeypatch):
    fake_nvml(FakeGpu(power_w=300.0, uuid="GPU-aaaa-1111"))
    monkeypatch.setitem(sys.modules, "torch", _fake_torch("GPU-aaaa-1111"))
    report = run_doctor("nvml", load_s=0.5, idle_s=0.2)
    (gpu,) = report.gpus
    assert gpu.load.what == "torch matmul 8192x8192 float16 on cuda:0" and gpu.load.iterations > 50
    sync = gpu.sync
    assert sync.works is True and sync.window_s >= sync.gpu_s > 0.1
    assert sync.unsynced_window_s < sync.gpu_s / 5  # without synchronisation the window closes before the work
    assert report.exit_code == 0


def test_a_window_that_does_not_cover_the_gpu_work_is_a_problem(fake_nvml, monkeypatch):
    fake_nvml(FakeGpu(power_w=300.0, uuid="GPU-aaaa-1111"))
    monkeypatch.setitem(sys.modules, "torch", _fake_torch("GPU-aaaa-1111", synchronize_works=False))
    report = run_doctor("nvml", load_s=0.3, idle_s=0.1)
    assert report.gpus[0].sync.works is False
    assert report.exit_code == 1 and "did not cover the GPU work" in report.problems[0]
