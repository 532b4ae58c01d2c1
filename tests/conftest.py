"""Fixtures shared by the tests: the fake NVIDIA driver, a fake powercap tree, offline Hugging Face."""

from __future__ import annotations

import os
import sys

import pytest

from pytest_energy.meters.fake import FakeDriver, FakeGpu

# torch starts one compute thread per core in every process, and its threads spin-wait on each other. Under
# `-n 2` on 2 cores that is 4 spinning threads: the tiny models of these tests ran up to 30x slower (a sweep
# 5 s instead of 0.5 s). So each xdist worker gets its share of the cores, set before torch is imported below;
# the runs its tests start (subprocesses, torchrun ranks) inherit it. A serial run keeps torch's default, and a
# value set by hand wins.
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 0)
if _workers and "PYTEST_XDIST_WORKER" in os.environ:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _workers)))

# pytester's in-process runs unload every module a run imported when it ends. matplotlib imported inside one
# (an --energy-html report draws figures) and again later mixes two generations of its classes
# ("Invalid arguments to set_clip_path"), so it is imported once here, before any run.
try:
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.figure  # noqa: F401
except ImportError:  # the plots extra is optional; tests that draw skip without it
    pass
# The same for torch, whose C extension cannot be loaded a second time in one process: a test that imports it
# after an in-process run unloaded it would crash the whole session (order-dependent, "bad call flags").
try:
    import torch  # noqa: F401
except ImportError:  # the torch extra is optional; tests that need it skip without it
    pass


@pytest.fixture(autouse=True, scope="session")
def _offline_hub():
    """No test may reach a model or data hub: these machines have no internet, and CI must not depend on it."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
            mp.setenv(name, "1")
        yield


@pytest.fixture(autouse=True)
def _not_an_xdist_worker(monkeypatch):
    """Runs a test starts (pytester, subprocesses) must not look like pytest-xdist workers.

    Under `-n 2` this process is a worker, and xdist puts PYTEST_XDIST_WORKER etc. in its environment. A pytest
    run started from here inherits them: pytest-benchmark then disables itself ("benchmarks are automatically
    disabled because xdist plugin is active") and pytest-energy counts the outer workers as its own. The outer
    session read them at configure time already, so removing them here changes nothing for it.
    """
    for name in [n for n in os.environ if n.startswith("PYTEST_XDIST_")]:
        monkeypatch.delenv(name)


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


def _compare_loads(path, workdir, expected: int) -> list[list[str]]:
    """Run the real `pytest-benchmark compare --histogram --csv` on `path` and check it loaded every benchmark.

    compare exits 0 even when it refuses a file (it only warns "Failed to load" and drops the whole file), and
    writes a header-only CSV then: so the check is no "Failed to load", one CSV row per benchmark, an SVG.
    Returns the CSV rows.
    """
    import csv
    import importlib.util
    import subprocess

    # Looked up, not imported: importing pygal adds a broken finder to sys.meta_path of this process.
    for name in ("pytest_benchmark", "pygal"):
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"{name} is not installed (pip install 'pytest-benchmark[histogram]')")
    workdir.mkdir(parents=True, exist_ok=True)
    out_csv = workdir / "compare.csv"
    # cwd=workdir: compare imports ./conftest.py and reads the config files of its working directory.
    done = subprocess.run([sys.executable, "-m", "pytest_benchmark", "compare", "--histogram", str(workdir / "hist"),
                           "--csv", str(out_csv), str(path.resolve())], cwd=workdir, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Failed to load" not in done.stderr, done.stderr
    with out_csv.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))[1:]
    assert len(rows) == expected, (rows, done.stderr)
    assert list(workdir.glob("hist*.svg")), "no histogram written"
    return rows


@pytest.fixture
def compare_loads():
    """compare_loads(json_path, workdir, expected=N): the real `pytest-benchmark compare` loads all N benchmarks."""
    return _compare_loads
