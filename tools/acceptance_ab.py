"""The A/B acceptance scenario (issue 16): `--energy-against HEAD~1` on the protocol tests, in a clone.

1. `git clone` of this checkout's HEAD (committed state only) into a temporary folder;
2. optionally `--saves S` runs with --energy-save-baseline there, of the unplanted code, into a baseline folder
   outside the clone (the history a nightly run of the base would have saved); or `--baselines DIR`: a copy of
   the runs an earlier scenario saved on this machine (its workdir's baselines-saved/), to spend no time on saves;
3. one commit on top: `--plant inference|training` plants `--factor` (default 1.3) times the compute in
   pytest_energy/reference/models.make_predict / make_train_step (same results: tools/acceptance_common.py);
   `--plant none` commits nothing but an empty commit, so HEAD~1 is the same code. The commit is checked:
   one file changed (none for `none`), every hunk inside the planted function;
4. `--runs N` runs of
       python -m pytest benchmarks/test_finetune.py benchmarks/test_inference.py --energy --energy-against HEAD~1
   in the clone with PYTHONPATH=<clone> (the clone's pytest_energy is imported, not the editable install).
   The first `--no-baselines K` use an empty baseline folder each; the others the saved one (step 2) or the
   clone's baselines/. The last `--neighbour-runs K` run beside tools/noisy_neighbour.py (one core busy).

Reports per run the exit code, the failed tests, the A/B rule lines ("A/B against <sha> in this job, N pairs:
ratio r [lo, hi]"), the history screen's verdicts, the second-look and cost lines the terminal printed (and
the --energy-json report's recheck, when it has one); then a summary. Exits 0 when the scenario holds:
no unchanged run fails (`--plant none`), or the planted test fails in at least `--min-detected` runs
(default: all of them).

    python tools/acceptance_ab.py [--runs 10] [--plant none|inference|training] [--factor 1.3]
        [--neighbour-runs K] [--no-baselines K] [--saves S | --baselines DIR] [--against HEAD~1]
        [--extra-args "..."]
        [--min-detected N] [--workdir DIR] [--json OUT]
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
    MODELS_PATH,
    PLANTED_FUNCTION,
    PLANTED_TEST,
    PLANTS,
    hunks_outside,
    parse_output,
    plant_source,
    read_report,
)
from noisy_neighbour import neighbour  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PROTOCOL_TESTS = ("benchmarks/test_finetune.py", "benchmarks/test_inference.py")
GIT_ID = ["-c", "user.name=pytest-energy acceptance", "-c", "user.email=acceptance@localhost",
          "-c", "commit.gpgsign=false"]


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {repo}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def clone_head(source: Path, dest: Path) -> str:
    """Clone `source`'s HEAD commit into `dest` (a branch `acceptance` there); returns its sha."""
    sha = git(source, "rev-parse", "HEAD").strip()
    subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(source), str(dest)], check=True,
                   capture_output=True, text=True)
    try:
        git(dest, "checkout", "--quiet", "-B", "acceptance", sha)
    except RuntimeError:  # a detached HEAD that no branch holds: fetch it by name
        git(dest, "fetch", "--quiet", str(source), "HEAD")
        git(dest, "checkout", "--quiet", "-B", "acceptance", "FETCH_HEAD")
    return sha


def plant_commit(clone: Path, plant: str, factor: float) -> dict[str, Any]:
    """Commit the planted slowdown (or, for "none", an empty commit) in `clone` and check the commit's diff:
    one file for a plant, none otherwise, every hunk within the planted function. Raises on a bad diff."""
    if plant == "none":
        git(clone, *GIT_ID, "commit", "--quiet", "--allow-empty", "-m", "acceptance: unchanged (empty commit)")
    else:
        path = clone / MODELS_PATH
        old = path.read_text(encoding="utf-8")
        path.write_text(plant_source(old, plant, factor), encoding="utf-8")
        git(clone, *GIT_ID, "commit", "--quiet", "-m",
            f"acceptance: plant {factor:g}x the compute in {PLANTED_FUNCTION[plant]} (same results)", "--",
            MODELS_PATH)
    return check_plant(clone, plant)


def check_plant(clone: Path, plant: str) -> dict[str, Any]:
    """The HEAD commit's diff against HEAD~1: which files, and that a plant stays inside its function."""
    files = [f for f in git(clone, "diff", "--name-only", "HEAD~1", "HEAD").splitlines() if f]
    stat = git(clone, "diff", "--stat", "HEAD~1", "HEAD").strip()
    expected = [] if plant == "none" else [MODELS_PATH]
    if files != expected:
        raise RuntimeError(f"the {plant} commit changes {files or 'no file'}, expected {expected or 'none'}:\n{stat}")
    if plant != "none":
        outside = hunks_outside(git(clone, "diff", "-U0", "HEAD~1", "HEAD", "--", MODELS_PATH),
                                git(clone, "show", f"HEAD~1:{MODELS_PATH}"), git(clone, "show", f"HEAD:{MODELS_PATH}"),
                                PLANTED_FUNCTION[plant])
        if outside:
            raise RuntimeError(f"the planted commit changes lines outside {PLANTED_FUNCTION[plant]}(): {outside}")
    return {"files": files, "stat": stat, "head": git(clone, "rev-parse", "--short", "HEAD").strip(),
            "base": git(clone, "rev-parse", "--short", "HEAD~1").strip()}


def clone_env(clone: Path) -> dict[str, str]:
    """The clone's pytest_energy first and alone on the path (never the editable install of another tree)."""
    return dict(os.environ, PYTHONPATH=str(clone), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
                TRANSFORMERS_OFFLINE="1")


def imported_from(clone: Path) -> Path:
    """Where the runs' `import pytest_energy` resolves: must be the clone, else the plant would not be measured."""
    proc = subprocess.run([sys.executable, "-c", "import pytest_energy; print(pytest_energy.__file__)"], cwd=clone,
                          env=clone_env(clone), capture_output=True, text=True, check=True)
    where = Path(proc.stdout.strip()).resolve()
    if clone.resolve() not in where.parents:
        raise RuntimeError(f"with PYTHONPATH={clone}, pytest_energy is imported from {where}, not from the clone")
    return where


def pytest_cmd(*, against: str | None, baseline_dir: Path | None, save: bool, report: Path | None,
               extra_args: list[str] = ()) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", *PROTOCOL_TESTS, "--energy", "-p", "no:cacheprovider"]
    if against:
        cmd += ["--energy-against", against]
    if baseline_dir is not None:
        cmd += ["--energy-baseline-dir", str(baseline_dir)]
    if save:
        cmd.append("--energy-save-baseline")
    if report is not None:
        cmd += ["--energy-json", str(report)]
    return cmd + list(extra_args)


def run_once(clone: Path, cmd: list[str], *, beside: bool, report: Path | None) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    with neighbour(cores=1) if beside else contextlib.nullcontext():
        proc = subprocess.run(cmd, cwd=clone, env=clone_env(clone), capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    record = {"exit": proc.returncode, "neighbour": beside, "duration_s": round(time.perf_counter() - t0, 1),
              "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2)}
    record.update(parse_output(out))
    record["report"] = read_report(report) if report is not None else {}
    record["output"] = out
    return record


def make_plan(runs: int, no_baselines: int, neighbour_runs: int) -> list[tuple[bool, bool]]:
    """(empty baseline folder, beside the neighbour) per run: the first K empty, the last K beside."""
    return [(i < no_baselines, i >= runs - neighbour_runs) for i in range(runs)]


def history_inconclusive(run: dict[str, Any], test: str) -> bool:
    """Did the history screen say INCONCLUSIVE for `test` (from the report's screens, else the terminal's)?"""
    screens = [s for name, t in run["report"].items() if test in name for s in t.get("screen", ())]
    return any("INCONCLUSIVE" in s for s in (screens or run["screens"]))


def summarize(runs: list[dict[str, Any]], plant: str, *, min_detected: int | None = None) -> dict[str, Any]:
    def key(r: dict[str, Any]) -> str:
        return "no baselines" if r["empty_baselines"] else ("neighbour" if r["neighbour"] else "quiet")

    summary: dict[str, Any] = {"plant": plant, "runs": len(runs), "groups": {}}
    for r in runs:
        g = summary["groups"].setdefault(key(r), {"runs": 0, "failing": 0, "detected": 0, "tests": Counter()})
        g["runs"] += 1
        g["failing"] += r["exit"] != 0
        g["tests"].update(r["failed"])
        if plant != "none":
            g["detected"] += r["detected"]
    for g in summary["groups"].values():
        g["tests"] = dict(g["tests"])
    problems = []
    if plant == "none":
        problems += [f"unchanged run {r['index']} exited {r['exit']} ({', '.join(r['failed']) or 'no test named'})"
                     for r in runs if r["exit"] != 0]
    else:
        detected = [r for r in runs if r["detected"]]
        summary["detected"] = len(detected)
        summary["detected_where_history_inconclusive"] = sum(r["history_inconclusive"] for r in detected)
        need = len(runs) if min_detected is None else min_detected
        if len(detected) < need:
            problems.append(f"the planted {plant} slowdown failed {PLANTED_TEST[plant]} in {len(detected)} of "
                            f"{len(runs)} runs (needed {need})")
    summary["problems"] = problems
    return summary


def print_run(r: dict[str, Any]) -> None:
    what = "no baselines" if r["empty_baselines"] else ("neighbour" if r["neighbour"] else "quiet")
    print(f"run {r['index']:2d} {what:<12} exit {r['exit']}  {r['duration_s']:6.1f} s  load {r['load_before']:.2f} "
          f"-> {r['load_after']:.2f}  failed: {', '.join(r['failed']) or '-'}  {r['session']}")
    for line in r["recheck_lines"] + [f"screen: {s}" for s in r["screens"]] + r["cost_lines"]:
        print(f"        {line}")
    for test, t in r["report"].items():
        if t.get("recheck"):
            print(f"        report: {test}: {json.dumps(t['recheck'], sort_keys=True)}")
    sys.stdout.flush()


def print_summary(s: dict[str, Any], factor: float) -> None:
    print()
    for name, g in s["groups"].items():
        which = ", ".join(f"{t} x{n}" for t, n in sorted(g["tests"].items())) or "-"
        line = f"{name:<12}  {g['failing']} of {g['runs']} runs failing ({which})"
        if s["plant"] != "none":
            line += f"; planted {s['plant']} {factor:g}x detected in {g['detected']}"
        print(line)
    if s["plant"] != "none":
        print(f"detected in {s['detected']} of {s['runs']} runs, {s['detected_where_history_inconclusive']} of them "
              "where the history screen said INCONCLUSIVE")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--plant", choices=("none", *PLANTS), default="none")
    ap.add_argument("--factor", type=float, default=1.3, help="planted compute factor (default 1.3)")
    ap.add_argument("--neighbour-runs", type=int, default=0, help="the last K runs beside a noisy neighbour")
    ap.add_argument("--no-baselines", type=int, default=0, help="the first K runs with an empty baseline folder")
    ap.add_argument("--saves", type=int, default=0,
                    help="save this many runs of the unplanted code first and judge against them (default: the "
                         "clone's baselines/)")
    ap.add_argument("--baselines", help="judge against a copy of this saved folder (an earlier scenario's "
                                        "baselines-saved/) instead of new saves")
    ap.add_argument("--against", default="HEAD~1", help="the base revision (default HEAD~1: before the plant)")
    ap.add_argument("--extra-args", default="", help="arguments added to every pytest run (one shell-quoted string)")
    ap.add_argument("--min-detected", type=int, help="planted runs that must fail the planted test (default: all)")
    ap.add_argument("--workdir", help="make the clone and keep the outputs here (default: a temp dir)")
    ap.add_argument("--json", help="write the summary and every run's record (outputs included) to this file")
    args = ap.parse_args(argv)
    if args.runs < 1 or args.saves < 0 or args.no_baselines < 0 or args.neighbour_runs < 0:
        ap.error("--runs must be >= 1, --saves, --no-baselines and --neighbour-runs >= 0")
    if args.no_baselines > args.runs or args.neighbour_runs > args.runs:
        ap.error("--no-baselines and --neighbour-runs cannot exceed --runs")
    if args.plant != "none" and not args.factor > 1.0:
        ap.error("--factor must be > 1")
    if args.baselines and (args.saves or not any(Path(args.baselines).glob("*.json"))):
        ap.error("--baselines needs a folder of saved baselines (*.json), and not --saves as well")
    extra = shlex.split(args.extra_args)

    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="pytest-energy-ab-"))
    workdir.mkdir(parents=True, exist_ok=True)
    clone = workdir / "clone"
    if git(REPO, "status", "--porcelain", "--untracked-files=no").strip():
        print(f"note: {REPO} has uncommitted changes; the clone has HEAD's committed state only", flush=True)
    sha = clone_head(REPO, clone)
    print(f"A/B scenario in {clone} (HEAD {sha[:10]}, cpus {os.cpu_count()}, load {os.getloadavg()[0]:.2f}); "
          f"extra args: {' '.join(extra) or '-'}", flush=True)
    saved = None
    saves = []
    if args.baselines:
        saved = workdir / "baselines-saved"
        shutil.copytree(args.baselines, saved, dirs_exist_ok=True)  # the original stays as it was
        print(f"baselines: a copy of {args.baselines}", flush=True)
    if args.saves:
        saved = workdir / "baselines-saved"
        saved.mkdir(exist_ok=True)
        for i in range(1, args.saves + 1):
            r = run_once(clone, pytest_cmd(against=None, baseline_dir=saved, save=True, report=None, extra_args=extra),
                         beside=False, report=None)
            saves.append({k: v for k, v in r.items() if k != "output"})
            (workdir / f"save{i:02d}.txt").write_text(r["output"], encoding="utf-8")
            print(f"save {i:2d} exit {r['exit']}  {r['duration_s']:6.1f} s  failed: {', '.join(r['failed']) or '-'}",
                  flush=True)
    commit = plant_commit(clone, args.plant, args.factor)
    print(f"commit {commit['head']} on {commit['base']}: {commit['stat'] or 'empty (no file changed)'}; "
          f"pytest_energy imported from {imported_from(clone)}", flush=True)

    runs = []
    for i, (empty, beside) in enumerate(make_plan(args.runs, args.no_baselines, args.neighbour_runs), 1):
        if empty:
            baseline_dir = workdir / f"baselines-empty-{i:02d}"
            baseline_dir.mkdir(exist_ok=True)
        else:
            baseline_dir = saved  # None: the clone's baselines/ (the ini default)
        report = workdir / f"run{i:02d}.json"
        r = run_once(clone, pytest_cmd(against=args.against, baseline_dir=baseline_dir, save=False, report=report,
                                       extra_args=extra), beside=beside, report=report)
        r.update(index=i, empty_baselines=empty)
        if args.plant != "none":
            r["detected"] = r["exit"] == 1 and any(PLANTED_TEST[args.plant] in t for t in r["failed"])
            r["history_inconclusive"] = history_inconclusive(r, PLANTED_TEST[args.plant])
        (workdir / f"run{i:02d}.txt").write_text(r["output"], encoding="utf-8")
        runs.append(r)
        print_run(r)
    summary = summarize(runs, args.plant, min_detected=args.min_detected)
    print_summary(summary, args.factor)
    for p in summary["problems"]:
        print(f"SCENARIO FAILED: {p}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps({"workdir": str(workdir), "settings": vars(args), "commit": commit,
                                               "saves": saves, "summary": summary, "runs": runs}, indent=2),
                                   encoding="utf-8")
    return 1 if summary["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
