"""Monte-Carlo check of the gate on HULK scores against a stored reference (not a unit test).

A test's score samples are reference mean / cost sample (pytest_energy.analysis.hulk_store.add_scores), compared
with the baseline's score samples by the real `compare_metric` (higher is better, measured). Costs are simulated
as in tools/gate_statistics.py: ROUNDS samples per side, each true cost x (1 + CV x N(0, 1)). Scenarios:

- A/A: nothing changed (false alarms: REGRESSION on the score);
- the model's cost grew by 15 % (the score falls by 1 - 1/1.15 = 13 %);
- the cost grew by 8.7 % = 1/(1 - tolerance) - 1 at the default 8 %: the score falls by exactly the tolerance,
  where detection is ~50 % by construction;
- the reference was re-recorded 15 % cheaper, the model unchanged (the score falls by 13 % as well).

The same samples' verdicts on the cost metric itself are printed beside, for contrast.

    python tools/hulk_score_statistics.py [--trials N] [--seed S] [--rounds R] [--cv C]
"""

from __future__ import annotations

import argparse
import random

from pytest_energy.gate.compare import compare_metric
from pytest_energy.records import Metric

TRUE_COST = 10.0
REFERENCE = 20.0  # the stored reference's mean cost: the score is about 2


def _verdicts(base_cost: list[float], cur_cost: list[float], ref_base: float, ref_cur: float) -> tuple[str, str]:
    score = compare_metric(Metric("hulk.score", "1", "higher", samples=[ref_base / c for c in base_cost]),
                           Metric("hulk.score", "1", "higher", samples=[ref_cur / c for c in cur_cost]))
    cost = compare_metric(Metric("cost", "s", samples=base_cost), Metric("cost", "s", samples=cur_cost))
    return str(score.verdict), str(cost.verdict)


def simulate(trials: int, rounds: int, cv: float, cost_factor: float, reference_factor: float,
             rng: random.Random) -> dict[str, float]:
    counts = {"score REGRESSION": 0, "score INCONCLUSIVE": 0, "cost REGRESSION": 0}
    for _ in range(trials):
        base = [TRUE_COST * (1.0 + cv * rng.gauss(0.0, 1.0)) for _ in range(rounds)]
        cur = [cost_factor * TRUE_COST * (1.0 + cv * rng.gauss(0.0, 1.0)) for _ in range(rounds)]
        score, cost = _verdicts(base, cur, REFERENCE, reference_factor * REFERENCE)
        counts["score REGRESSION"] += score == "REGRESSION"
        counts["score INCONCLUSIVE"] += score == "INCONCLUSIVE"
        counts["cost REGRESSION"] += cost == "REGRESSION"
    return {k: v / trials for k, v in counts.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=20240501)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cv", type=float, default=0.05)
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    scenarios = [("A/A (no change)", 1.0, 1.0), ("model cost +15 %", 1.15, 1.0),
                 ("model cost +8.7 % (score -8 %)", 1.0 / 0.92, 1.0), ("reference re-recorded 15 % cheaper", 1.0, 0.85)]
    print(f"{args.trials} trials per scenario, {args.rounds} samples per side, cost CV {args.cv:g}, default "
          "tolerance and alpha")
    print(f"{'scenario':38} {'score REGRESSION':>17} {'score INCONCL.':>15} {'cost REGRESSION':>16}")
    for name, cost_factor, reference_factor in scenarios:
        r = simulate(args.trials, args.rounds, args.cv, cost_factor, reference_factor, rng)
        print(f"{name:38} {r['score REGRESSION']:>16.2%} {r['score INCONCLUSIVE']:>15.2%} "
              f"{r['cost REGRESSION']:>15.2%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
