"""The gate's decision for one test: compare its record with its baseline entry and say whether it fails.

The decision is data (an Outcome); turning it into words is the report layer's job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import TestSettings
from ..records import TestRecord, VerdictKind
from .baselines import BaselineEntry, machine_mismatch
from .compare import Verdict, compare_record


@dataclass
class Outcome:
    """What the gate decided for one test."""

    verdicts: list[Verdict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # no baseline, machine mismatch, ...
    baseline_file: str = ""  # where the baseline lives (as the user would type the path)
    failure: str | None = None  # why the test fails when it is not a regression (e.g. a missing baseline)
    gating: bool = True  # False while saving a baseline: regressions are shown, not failed

    @property
    def regressions(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.verdict == VerdictKind.REGRESSION]

    @property
    def failed(self) -> bool:
        return self.failure is not None or (self.gating and bool(self.regressions))

    def to_dict(self) -> dict[str, Any]:
        return {"verdicts": [v.to_dict() for v in self.verdicts], "notes": list(self.notes),
                "baseline_file": self.baseline_file, "failure": self.failure, "gating": self.gating}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Outcome:
        return cls(verdicts=[Verdict.from_dict(v) for v in d.get("verdicts", [])], notes=list(d.get("notes", [])),
                   baseline_file=d.get("baseline_file", ""), failure=d.get("failure"),
                   gating=d.get("gating", True))


def judge(record: TestRecord, entry: BaselineEntry | None, settings: TestSettings, *, machine: dict[str, Any],
          baseline_file: str, save_baseline: bool = False, require_baseline: bool = False) -> Outcome:
    """Compare a finished test with its baseline entry (None: there is none) and decide whether it fails.

    A run that saves baselines never fails on a regression: the user is recording a new reference.
    """
    outcome = Outcome(baseline_file=baseline_file, gating=not save_baseline)
    unknown = sorted(set(settings.metric_tolerances) - set(record.metrics))
    if unknown:
        outcome.failure = (f"energy marker: tolerance for unknown metric(s) {', '.join(map(repr, unknown))}; "
                           f"this test's metrics are {', '.join(sorted(record.metrics))}")
    if entry is None:
        if save_baseline:
            outcome.notes.append(f"no earlier baseline in {baseline_file}: this run's results become it")
            return outcome
        note = f"no baseline for this test in {baseline_file}; create one with --energy-save-baseline"
        outcome.notes.append(note)
        if require_baseline:
            outcome.failure = f"--energy-require-baseline: {note}"
        return outcome
    differences = machine_mismatch(entry.machine, machine)
    if differences:
        outcome.notes.append("baseline was measured on a different machine class, not compared: "
                             + "; ".join(differences))
        return outcome
    outcome.verdicts = compare_record(entry.metrics, record.metrics, settings.tolerance_for)
    return outcome
