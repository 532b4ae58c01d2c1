"""Measure run-to-run drift on this machine, and what the calibration probe removes (not a unit test).

Each run is a separate process (as CI runs are): it warms up, then does `--rounds` rounds of each workload,
every round bracketed by the calibration probe (pytest_energy.measure.probe). Reported, as coefficients of
variation (sd of natural logs): between runs (of the run means) and within runs (of the rounds), for wall
time, wall time divided by the geometric mean of the probes just before and after the round, CPU time
(what the estimate meter's energy is made of), and CPU time divided by the probes' CPU time.
docs/statistics.md quotes its output.

    python tools/measure_drift.py [--runs 15] [--gap 4] [--rounds 3] [--out drift.jsonl]

Workloads: a BERT-like block (768 -> 3072 -> 768, batch 16) with torch on 1 and on 2 threads, and pure
Python dict/str work. Needs torch. Takes about 10 s per run on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

WORKLOADS = ("torch_t1", "torch_t2", "python")


def _timed(fn) -> dict[str, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    c1, w1 = time.process_time(), time.perf_counter()
    return {"wall_s": w1 - w0, "cpu_s": c1 - c0}


def _python_work() -> int:
    d, words = {}, []
    for i in range(60000):
        s = f"k{i:06d}-{'abcdefgh'[i % 8] * (i % 5 + 1)}"
        d[s] = i
        words.append(s.upper())
    words.sort(key=lambda w: w[::-1])
    return sum(d.get(w.lower(), 0) for w in words[::3])


def one_run(rounds: int) -> dict:
    import torch

    from pytest_energy.measure.probe import probe

    torch.manual_seed(0)
    x = torch.randn(16, 768)
    lin1, lin2, ln = torch.nn.Linear(768, 3072), torch.nn.Linear(3072, 768), torch.nn.LayerNorm(768)

    def bert_block() -> float:
        with torch.no_grad():
            h = x
            for _ in range(50):
                h = ln(h + lin2(torch.nn.functional.gelu(lin1(h))))
        return float(h[0, 0])

    work = {"torch_t1": (1, bert_block), "torch_t2": (2, bert_block), "python": (None, _python_work)}
    for threads, fn in work.values():  # warmup, unmeasured
        if threads:
            torch.set_num_threads(threads)
        fn()
    out: dict = {name: [] for name in WORKLOADS}
    for _ in range(rounds):
        for name in WORKLOADS:
            threads, fn = work[name]
            if threads:
                torch.set_num_threads(threads)
            before = probe()
            m = _timed(fn)
            after = probe()
            m["probe_s"] = math.sqrt(before.wall_s * after.wall_s)  # bracketing probes, geometric mean
            m["probe_cpu_s"] = math.sqrt(before.cpu_s * after.cpu_s)
            out[name].append(m)
    out["loadavg"] = os.getloadavg()[0]
    return out


def _sd(xs: list[float]) -> float:
    return statistics.stdev(xs) if len(xs) > 1 else math.nan


def summarise(runs: list[dict]) -> str:
    loads = [r["loadavg"] for r in runs]
    lines = [f"{len(runs)} runs of {len(runs[0][WORKLOADS[0]])} rounds; 1-min load average at run end "
             f"{min(loads):.1f} to {max(loads):.1f} on {os.cpu_count()} cpus",
             "CV in % (sd of ln): between runs (run means) / within runs (rounds)",
             f"{'workload':<10} {'wall':>14} {'wall / probe':>14} {'CPU time':>14} {'CPU / probe CPU':>16}"]
    for name in WORKLOADS:
        cells = []
        for value in (lambda m: m["wall_s"], lambda m: m["wall_s"] / m["probe_s"], lambda m: m["cpu_s"],
                      lambda m: m["cpu_s"] / m["probe_cpu_s"]):
            logs = [[math.log(value(m)) for m in r[name]] for r in runs]
            between = _sd([statistics.fmean(x) for x in logs])
            within = math.sqrt(statistics.fmean([_sd(x) ** 2 for x in logs]))
            cells.append(f"{100 * between:5.1f} / {100 * within:4.1f}")
        lines.append(f"{name:<10} " + " ".join(f"{c:>14}" for c in cells[:3]) + f" {cells[3]:>16}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--gap", type=float, default=4.0, help="seconds between runs")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", help="also write every run as a JSON line here")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a child run
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(one_run(args.rounds)))
        return 0
    runs = []
    for i in range(args.runs):
        child = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", "--rounds", str(args.rounds)],
                               capture_output=True, text=True, check=True)
        runs.append(json.loads(child.stdout.strip().splitlines()[-1]))
        print(f"run {i + 1}/{args.runs} done", file=sys.stderr, flush=True)
        if i + 1 < args.runs:
            time.sleep(args.gap)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in runs)
    print(summarise(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
