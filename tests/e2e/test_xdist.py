"""pytest -n N --energy on fake GPUs: each worker gets its own GPU before any conftest runs, meters only it,
says so in every result, and baselines carry the worker's fingerprint."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("xdist")

pytestmark = pytest.mark.slow  # each test starts pytest -n 2 or more: worker processes that import everything

SUITE = {
    "conftest": """
import os
import pytest

CVD_AT_IMPORT = os.environ.get("CUDA_VISIBLE_DEVICES")  # what a conftest initialising CUDA here would get

@pytest.fixture
def cvd_at_import():
    return CVD_AT_IMPORT
""",
    "test_work": """
import time
import pytest

@pytest.mark.parametrize("i", range(6))
def test_work(energy, cvd_at_import, i):
    energy.extra_info["cvd_at_conftest_import"] = cvd_at_import
    energy(time.sleep, 0.3)  # long enough that a few ms of scheduling delay at an edge stays within 1 %
""",
}
# --energy-min-round-s 0: one 0.3 s call per round, as the windows above are sized (calibration would make
# each round ~1 s, ten NVML counter periods, and these tests three times slower).
COMMON = ("-p", "fakegpus", "-p", "no:cacheprovider", "--energy", "--energy-meter", "nvml", "--energy-rounds", "2",
          "--energy-warmup", "0", "--energy-min-round-s", "0")


def _benchmarks(path) -> list[dict]:
    return json.loads(path.read_text())["benchmarks"]


def test_each_worker_meters_exactly_its_own_gpu(pytester, fake_gpus):
    watts = fake_gpus(100.0, 300.0)
    pytester.makepyfile(**SUITE)
    result = pytester.runpytest_subprocess("-n", "2", *COMMON, "--energy-json", "report.json")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*pytest-xdist workers and their GPUs (1 each*", "*gw0: GPU 0 (GPU-0000*",
                                 "*gw1: GPU 1 (GPU-1111*"])
    used = {}
    for bench in _benchmarks(pytester.path / "report.json"):
        placement = bench["energy"]["placement"]
        (gpu,) = placement["gpus"]
        # The worker had its GPU before its conftest was imported, and its meter read nothing else.
        assert placement["cuda_visible_devices"] == gpu["uuid"] == bench["extra_info"]["cvd_at_conftest_import"]
        assert list(bench["energy"]["devices"]) == [f"gpu{gpu['index']}"]
        assert bench["energy"]["machine"]["gpu_uuids"] == [gpu["uuid"]]
        for energy_j, duration_s in zip(bench["energy"]["data"], bench["stats"]["data"]):
            assert energy_j == pytest.approx(watts[gpu["index"]] * duration_s, rel=0.02)
        assert used.setdefault(placement["worker"], gpu["index"]) == gpu["index"]  # a worker keeps its GPU
    assert sorted(used.values()) == [0, 1]  # both GPUs worked


def test_baselines_saved_under_xdist_are_compared_by_the_workers(pytester, fake_gpus):
    fake_gpus(200.0, 200.0)
    pytester.makepyfile(**SUITE)
    pytester.runpytest_subprocess("-n", "2", *COMMON, "--energy-save-baseline").assert_outcomes(passed=6)
    entries = json.loads((pytester.path / "baselines" / "test_work.json").read_text())["entries"]
    assert len(entries) == 6
    # Saved with the fingerprint of the worker that measured it (one GPU), not the controller's (two).
    assert {len(e["machine"]["gpus"]) for e in entries.values()} == {1}
    result = pytester.runpytest_subprocess("-n", "2", *COMMON, "--energy-json", "gated.json")
    result.assert_outcomes(passed=6)
    for bench in _benchmarks(pytester.path / "gated.json"):
        assert bench["energy"]["comparison"], bench["fullname"]  # compared: same machine class
    result.stdout.no_fnmatch_line("*different machine class*")


def test_workers_sharing_a_gpu_are_warned_about_and_not_compared_or_saved(pytester, fake_gpus):
    fake_gpus(100.0, 300.0)
    pytester.makepyfile(**SUITE)
    result = pytester.runpytest_subprocess("-n", "3", *COMMON, "--energy-save-baseline", "--energy-json", "r.json")
    result.stdout.fnmatch_lines([
        "*SharedDeviceWarning*3 workers but 2 block(s) of 1 GPU(s), so workers share GPUs: "
        "GPU 0 (GPU-00000000-*) by gw0, gw2.*GPU energy of every test on gw0, gw2 includes*",
        "*gw2: GPU 0 (GPU-0000*; shared with gw0*",
    ])
    assert result.ret == 1  # some results could not be saved: the user asked for a baseline
    result.stdout.fnmatch_lines(["*--energy-save-baseline: * result(s) measured while other workers used the same "
                                 "devices were not saved*"])
    saved = json.loads((pytester.path / "baselines" / "test_work.json").read_text())["entries"]
    for bench in _benchmarks(pytester.path / "r.json"):
        shared = bench["energy"]["placement"]["shared"]
        assert bool(shared) == (bench["energy"]["placement"]["worker"] in ("gw0", "gw2"))
        assert (bench["fullname"] in saved) == (not shared)
        if shared:
            assert bench["energy"]["comparison"] == []


def test_gpus_per_worker_larger_than_the_gpus_is_a_usage_error(pytester, fake_gpus):
    pytester.makepyfile(**SUITE)
    result = pytester.runpytest_subprocess("-n", "2", *COMMON, "--energy-gpus-per-worker", "3")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--energy-gpus-per-worker: 3 GPUs per worker asked for, but only 2 are visible*"])


def test_auto_starts_one_worker_per_gpu(pytester, fake_gpus):
    fake_gpus(100.0, 100.0, 100.0)
    pytester.makepyfile(**SUITE)
    result = pytester.runpytest_subprocess("-n", "auto", *COMMON)
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*3 workers*", "*gw2: GPU 2 (GPU-2222*"])


def test_workers_placed_by_hand_keep_their_gpus_and_sharing_is_still_said(pytester, fake_gpus):
    fake_gpus(100.0, 300.0)
    pytester.makepyfile(**SUITE)
    uuid1 = "GPU-11111111-0000-0000-0000-000000000001"
    tx = ["--tx", f"popen//env:CUDA_VISIBLE_DEVICES={uuid1}"] * 2
    result = pytester.runpytest_subprocess("-d", *tx, *COMMON, "--energy-json", "r.json")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*workers gw0, gw1 were placed on the same GPU(s) by --tx*",
                                 "*pytest-xdist workers and their GPUs (placed by hand with --tx):*"])
    for bench in _benchmarks(pytester.path / "r.json"):
        placement = bench["energy"]["placement"]
        assert placement["cuda_visible_devices"] == uuid1 and list(bench["energy"]["devices"]) == ["gpu1"]
        assert placement["shared"] and bench["energy"]["comparison"] == []
