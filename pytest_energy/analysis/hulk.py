"""HULK-style reference normalisation (Zhou et al. 2021, "HULK: An Energy Efficiency Benchmark Platform for
Responsible NLP", Table 3).

Per task, score = reference cost / model cost (time or energy), so the reference model scores 1.00 on every
task and a model twice as cheap scores 2.00. A model that never reached the task's cut-off has no cost
("N/A"); it scores nothing for that task, and the overall score is the plain sum of the task scores, as in
HULK's table (N/A shown with a 0.00 score).
"""

from __future__ import annotations

import math

from ..errors import UsageError

__all__ = ["normalise"]


def _check_cost(what: str, value: float) -> float:
    if not (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0):
        raise UsageError(f"{what} must be a positive finite number or None (N/A), got {value!r}")
    return float(value)


def normalise(model: dict[str, float | None],
              reference: dict[str, float | None]) -> tuple[dict[str, float | None], float]:
    """Per-task scores reference[task] / model[task] and their sum.

    Tasks are the reference's, in its order. A task the model lacks or has as None did not reach the cut-off:
    its score is None and adds 0 to the overall. The reference must have a positive cost for every task it
    lists and for every task the model reports (a reference that is N/A cannot normalise anything).
    """
    unknown = [t for t in model if t not in reference]
    if unknown:
        raise UsageError(f"the reference has no cost for task(s) {', '.join(map(repr, unknown))}: "
                         "the reference model must reach the cut-off on every task it normalises")
    scores: dict[str, float | None] = {}
    for task, ref_cost in reference.items():
        if ref_cost is None:
            raise UsageError(f"the reference cost for task {task!r} is N/A: the reference model must reach "
                             "the cut-off on every task it normalises")
        ref = _check_cost(f"reference cost for task {task!r}", ref_cost)
        cost = model.get(task)
        scores[task] = None if cost is None else ref / _check_cost(f"model cost for task {task!r}", cost)
    overall = math.fsum(s for s in scores.values() if s is not None)
    return scores, overall
