"""The gate's acceptance scenario on the real reference suite (not a unit test; ~1-2 min per protocol run on 2 cores).

In a temporary copy of the suite (`--suite protocols`: benchmarks/test_finetune.py and test_inference.py, the
default; `--suite whole`: all of benchmarks/; `--suite overhead`: test_overhead.py, for unchanged runs), with
its own baseline folder and the estimate meter:

1. `--saves` runs with --energy-save-baseline (default 3): the run history the gate judges against (`--saves 0`
   with the `--workdir` of an earlier scenario continues it: its saved runs are the history, its run numbers go on);
2. `--unchanged` runs of the same code (default 3): each must exit 0 (A/A; `--max-false-alarms` allows some);
3. `--planted-runs` runs (default 1) with a planted slowdown: `--plant inference` (default) or `training` (or
   `inference,training`: that many runs of each, taking turns) does
   `--factor` times the compute (default 2.0; `--slowdown` is the old name) with the same results, so tokens,
   FLOPs, steps and accuracy do not change (tools/acceptance_common.py). Each must exit 1, failing the planted
   test (test_inference / test_finetune_to_cutoff); with 3 or more saves, on measured metrics (time, energy)
   by the history rule.

`--neighbour-runs K` runs the last K unchanged and the last K planted runs beside tools/noisy_neighbour.py
(one core busy for the whole run); `--planted-neighbour-runs` sets the planted runs' K apart. `--extra-args`
goes to every pytest run (e.g. "--energy-confirm 2").

The slowdown is planted by the temporary copy's generated conftest.py (the suite's own conftest plus test-only
knobs read from PYTEST_ENERGY_ACCEPTANCE_SLOWDOWN / PYTEST_ENERGY_ACCEPTANCE_TRAIN_SLOWDOWN). The shipped
benchmarks have no such knob. Prints one line per suite run (exit code, neighbour, load average, duration,
failures with their verdict lines and second-look lines), then a summary per kind of run; exits 0 when the
scenario holds, 1 when it does not.

    python tools/acceptance_gate.py [--suite protocols|whole|overhead] [--saves 3] [--unchanged 3] [--planted-runs 1]
        [--plant inference|training|inference,training] [--factor 2.0] [--neighbour-runs K]
        [--planted-neighbour-runs K] [--extra-args "..."]
        [--max-false-alarms 0] [--workdir DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling tools modules, also when imported
from acceptance_common import (  # noqa: E402
    MEASURED_METRIC,
    PLANTED_TEST,
    PLANTS,
    SLOWDOWN_ENV,
    conftest_text,
    parse_output,
    read_report,
)
from noisy_neighbour import neighbour  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PROTOCOL_FILES = ("test_finetune.py", "test_inference.py")
# --suite overhead: the metering-overhead benchmark alone (its own assertion is a gate too), for unchanged runs.
SUITE_FILES = {"protocols": PROTOCOL_FILES, "overhead": ("test_overhead.py",)}
SUITES = ("protocols", "whole", "overhead")


def prepare(workdir: Path, suite: str = "protocols") -> list[str]:
    """Copy the suite into `workdir` with the generated conftest; returns the pytest arguments selecting it."""
    bench = REPO / "benchmarks"
    if suite == "whole":
        for src in sorted(bench.glob("*.py")):
            if src.name != "conftest.py":
                shutil.copy(src, workdir / src.name)
        selection = ["."]
    elif suite in SUITE_FILES:
        for name in SUITE_FILES[suite]:
            shutil.copy(bench / name, workdir / name)
        selection = list(SUITE_FILES[suite])
    else:
        raise ValueError(f"suite must be one of {', '.join(SUITES)}, got {suite!r}")
    (workdir / "conftest.py").write_text(conftest_text((bench / "conftest.py").read_text(encoding="utf-8")),
                                         encoding="utf-8")
    return selection


def run_suite(workdir: Path, selection: list[str], *, save: bool, plant: str, factor: float, beside: bool = False,
              extra_args: list[str] = (), report: Path | None = None) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
               HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    for kind, var in SLOWDOWN_ENV.items():
        env[var] = str(factor if kind == plant else 1.0)
    cmd = [sys.executable, "-m", "pytest", *selection, "--energy", "--energy-meter", "estimate",
           "--energy-baseline-dir", "baselines", "-p", "no:cacheprovider", "-q", "--rootdir", "."]
    if save:
        cmd.append("--energy-save-baseline")
    if report is not None:
        cmd += ["--energy-json", str(report)]
    cmd += list(extra_args)
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    with neighbour(cores=1) if beside else contextlib.nullcontext():
        proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    duration_s = time.perf_counter() - t0
    out = proc.stdout + proc.stderr
    record = {"save": save, "plant": plant, "factor": factor, "slowdown": factor if plant == "inference" else 1.0,
              "neighbour": beside, "exit": proc.returncode, "duration_s": round(duration_s, 1),
              "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2)}
    record.update(parse_output(out))
    record["report"] = read_report(report) if report is not None else {}
    record["output"] = out
    return record


def make_plan(saves: int, unchanged: int, planted_runs: int, neighbour_runs: int,
              plants: tuple[str, ...] = ("inference",),
              planted_neighbour_runs: int | None = None) -> list[tuple[str, bool, bool, str]]:
    """(kind, save, beside a neighbour, plant) per suite run: saves, unchanged runs, then `planted_runs` runs of each
    plant, the plants taking turns (so drift over the hours falls on each alike); the last `neighbour_runs`
    unchanged runs and the last `planted_neighbour_runs` (default: `neighbour_runs`) runs of each plant beside
    the neighbour."""
    k = neighbour_runs if planted_neighbour_runs is None else planted_neighbour_runs
    plan = [("save", True, False, "none")] * saves
    plan += [("unchanged", False, i >= unchanged - neighbour_runs, "none") for i in range(unchanged)]
    plan += [("planted", False, i >= planted_runs - k, plant) for i in range(planted_runs) for plant in plants]
    return plan


def detected(run: dict[str, Any], plant: str) -> bool:
    """A planted run is detected when it exits 1 failing the planted test."""
    return run["exit"] == 1 and any(PLANTED_TEST[plant] in t for t in run["failed"])


def measured_by_history(run: dict[str, Any], plant: str) -> list[str]:
    return [line for line in run["regression_lines"] if MEASURED_METRIC[plant].match(line) and "history" in line]


def summarize(runs: list[dict[str, Any]], plant: str, *, saves: int, max_false_alarms: int = 0) -> dict[str, Any]:
    """Counts per kind of suite run (with and without the neighbour) and the problems that fail the scenario.
    `plant` is one plant or several, comma-separated; a run's own "plant" (when it has one) says which it is, and
    `by_plant` counts each plant's planted runs apart."""
    plants = plant.split(",")

    def plant_of(r: dict[str, Any]) -> str:  # runs recorded before a run carried its plant: the first one
        return r["plant"] if r.get("plant") not in (None, "none") else plants[0]

    def group(kind: str, beside: bool | None = None, which: str | None = None) -> list[dict[str, Any]]:
        return [r for r in runs if r["kind"] == kind and (beside is None or r["neighbour"] == beside)
                and (which is None or plant_of(r) == which)]

    summary: dict[str, Any] = {"plant": plant, "by_plant": {}}
    problems = [f"save run {r['index']} exited {r['exit']}" for r in group("save") if r["exit"] != 0]
    for beside in (None, False, True):
        key = {None: "all", False: "quiet", True: "neighbour"}[beside]
        unchanged, planted = group("unchanged", beside), group("planted", beside)
        failing = [r for r in unchanged if r["exit"] != 0]
        summary[f"unchanged_{key}"] = {
            "runs": len(unchanged), "failing": len(failing),
            "tests": dict(Counter(t for r in failing for t in r["failed"]))}
        summary[f"planted_{key}"] = {"runs": len(planted), "detected": sum(detected(r, plant_of(r)) for r in planted)}
        for which in plants:
            mine = group("planted", beside, which)
            summary["by_plant"].setdefault(which, {})[key] = {"runs": len(mine),
                                                              "detected": sum(detected(r, which) for r in mine)}
    false_alarms = [r for r in group("unchanged") if r["exit"] != 0]
    if len(false_alarms) > max_false_alarms:
        problems += [f"unchanged run {r['index']} exited {r['exit']} ({', '.join(r['failed']) or 'no test named'})"
                     for r in false_alarms]
    for r in group("planted"):
        if not detected(r, plant_of(r)):
            problems.append(f"planted run {r['index']} ({plant_of(r)} {r['factor']:g}x) exited {r['exit']} "
                            f"(failed: {', '.join(r['failed']) or 'nothing'})")
        elif saves >= 3 and not measured_by_history(r, plant_of(r)):
            problems.append(f"planted run {r['index']} failed, but not on measured time/energy by the history rule")
    # The plant must not change results: fine-tuning steps and score, inference accuracy as in the other runs.
    def results(rs: list[dict[str, Any]]) -> set[str]:
        return {json.dumps([r["finetune"], {t: v["accuracy"] for t, v in r["inference"].items()}], sort_keys=True)
                for r in rs if r["finetune"] or r["inference"]}
    before, after = results(group("save") + group("unchanged")), results(group("planted"))
    summary["results_before"], summary["results_planted"] = sorted(before), sorted(after)
    # None: nothing to compare (no planted runs, or a continuation without unplanted runs of its own)
    summary["results_unchanged"] = (after <= before) if before and after else None
    if summary["results_unchanged"] is False:
        problems.append("the planted runs' steps/score/accuracy differ from the unplanted runs': "
                        f"{sorted(after)} vs {sorted(before)}")
    summary["problems"] = problems
    return summary


def print_run(r: dict[str, Any]) -> None:
    label = r["kind"] + (f" {r['plant']} {r['factor']:g}x" if r["kind"] == "planted" else "")
    print(f"run {r['index']:2d} {label:<22} {'neighbour' if r['neighbour'] else 'quiet':<9} exit {r['exit']}  "
          f"{r['duration_s']:6.1f} s  load {r['load_before']:.2f} -> {r['load_after']:.2f}  "
          f"failed: {', '.join(r['failed']) or '-'}")
    for line in r["regression_lines"] + r["recheck_lines"] + r["cost_lines"]:
        print(f"        {line}")
    sys.stdout.flush()


def print_summary(s: dict[str, Any], factor: float) -> None:
    print()
    for key in ("all", "quiet", "neighbour"):
        u, p = s[f"unchanged_{key}"], s[f"planted_{key}"]
        if not (u["runs"] or p["runs"]):
            continue
        which = ", ".join(f"{t} x{n}" for t, n in sorted(u["tests"].items())) or "-"
        planted = "; ".join(f"planted {plant} {factor:g}x: {c[key]['detected']} of {c[key]['runs']} detected"
                            for plant, c in s["by_plant"].items())
        print(f"{key:<9}  unchanged: {u['failing']} of {u['runs']} runs failing ({which});  {planted}")
    if s["results_unchanged"] is not None:
        print("results (fine-tune steps/score, inference accuracy) unchanged by the plant: "
              f"{'yes' if s['results_unchanged'] else 'NO'}")
    elif s["results_planted"]:
        # --saves 0 --unchanged 0 continues a history without unplanted runs of its own: nothing to compare with
        print("results (fine-tune steps/score, inference accuracy): no unplanted run in this invocation to compare "
              "with; see results_planted in --json")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", choices=SUITES, default="protocols")
    ap.add_argument("--saves", type=int, default=3)
    ap.add_argument("--unchanged", type=int, default=3)
    ap.add_argument("--planted-runs", type=int, default=1)
    ap.add_argument("--plant", default="inference",
                    help=f"what the planted runs slow down: {' or '.join(PLANTS)}, or both comma-separated (they take "
                         "turns, sharing the saves)")
    ap.add_argument("--factor", "--slowdown", dest="factor", type=float, default=2.0,
                    help="planted compute factor (--slowdown: the old name)")
    ap.add_argument("--neighbour-runs", type=int, default=0,
                    help="the last K unchanged and the last K planted runs run beside a noisy neighbour")
    ap.add_argument("--planted-neighbour-runs", type=int, default=None,
                    help="the last K planted runs of each plant beside the neighbour (default: --neighbour-runs)")
    ap.add_argument("--extra-args", default="", help="arguments added to every pytest run (one shell-quoted string)")
    ap.add_argument("--max-false-alarms", type=int, default=0, help="unchanged runs allowed to fail")
    ap.add_argument("--workdir", help="keep the copy, its baselines and the outputs here (default: a temp dir)")
    ap.add_argument("--json", help="write the summary and every run's record (outputs included) to this file")
    args = ap.parse_args(argv)
    plants = tuple(args.plant.split(","))
    if any(p not in PLANTS for p in plants) or len(set(plants)) != len(plants):
        ap.error(f"--plant must be {', '.join(PLANTS)} or both comma-separated, got {args.plant!r}")
    if args.saves < 0 or args.unchanged < 0 or args.planted_runs < 0 or not args.factor > 1.0:
        ap.error("--saves, --unchanged and --planted-runs must be >= 0, and --factor > 1")
    if args.saves == 0 and not (args.workdir and any((Path(args.workdir) / "baselines").glob("**/*.json"))):
        # 0 saves continues a scenario: the history must already be in --workdir (a gate with none judges nothing).
        ap.error("--saves 0 needs a --workdir whose baselines/ holds the saved runs of an earlier scenario")
    if args.neighbour_runs < 0 or args.max_false_alarms < 0 or (args.planted_neighbour_runs or 0) < 0:
        ap.error("--neighbour-runs, --planted-neighbour-runs and --max-false-alarms must be >= 0")
    extra = shlex.split(args.extra_args)

    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="pytest-energy-acceptance-"))
    workdir.mkdir(parents=True, exist_ok=True)
    selection = prepare(workdir, args.suite)
    print(f"acceptance scenario ({args.suite} suite) in {workdir} (cpus {os.cpu_count()}, load "
          f"{os.getloadavg()[0]:.2f}); extra args: {' '.join(extra) or '-'}", flush=True)
    runs = []
    first = 1 + max((int(p.name[3:5]) for p in workdir.glob("run[0-9][0-9]-*.txt")), default=0)  # keep earlier runs
    plan = make_plan(args.saves, args.unchanged, args.planted_runs, args.neighbour_runs, plants,
                     args.planted_neighbour_runs)
    for i, (kind, save, beside, plant) in enumerate(plan, first):
        factor = args.factor if kind == "planted" else 1.0
        r = run_suite(workdir, selection, save=save, plant=plant, factor=factor, beside=beside, extra_args=extra,
                      report=workdir / f"run{i:02d}-{kind}.json")
        r["index"], r["kind"], r["plant"], r["factor"] = i, kind, plant, factor
        runs.append(r)
        (workdir / f"run{i:02d}-{kind}.txt").write_text(r["output"], encoding="utf-8")
        print_run(r)
    saves = len(list(workdir.glob("run[0-9][0-9]-save.txt")))  # this scenario's and an earlier one's (--saves 0)
    summary = summarize(runs, args.plant, saves=saves, max_false_alarms=args.max_false_alarms)
    print_summary(summary, args.factor)
    if saves < 3:
        print(f"note: with {saves} save(s) the gate has no run history yet (3 needed): within-run verdicts")
    for p in summary["problems"]:
        print(f"SCENARIO FAILED: {p}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps({"workdir": str(workdir), "settings": vars(args), "summary": summary,
                                               "runs": runs}, indent=2), encoding="utf-8")
    return 1 if summary["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
