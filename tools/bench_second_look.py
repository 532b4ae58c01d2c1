"""What the second look costs a run that suspects nothing (issue 16: "an unflagged run takes no longer than
today"). A benchmark, not a unit test: wall-clock times on a shared machine, compared as ratios in one run.

A temporary suite of `--tests` energy benchmarks (1 ms of CPU each, 1 round) gets 3 saved runs; then pairs
of runs, in random order within each pair: `--energy-confirm 0` (the run as before the second look: every
energy test through pytest's own protocol) against the default (`--energy-confirm 3`: every energy test
through the second look's protocol, its reports logged after it ran). A run in which a test is suspected is
not an unflagged run: its pair is dropped and counted. Prints the median ratio default / off of the wall
times (and of the CPU times, which other jobs move far less). Target: <= 1.03.

    python tools/bench_second_look.py [--tests 200] [--pairs 8]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEST = '''
import time

import pytest


@pytest.mark.energy(rounds=1, warmup=0)
@pytest.mark.parametrize("i", range({n}))
def test_tiny(i):
    end = time.perf_counter() + 0.001
    while time.perf_counter() < end:
        pass
'''


def _run(folder: Path, *args: str) -> tuple[float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--energy",
                           "--energy-meter", "estimate", "--energy-min-round-s", "0", *args], cwd=folder,
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode not in (0, 1):
        raise SystemExit(f"pytest exited {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return wall, cpu, done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=200)
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-second-look-") as tmp:
        folder = Path(tmp)
        (folder / "test_tiny.py").write_text(TEST.format(n=args.tests))
        (folder / "pytest.ini").write_text("[pytest]\n")
        env_note = f"{args.tests} energy tests, load {os.getloadavg()[0]:.2f}"
        for _ in range(3):
            _run(folder, "--energy-save-baseline")
        walls, cpus, dropped = [], [], 0
        for _ in range(args.pairs):
            modes = [("off", ["--energy-confirm", "0"]), ("on", [])]
            rng.shuffle(modes)
            got = {}
            for name, extra in modes:
                got[name] = _run(folder, *extra)
            if "second look in this job" in got["on"][2]:
                dropped += 1  # something was suspected: a flagged run, not what this measures
                continue
            walls.append(got["on"][0] / got["off"][0])
            cpus.append(got["on"][1] / got["off"][1])
    if not walls:
        print(f"every pair had a suspected test ({dropped}): nothing measured")
        return 1
    print(f"second look on (default) / off (--energy-confirm 0), {env_note}, {len(walls)} pairs "
          f"({dropped} dropped: a test was suspected): wall {statistics.median(walls):.3f}x "
          f"(range {min(walls):.3f}-{max(walls):.3f}), CPU {statistics.median(cpus):.3f}x")
    return 0 if statistics.median(walls) <= 1.03 else 1


if __name__ == "__main__":
    sys.exit(main())
