from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from pytest_energy.meters.fake import FakeDriver, FakeGpu  # noqa: E402


@pytest.fixture
def fake_nvml(monkeypatch):
    """Install a fake NVIDIA driver as `pynvml`; call it with the GPUs the machine should have."""

    def install(*gpus: FakeGpu, loaded: bool = True) -> FakeDriver:
        driver = FakeDriver(list(gpus) or [FakeGpu()], loaded=loaded)
        monkeypatch.setitem(sys.modules, "pynvml", driver.module())
        return driver

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return install


@pytest.fixture
def no_nvml(fake_nvml):
    """A machine where NVML's library is absent (as on CI runners without a GPU)."""
    return fake_nvml(loaded=False)


def write_rapl_zone(root, name: str, zone: str, energy_uj: int, max_uj: int = 262143328850,
                    readable: bool = True):
    path = root / zone
    path.mkdir(parents=True, exist_ok=True)
    (path / "name").write_text(name + "\n")
    (path / "max_energy_range_uj").write_text(f"{max_uj}\n")
    energy = path / "energy_uj"
    energy.write_text(f"{energy_uj}\n")
    if not readable:
        energy.chmod(0)
    return energy


@pytest.fixture
def fake_rapl(tmp_path):
    """A powercap tree with one package and its DRAM domain; returns (root, package file, dram file)."""
    root = tmp_path / "powercap"
    package = write_rapl_zone(root, "package-0", "intel-rapl:0", 1_000_000)
    write_rapl_zone(root, "core", "intel-rapl:0:0", 500_000)  # inside the package: must not be summed
    dram = write_rapl_zone(root, "dram", "intel-rapl:0:1", 2_000_000)
    (root / "intel-rapl").mkdir()  # the control-type directory, not a zone
    return root, package, dram
