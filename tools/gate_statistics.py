"""Monte-Carlo check of the baseline gate's error rates (not a unit test).

Simulates a baseline and a current run of ROUNDS rounds each, every sample = true value x (1 + CV x N(0, 1)),
and runs the real `compare_metric` with its defaults on them:

- A/A (no change): how often the gate says REGRESSION (false alarm, target < 1 %),
- a 15 % regression: how often it says REGRESSION (detection, target >= 95 %),

with the INCONCLUSIVE rates, and the same two rates for the naive rule "mean grew by more than 5 %" on the
very same samples, for contrast. Exits 1 if a target is missed.

    python tools/gate_statistics.py [--trials N] [--seed S] [--rounds R] [--cv C]
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time

from pytest_energy.config import DEFAULT_TOLERANCE
from pytest_energy.gate.compare import DEFAULT_ALPHA, compare_metric
from pytest_energy.records import Metric

TARGET_FALSE_ALARM = 0.01
TARGET_DETECTION = 0.95
REGRESSION_FACTOR = 1.15
NAIVE_THRESHOLD = 0.05


def simulate(trials: int, rounds: int, cv: float, factor: float, rng: random.Random) -> dict[str, float]:
    """Rates of each verdict of the gate, and of the naive rule, when the truth moves by `factor`."""
    counts = {"REGRESSION": 0, "INCONCLUSIVE": 0, "IMPROVED": 0, "PASS": 0, "naive": 0}
    true_energy_j = 100.0
    for _ in range(trials):
        base = [true_energy_j * (1.0 + cv * rng.gauss(0.0, 1.0)) for _ in range(rounds)]
        cur = [factor * true_energy_j * (1.0 + cv * rng.gauss(0.0, 1.0)) for _ in range(rounds)]
        verdict = compare_metric(Metric("energy_j", "J", samples=base), Metric("energy_j", "J", samples=cur))
        counts[verdict.verdict] += 1
        if math.fsum(cur) / rounds > (1.0 + NAIVE_THRESHOLD) * math.fsum(base) / rounds:
            counts["naive"] += 1
    return {k: v / trials for k, v in counts.items()}


def _ci95(rate: float, trials: int) -> float:
    """Half-width of the normal-approximation 95 % interval of a simulated rate."""
    return 1.96 * math.sqrt(max(rate * (1.0 - rate), 1.0 / trials) / trials)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=100000, help="simulated baseline/run pairs per scenario")
    ap.add_argument("--seed", type=int, default=20240501)
    ap.add_argument("--rounds", type=int, default=5, help="rounds per side (the plugin's default)")
    ap.add_argument("--cv", type=float, default=0.05, help="coefficient of variation of the noise")
    args = ap.parse_args(argv)
    if args.trials < 1 or args.rounds < 1 or not args.cv >= 0:
        ap.error("--trials and --rounds must be >= 1, --cv >= 0")

    rng = random.Random(args.seed)
    start_s = time.perf_counter()
    aa = simulate(args.trials, args.rounds, args.cv, 1.0, rng)
    reg = simulate(args.trials, args.rounds, args.cv, REGRESSION_FACTOR, rng)
    elapsed_s = time.perf_counter() - start_s

    n = args.trials
    print(f"gate: tolerance {DEFAULT_TOLERANCE * 100:g} %, alpha {DEFAULT_ALPHA:g}, mean + one-sided Welch; "
          f"{args.rounds} rounds a side, {args.cv * 100:g} % gaussian noise, {n} trials per scenario, "
          f"seed {args.seed}")
    rows = [
        ("A/A false alarm (REGRESSION)", aa["REGRESSION"], f"< {TARGET_FALSE_ALARM:.0%}", aa["naive"]),
        ("A/A INCONCLUSIVE", aa["INCONCLUSIVE"], "", None),
        ("A/A IMPROVED", aa["IMPROVED"], "", None),
        (f"{REGRESSION_FACTOR - 1:.0%} regression detected", reg["REGRESSION"], f">= {TARGET_DETECTION:.0%}",
         reg["naive"]),
        (f"{REGRESSION_FACTOR - 1:.0%} regression INCONCLUSIVE", reg["INCONCLUSIVE"], "", None),
    ]
    print(f"{'scenario':<34} {'gate':>16} {'target':>8} {'naive >' + format(NAIVE_THRESHOLD, '.0%'):>10}")
    for label, rate, target, naive in rows:
        gate = f"{rate:7.2%} +-{_ci95(rate, n):.2%}"
        print(f"{label:<34} {gate:>16} {target:>8} {'' if naive is None else format(naive, '.2%'):>10}")
    print(f"({elapsed_s:.1f} s)")

    failures = []
    if aa["REGRESSION"] >= TARGET_FALSE_ALARM:
        failures.append(f"false-alarm rate {aa['REGRESSION']:.2%} is not < {TARGET_FALSE_ALARM:.0%}")
    if reg["REGRESSION"] < TARGET_DETECTION:
        failures.append(f"detection rate {reg['REGRESSION']:.2%} is not >= {TARGET_DETECTION:.0%}")
    for failure in failures:
        print("TARGET MISSED: " + failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
