"""Fake GPUs for runs in other processes (pytest-xdist workers, torchrun ranks).

The `fake_nvml` fixture patches this process only. A run in other processes loads `-p fakegpus`: a
plugin module written into the pytester folder that installs the fake driver at import, in the
controller and in every worker or rank. It exists only in the tests' temporary folders.
"""

from __future__ import annotations

import os

import pytest

# The plugin imports the session and the measurement layer only with --energy, so an in-process pytester run
# imports them and unloads them when it ends, while `pytest_energy.session` stays an attribute of the package:
# a monkeypatch by dotted path ("pytest_energy.session.open_meter") would then patch that stale module and the
# next run a fresh one. Imported here once, they stay loaded for every run.
import pytest_energy.measure.probe  # noqa: F401
import pytest_energy.session  # noqa: F401

FAKE_GPUS_PLUGIN = '''
"""Test double: install a fake NVIDIA driver as `pynvml` (GPUs from FAKE_GPUS_W, watts per GPU)."""
import os
import sys

from pytest_energy.meters.fake import FakeDriver, FakeGpu

WATTS = [float(w) for w in os.environ.get("FAKE_GPUS_W", "100,300").split(",")]
DRIVER = FakeDriver([FakeGpu(power_w=w, uuid=f"GPU-{i}{i}{i}{i}{i}{i}{i}{i}-0000-0000-0000-00000000000{i}",
                             counter_update_s=0.001) for i, w in enumerate(WATTS)])
sys.modules["pynvml"] = DRIVER.module()
'''


@pytest.fixture
def fake_gpus(pytester, monkeypatch):
    """Write the `fakegpus` plugin and make it importable in subprocesses; call with the watts per GPU."""
    pytester.makepyfile(fakegpus=FAKE_GPUS_PLUGIN)
    paths = (str(pytester.path), os.environ.get("PYTHONPATH"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)

    def install(*watts: float) -> list[float]:
        monkeypatch.setenv("FAKE_GPUS_W", ",".join(str(w) for w in watts))
        return list(watts)

    install(100.0, 300.0)
    return install
