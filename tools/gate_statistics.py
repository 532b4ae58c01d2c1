"""Monte-Carlo check of the baseline gate's error rates under realistic noise (not a unit test).

Two-level model (docs/statistics.md): a suite of B tests, each with F independent metric families, saved
over k runs and then run once more. Every value is multiplicative noise around a true level:

    value[test, family, run, round] = level x exp(c_run + u[test, family, run] + w[test, family, run, round])
    c_run   drift of the whole machine in that run, shared by every test            CV `common`
    u       drift of one test (and family) in that run                              CV `specific`
    w       round-to-round noise within a run                                       CV `within`
    probe   the calibration probe's reading of c_run, with its own error (shared)   CV `probe` (None: no probe)

The tests' noise levels vary (x [2/3, 1.5], log-uniform). Metrics with a probe are wall-clock figures,
divided by it; without one they are CPU-time or GPU energy figures, compared raw. Each simulated comparison
goes through the real `compare_metric` with the suite's defaults: the history rule with the pool of all the
suite's stored histories (gate/history.py) when k >= 3, the within-run Welch rule otherwise. A test fails
when any of its families says REGRESSION. Reported per scenario:

- A/A false alarms per test (target < 1 %), with one round and with the default 5 rounds;
- detection of a 30 % regression with k = 5 saved runs and 1 round (target >= 95 % in the issue's model);
- detection of a 15 % regression with the default rounds;
- the same A/A rate for the within-run rule alone (what the gate did before run histories), for contrast.

Exits 1 if the simulation shows a target missed (its 2-standard-error interval lies beyond it) in the
scenario the targets are set for; the other scenarios show, honestly, where the targets do not hold.
`--suites` trades time for precision (about 0.15 s of CPU per suite and scenario; the default fits CI's
minute).

    python tools/gate_statistics.py [--suites N] [--seed S] [--runs K] [--scenarios 0,1]
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from dataclasses import dataclass

from pytest_energy.config import DEFAULT_ROUNDS, DEFAULT_TOLERANCE
from pytest_energy.gate.compare import compare_metric
from pytest_energy.gate.history import HISTORY_ALPHA, RunSummary, pool
from pytest_energy.records import Metric

TARGET_FALSE_ALARM = 0.01
TARGET_DETECTION_30 = 0.95
TESTS, FAMILIES = 25, 4
PROBE_S = 0.03


@dataclass(frozen=True)
class Scenario:
    name: str
    common: float  # CV of the run effect shared by every test
    specific: float  # CV of each test's own run-to-run drift
    within: float  # CV of the rounds within one run
    probe: float | None  # CV of the probe's error; None: no probe (the metrics are not wall-clock)
    target: bool = False  # the targets apply


SCENARIOS = (
    Scenario("issue's model on a shared runner: 10 % run drift common to the run (probe error 3 %), "
             "2 % per test, 3 % within", 0.10, 0.02, 0.03, 0.03, target=True),
    Scenario("issue's model if the 10 % drift were each test's own (nothing shared to remove)",
             0.0, 0.10, 0.03, 0.03),
    Scenario("this machine, wall clock (measured: 25 % common, probe error 3 %, 4 % per test, 10 % within)",
             0.25, 0.04, 0.10, 0.03),
    Scenario("this machine, CPU time / estimate energy (measured: 3 % common, 3 % per test, 5 % within; no probe)",
             0.03, 0.03, 0.05, None),
    Scenario("dedicated GPU runner, NVML (modelled: 1 % common, 1.5 % per test, 1 % within; no probe)",
             0.01, 0.015, 0.01, None),
)


def _lsd(cv: float) -> float:
    """sd of the log of a log-normal factor with coefficient of variation `cv`."""
    return math.sqrt(math.log1p(cv * cv))


def simulate_suite(rng: random.Random, sc: Scenario, k: int, rounds: int,
                   deltas: tuple[float, ...]) -> tuple[dict[float, list[bool]], list[bool]]:
    """One suite: per delta, whether each test failed (history rule); and A/A failures of the within-run rule."""
    ids = [f"run{i}" for i in range(k + 1)]
    c = [rng.gauss(0.0, _lsd(sc.common)) for _ in ids]
    probes = [PROBE_S * math.exp(ci + rng.gauss(0.0, _lsd(sc.probe))) for ci in c] if sc.probe is not None else None
    exponent = 1 if probes is not None else 0
    series = []  # (history, latest run's samples, current samples)
    for _ in range(TESTS * FAMILIES):
        h = math.exp(rng.uniform(-math.log(1.5), math.log(1.5)))
        level = 10.0 ** rng.uniform(-2.0, 2.0)
        runs = []
        for i in range(k + 1):
            u = rng.gauss(0.0, _lsd(sc.specific) * h)
            runs.append([level * math.exp(c[i] + u + rng.gauss(0.0, _lsd(sc.within) * h)) for _ in range(rounds)])
        history = [RunSummary.of(runs[i], ids[i], probes[i] if probes else None) for i in range(k)]
        series.append((history, runs[k - 1], runs[k]))
    pooled = pool([(history, exponent) for history, _, _ in series])
    current_probe = probes[k] if probes else None
    failed: dict[float, list[bool]] = {}
    for delta in deltas:
        flags = []
        for start in range(0, len(series), FAMILIES):
            regressed = False
            for history, latest, current in series[start:start + FAMILIES]:
                v = compare_metric(Metric("t", "s", samples=latest), Metric("t", "s", samples=[x * (1 + delta)
                                                                                                 for x in current]),
                                   DEFAULT_TOLERANCE, history=history, pooled=pooled, current_probe=current_probe,
                                   exponent=exponent)
                regressed = regressed or v.verdict == "REGRESSION"
            flags.append(regressed)
        failed[delta] = flags
    welch = []
    for start in range(0, len(series), FAMILIES):
        welch.append(any(compare_metric(Metric("t", "s", samples=latest), Metric("t", "s", samples=current),
                                        DEFAULT_TOLERANCE).verdict == "REGRESSION"
                         for _, latest, current in series[start:start + FAMILIES]))
    return failed, welch


@dataclass
class Rate:
    hits: int = 0
    n: int = 0
    per_suite: list[float] | None = None

    def add(self, flags: list[bool]) -> None:
        self.hits += sum(flags)
        self.n += len(flags)
        self.per_suite = (self.per_suite or []) + [sum(flags) / len(flags)]

    @property
    def rate(self) -> float:
        return self.hits / self.n if self.n else math.nan

    @property
    def se(self) -> float:
        """Standard error clustered by suite: the tests of one suite share its runs' drift."""
        ps = self.per_suite or []
        if len(ps) < 2:
            return math.nan
        mean = sum(ps) / len(ps)
        return math.sqrt(sum((p - mean) ** 2 for p in ps) / (len(ps) - 1) / len(ps))

    def text(self) -> str:
        if math.isnan(self.se):
            return f"{self.rate:.1%}"
        return f"{self.rate:.2%} +-{2 * self.se:.2%}" if self.rate < 0.1 else f"{self.rate:.1%} +-{2 * self.se:.1%}"


def run_scenario(rng: random.Random, sc: Scenario, suites: int, k: int) -> dict[str, Rate]:
    rates = {key: Rate() for key in ("aa1", "aa5", "det30_1", "det15_5", "det30_5", "det15_1", "welch_aa5",
                                     "suite_aa1")}
    for _ in range(suites):
        one, _ = simulate_suite(rng, sc, k, 1, (0.0, 0.15, 0.30))
        five, welch5 = simulate_suite(rng, sc, k, DEFAULT_ROUNDS, (0.0, 0.15, 0.30))
        rates["aa1"].add(one[0.0])
        rates["det15_1"].add(one[0.15])
        rates["det30_1"].add(one[0.30])
        rates["aa5"].add(five[0.0])
        rates["det15_5"].add(five[0.15])
        rates["det30_5"].add(five[0.30])
        rates["welch_aa5"].add(welch5)
        rates["suite_aa1"].add([any(one[0.0])])
    return rates


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suites", type=int, default=30, help=f"simulated suites per scenario (x {TESTS} tests)")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--runs", type=int, default=5, help="saved runs in every history (k)")
    ap.add_argument("--scenarios", default="", help="comma-separated indices into SCENARIOS (default: all)")
    args = ap.parse_args(argv)
    if args.suites < 2 or args.runs < 1:
        ap.error("--suites must be >= 2 and --runs >= 1")
    chosen = [SCENARIOS[int(i)] for i in args.scenarios.split(",")] if args.scenarios else list(SCENARIOS)
    rng = random.Random(args.seed)
    print(f"two-level model: {args.suites} suites x {TESTS} tests x {FAMILIES} independent metric families, "
          f"k = {args.runs} saved runs; tolerance {DEFAULT_TOLERANCE:.0%}, history alpha {HISTORY_ALPHA:g} per "
          f"metric; a test fails when any family is a REGRESSION; seed {args.seed}")
    print("rates per test, +- 2 standard errors clustered by suite")
    failures = []
    t0 = time.perf_counter()
    header = (f"{'':4}{'A/A, 1 round':>16}{'A/A, 5 rounds':>16}{'30 %, 1 round':>16}{'15 %, 5 rounds':>16}"
              f"{'30 %, 5 rounds':>16}{'15 %, 1 round':>16}{'suite A/A, 1':>14}{'within-run A/A, 5':>19}")
    for i, sc in enumerate(chosen):
        rates = run_scenario(rng, sc, args.suites, args.runs)
        print(f"\n[{i}] {sc.name}" + ("   (targets apply)" if sc.target else ""))
        print(header)
        print(f"{'':4}" + "".join(f"{rates[key].text():>16}" for key in ("aa1", "aa5", "det30_1", "det15_5", "det30_5",
                                                                      "det15_1"))
              + f"{rates['suite_aa1'].text():>14}{rates['welch_aa5'].text():>19}")
        # A target counts as missed when the simulation shows it (the 2-se interval lies beyond it), so that a
        # short run's Monte-Carlo error alone cannot fail CI; docs/statistics.md gives the long run's figures.
        for key in ("aa1", "aa5"):
            if sc.target and rates[key].rate - 2 * rates[key].se >= TARGET_FALSE_ALARM:
                failures.append(f"[{i}] A/A false alarms {rates[key].text()} per test are not < "
                                f"{TARGET_FALSE_ALARM:.0%}")
        det = rates["det30_1"]
        if sc.target and args.runs == 5 and det.rate + 2 * det.se < TARGET_DETECTION_30:
            failures.append(f"[{i}] detection of 30 % with 1 round is {det.text()}, not >= {TARGET_DETECTION_30:.0%}")
        sys.stdout.flush()
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    for failure in failures:
        print("TARGET MISSED: " + failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
