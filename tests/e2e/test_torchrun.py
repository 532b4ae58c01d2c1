"""pytest under torchrun (two ranks, gloo, CPU): each rank meters its own GPU, rank 0 alone combines, gates,
reports and saves; with the user's process group or without one; and without torchrun's agent store."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

pytest.importorskip("torch.distributed.run", reason="torchrun needs torch.distributed")

pytestmark = pytest.mark.slow  # each test starts torchrun: two ranks that import torch

TESTS = {
    "test_a_no_group": """
import os
import time

import torch.distributed as dist

def test_without_a_process_group(energy):
    local_rank = int(os.environ["LOCAL_RANK"])
    with energy.measure("work"):
        time.sleep(0.3 + 0.2 * local_rank)  # rank 0: 0.3 s on GPU 0, rank 1: 0.5 s on GPU 1
    assert not dist.is_initialized()  # pytest-energy made no process group

def test_rounds(energy):
    energy(time.sleep, 0.2)
""",
    "test_b_user_group": """
import time

import pytest
import torch
import torch.distributed as dist

@pytest.fixture
def process_group():
    dist.init_process_group("gloo")  # the code under test makes its own group (NCCL on GPUs)
    yield
    dist.destroy_process_group()

def test_with_the_users_process_group(process_group, energy):
    rank, world = dist.get_rank(), dist.get_world_size()
    dist.barrier()
    with energy.measure("step"):
        time.sleep(0.2 + 0.2 * rank)
        x = torch.full((4,), float(rank + 1))
        dist.all_reduce(x)  # every rank's window ends together
    assert x.tolist() == [world * (world + 1) / 2] * 4
""",
}
OPTIONS = ("-p", "no:cacheprovider", "--energy", "--energy-rounds", "2", "--energy-warmup", "0",
           "--energy-json", "report.json", "--energy-save-baseline", "--energy-dist-timeout-s", "60")


def _torchrun(pytester, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "pytest", *args], cwd=pytester.path, capture_output=True, text=True, timeout=300)


def test_two_ranks_one_report_from_rank0_summing_both_gpus(pytester, fake_gpus):
    watts = fake_gpus(100.0, 300.0)
    pytester.makepyfile(**TESTS)
    done = _torchrun(pytester, "-p", "fakegpus", "--energy-meter", "nvml", *OPTIONS)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "rank 1: energy results are combined, gated and reported by rank 0" in out
    assert out.count("wrote report.json") == 1  # rank 0's summary; rank 1 wrote nothing
    host = socket.gethostname()
    assert f"rank 0 ({host}, local rank 0) meters {host}/gpu0" in out
    assert f"rank 1 ({host}, local rank 1) meters {host}/gpu1" in out
    report = json.loads((pytester.path / "report.json").read_text())
    assert report["machine_info"]["distributed"] == "2 ranks on 1 node(s)"
    assert len(report["machine_info"]["gpus"]) == 2
    benchmarks = {b["name"]: b for b in report["benchmarks"]}
    assert set(benchmarks) == {"test_without_a_process_group", "test_rounds", "test_with_the_users_process_group"}
    for bench in benchmarks.values():
        energy = bench["energy"]
        assert set(energy["devices"]) == {f"{host}/gpu0", f"{host}/gpu1"}
        assert [r["meters"] for r in energy["placement"]["distributed"]["ranks"]] == [[f"{host}/gpu0"],
                                                                                      [f"{host}/gpu1"]]
        per_rank = energy["per_rank"]
        for i, energy_j in enumerate(energy["data"]):
            d0, d1 = per_rank["0"]["duration_s"][i], per_rank["1"]["duration_s"][i]
            # the sum over both GPUs, each for its own rank's window; the duration is the longest rank's
            assert energy_j == pytest.approx(watts[0] * d0 + watts[1] * d1, rel=0.02), bench["name"]
            assert bench["stats"]["data"][i] == max(d0, d1)
    entries = json.loads((pytester.path / "baselines" / "test_a_no_group.json").read_text())["entries"]
    assert entries["test_a_no_group.py::test_without_a_process_group"]["machine"]["distributed"] == \
        "2 ranks on 1 node(s)"


def test_a_failure_on_rank1_fails_the_job_and_rank0_still_reports(pytester, fake_gpus):
    fake_gpus(100.0, 300.0)
    pytester.makepyfile(test_fail="""
import os
import time

def test_fails_on_rank_1(energy):
    with energy.measure("work"):
        time.sleep(0.1)
    assert os.environ["RANK"] == "0"

def test_fine(energy):
    energy(time.sleep, 0.05)
""")
    done = _torchrun(pytester, "-p", "fakegpus", "--energy-meter", "nvml", *OPTIONS)
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "test_fail.py::test_fails_on_rank_1: not combined: failed or skipped on rank(s) 1" in out
    assert "FAILED on rank 1: test_fail.py::test_fails_on_rank_1 (call)" in out
    report = json.loads((pytester.path / "report.json").read_text())  # written although rank 1 failed first
    assert [b["name"] for b in report["benchmarks"]] == ["test_fine"]
    assert report["energy"]["exitstatus"] == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_without_an_agent_store_rank0_serves_and_the_estimates_add_up(pytester):
    """srun/mpirun-style launch (only the env:// variables): rank 0 serves the store; the estimate meter
    counts each rank's own CPU time, so the combined figure is the sum over the ranks' processes."""
    pytester.makepyfile(test_cpu="""
def burn(n):
    return sum(i * i for i in range(n))

def test_burn(energy):
    energy(burn, 300_000)
""")
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "WORLD_SIZE": "2",
           "LOCAL_WORLD_SIZE": "2"}
    for name in ("TORCHELASTIC_USE_AGENT_STORE", "TORCHELASTIC_RUN_ID"):
        env.pop(name, None)
    cmd = [sys.executable, "-m", "pytest", "--energy-meter", "estimate", *OPTIONS]
    procs = [subprocess.Popen(cmd, cwd=pytester.path, env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for r in (1, 0)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert "exchange: TCPStore served by rank 0" in outs[1]
    (bench,) = json.loads((pytester.path / "report.json").read_text())["benchmarks"]
    energy = bench["energy"]
    assert set(energy["devices"]) == {"rank0/cpu-estimate", "rank1/cpu-estimate"}
    assert energy["method"] == "estimate"
    for i, energy_j in enumerate(energy["data"]):
        parts = [energy["per_rank"][r]["energy_j"][i] for r in ("0", "1")]
        assert all(p > 0 for p in parts) and energy_j == pytest.approx(sum(parts))
