"""Time loading (and pooling) the stored baselines of a large suite: issue 17's start-up target.

    python tools/baseline_load_time.py [--tests 10000] [--per-file 100] [--runs 10] [--repeat 5] [--cache]

Generates a baseline folder of `--tests` benchmarks (`--per-file` per module file), each with two measured
metrics (energy_j, duration_s: 5 samples, a `--runs`-run history) and one deterministic metric, as
`--energy-save-baseline` writes them; then prints the median wall time of `BaselineStore.load_all()` and of
`pool_histories` over the result (what a `pytest --energy` run pays at start-up). The files are written as
text, not by a save, so by default the folder has no pool cache (gate/pool_cache.py) and every file is parsed:
the start-up after a git merge or a hand edit. `--cache` writes the cache a save would write, then times the
start-up as a run after a save pays it, and reading every entry afterwards (what judging every test adds).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

MACHINE = {"cpu_count": 2, "cpu_model": "Intel(R) Xeon(R) Processor", "estimate_watts_per_core": 10.0, "gpus": [],
           "meter": "estimate", "method": "estimate", "platform": "Linux", "pytest_energy": "0.1.0",
           "python": "3.11.7"}


def generate(directory: Path, tests: int, per_file: int, runs: int) -> None:
    rng = random.Random(0)
    run_ids = [f"{i:012x}" for i in range(runs)]
    run_info = {rid: {"commit": "a" * 40, "datetime": f"2026-12-01T0{i % 10}:00:00+00:00",
                      "probe_s": 0.03 + 0.001 * i, "probe_id": "v1"} for i, rid in enumerate(run_ids)}
    for f in range(-(-tests // per_file)):
        module = f"benchmarks/test_m{f:04d}.py"
        entries = {}
        for t in range(min(per_file, tests - f * per_file)):
            metrics = {}
            for name, unit, centre in (("energy_j", "J", 10.0), ("duration_s", "s", 1.0)):
                samples = [centre * rng.uniform(0.9, 1.1) for _ in range(5)]
                metrics[name] = {"name": name, "unit": unit, "better": "lower", "kind": "measured",
                                 "samples": samples, "method": "estimate" if unit == "J" else None,
                                 "history": [{"run_id": rid, "mean": centre * rng.uniform(0.9, 1.1),
                                              "sd": centre * 0.02, "n": 5} for rid in run_ids]}
            metrics["steps"] = {"name": "steps", "unit": "steps", "better": "lower", "kind": "deterministic",
                                "samples": [40.0], "method": None}
            entries[f"{module}::test_t[{t}]"] = {
                "machine": MACHINE, "commit": {"id": "a" * 40, "dirty": False}, "datetime": "2026-12-01T09:00:00+00:00",
                "method": "estimate", "metrics": metrics, "runs": run_info, "extra_info": {"batch": 8}}
        name = module[: -len(".py")].replace("/", "__") + ".json"
        (directory / name).write_text(json.dumps({"schema_version": 2, "entries": entries}, sort_keys=True,
                                                 indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=10_000)
    parser.add_argument("--per-file", type=int, default=100)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one load")
    parser.add_argument("--cache", action="store_true", help="write the folder's pool cache first, as a save does")
    args = parser.parse_args(argv)

    from pytest_energy.gate.baselines import BaselineStore
    from pytest_energy.gate.judge import pool_histories

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        generate(directory, args.tests, args.per_file, args.runs)
        store = BaselineStore(directory)
        if args.cache and store.write_pool_cache(min_bytes=0) is None:
            raise RuntimeError("no pool cache can be written here: the modules' source is not readable")
        if args.profile:
            import cProfile
            import pstats

            cProfile.runctx("store.load_all()", globals(), {"store": store}, "/tmp/load.prof")
            pstats.Stats("/tmp/load.prof").sort_stats("cumulative").print_stats(25)
        load_s, pool_s, load_cpu, pool_cpu, read_cpu = [], [], [], [], []
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            entries = store.load_all()
            t1, c1 = time.perf_counter(), time.process_time()
            pool_histories(entries.values(), MACHINE, True)
            t2, c2 = time.perf_counter(), time.process_time()
            load_s.append(t1 - t0)
            pool_s.append(t2 - t1)
            load_cpu.append(c1 - c0)
            pool_cpu.append(c2 - c1)
            assert sum(1 for _ in entries.values()) == args.tests
            read_cpu.append(time.process_time() - c2)
        assert len(entries) == args.tests
    load, pool = statistics.median(load_s), statistics.median(pool_s)
    print(f"{args.tests} tests, {args.runs}-run histories, median of {args.repeat}: load {load:.3f} s, "
          f"pool {pool:.3f} s, together {load + pool:.3f} s wall; CPU time: load "
          f"{statistics.median(load_cpu):.3f} s, pool {statistics.median(pool_cpu):.3f} s; "
          f"{'pool cache used' if getattr(entries, 'vouched', False) else 'no pool cache'}; reading every entry "
          f"afterwards: CPU {statistics.median(read_cpu):.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
