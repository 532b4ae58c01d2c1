"""Fixtures shared by the tests: the fake NVIDIA driver, a fake powercap tree, offline Hugging Face."""

from __future__ import annotations

import sys

import pytest

from pytest_energy.meters.fake import FakeDriver, FakeGpu

# pytester's in-process runs unload every module a run imported when it ends. matplotlib imported inside one
# (an --energy-html report draws figures) and again later mixes two generations of its classes
# ("Invalid arguments to set_clip_path"), so it is imported once here, before any run.
try:
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.figure  # noqa: F401
except ImportError:  # the plots extra is optional; tests that draw skip without it
    pass


@pytest.fixture(autouse=True, scope="session")
def _offline_hub():
    """No test may reach a model or data hub: these machines have no internet, and CI must not depend on it."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
            mp.setenv(name, "1")
        yield


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
def rapl_zone():
    """write_rapl_zone(root, name, zone, energy_uj, max_uj=..., readable=True): one powercap zone's files."""
    return write_rapl_zone


@pytest.fixture
def fake_rapl(tmp_path):
    """A powercap tree with one package and its DRAM domain; returns (root, package file, dram file)."""
    root = tmp_path / "powercap"
    package = write_rapl_zone(root, "package-0", "intel-rapl:0", 1_000_000)
    write_rapl_zone(root, "core", "intel-rapl:0:0", 500_000)  # inside the package: must not be summed
    dram = write_rapl_zone(root, "dram", "intel-rapl:0:1", 2_000_000)
    (root / "intel-rapl").mkdir()  # the control-type directory, not a zone
    return root, package, dram
