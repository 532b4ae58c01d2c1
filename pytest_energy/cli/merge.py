"""`python -m pytest_energy merge shard-*.json`: one report, one verdict and one baseline update from CI shards.

A suite too big for one runner is sharded over several (a CI matrix), each shard writing its
`--energy-json` report. Merging them:

* **Machine classes are kept apart.** A result's class is the comparable part of the fingerprint it was
  judged with (gate.baselines.MATCH_KEYS: method, GPU models, CPU model, the estimate's W/core, torchrun
  topology), never the host name. Shards of one class are one population; results of different classes
  are never pooled or compared.
* **A test appears once per class.** The same test in two shards of one class means the sharding overlaps,
  or a retried shard's old report was kept: an error naming both shards, unless `--duplicates last` (the
  later report wins, and the output says so). Samples of two runs are never pooled: the spread between
  machines is not the within-run noise the gate's statistics assume.
* **One commit.** Shards of different commits are an error unless `--allow-mixed-commits`; with
  `--expected-shards N`, a missing shard is an error (it would silently drop that shard's regressions).
* **The verdict.** Exit 1 when any shard gated a REGRESSION or failed by itself (its pytest exit status);
  0 otherwise; 2 when the input is unusable. Nothing is re-judged: each shard was judged on its runner,
  against the baseline of its class.
* **The baseline update** (`--save-baseline`) adds every result, with the fingerprint and commit it was
  measured with, to its test's run history in `--baseline-dir`, as `pytest --energy-save-baseline` would
  (each shard is one run; the reports carry no probe seconds, so these runs are unprobed); results measured on
  shared devices are left out. One test measured on two classes needs `--class-dirs`, which writes each
  class into `<baseline-dir>/<class>/` (run that class's shards with `--energy-baseline-dir` pointing there).

No pytest here.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..errors import EnergyError
from ..records import BenchmarkResult, RunResult

from ..session import PASSING_EXIT_STATUSES  # pytest: all passed; no tests collected


class MergeError(EnergyError):
    """The shard reports cannot be merged (exit code 2); the message names the file and the problem."""


@dataclass
class Kept:
    """One result the merge keeps: which shard it came from, the result, and that shard's run."""

    shard: str
    machine_class: str
    result: BenchmarkResult
    run: RunResult


@dataclass
class Merged:
    report: dict[str, Any]
    exit_code: int
    lines: list[str] = field(default_factory=list)
    # class slug -> the merged report's entries of the results kept there (the report's order)
    by_class: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    kept: list[Kept] = field(default_factory=list)  # the results kept, typed, in merge order


def machine_class(machine: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(slug, comparable fingerprint): a readable, stable name for a machine class, e.g.
    'nvml-counter-2xNVIDIA-H100-80GB-HBM3-1a2b3c4d' or 'estimate-cpu-5e6f7a8b'."""
    from ..gate.baselines import comparable_fingerprint

    key = comparable_fingerprint(machine)
    gpus = key.get("gpus") or []
    label = f"{len(gpus)}x{gpus[0]}" if gpus else "cpu"
    digest = hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:8]
    slug = "".join(c if c.isalnum() or c in "._+-" else "-" for c in f"{key.get('method')}-{label}-{digest}")
    return slug, key


def read_shard(path: str) -> RunResult:
    """A shard's --energy-json report as the run it describes (RunResult.from_report); MergeError naming the
    file when it cannot be read or is not a pytest-energy report."""
    from ..files import read_json

    try:
        doc = read_json(path, what="shard report", repair="write shards with --energy-json", error=MergeError)
    except FileNotFoundError as exc:
        raise MergeError(f"{path}: cannot be read: {exc}") from None
    try:
        return RunResult.from_report(doc)
    except ValueError as exc:
        raise MergeError(f"{path}: {exc}") from None


def _entry(kept: Kept, machine: dict[str, Any]) -> dict[str, Any]:
    """The merged report's entry of one result: the shard's entry as it was written, with the fingerprint it
    was judged with and where it came from."""
    entry = copy.deepcopy(kept.result.reported) if kept.result.reported is not None else {}
    energy = entry.setdefault("energy", {})
    energy.setdefault("machine", machine)
    energy.update(shard=kept.shard, machine_class=kept.machine_class)
    return entry


def merge_reports(shards: Sequence[tuple[str, RunResult]], *, expected_shards: int | None = None,
                  duplicates: str = "error", allow_mixed_commits: bool = False) -> Merged:
    """Merge shard runs [(name, run read back from its report)] into one report and one exit code
    (MergeError: unusable)."""
    from ..report import format as fmt

    if not shards:
        raise MergeError("no shard reports given")
    if expected_shards is not None and len(shards) != expected_shards:
        raise MergeError(f"{len(shards)} shard report(s) given but {expected_shards} expected (a missing shard would "
                         f"drop its regressions): {', '.join(name for name, _ in shards)}")
    commits = {run.commit_id for _, run in shards}
    if len(commits) > 1 and not allow_mixed_commits:
        raise MergeError(f"the shards come from different commits ({', '.join(sorted(map(str, commits)))}); "
                         "one verdict over several commits means nothing (--allow-mixed-commits to merge anyway)")
    merged = Merged({}, 0)
    where: dict[tuple[str, str], str] = {}
    classes: dict[str, dict[str, Any]] = {}
    failed_shards, regressions, shard_rows = [], [], []
    for name, run in sorted(shards, key=lambda s: s[1].datetime):
        status = run.exit_status
        gating = not run.saved_baseline
        if status is not None and status not in PASSING_EXIT_STATUSES:
            failed_shards.append(f"{name}: pytest exit status {status}")
        shard_classes = set()
        for b in run.benchmarks:
            machine = b.machine or run.machine_info
            slug, key = machine_class(machine)
            shard_classes.add(slug)
            cls = classes.setdefault(slug, {"fingerprint": key, "shards": [], "benchmarks": 0})
            if name not in cls["shards"]:
                cls["shards"].append(name)
            test = b.record.nodeid
            if (slug, test) in where:
                first = where[(slug, test)]
                if duplicates != "last":
                    raise MergeError(f"{test} ran in two shards of machine class {slug}: {first} and {name} "
                                     "(overlapping shard selection, or a retried shard's old report was kept; "
                                     "--duplicates last keeps the later report)")
                merged.lines.append(f"{test} [{slug}]: {name} replaces {first} (the later report)")
                merged.kept = [k for k in merged.kept
                               if not (k.machine_class == slug and k.result.record.nodeid == test)]
                regressions = [r for r in regressions if not (r["test"] == test and r["machine_class"] == slug)]
            where[(slug, test)] = name
            merged.kept.append(Kept(name, slug, b, run))
            if gating and b.outcome is not None:
                for v in b.outcome.regressions:
                    regressions.append({"test": test, "machine_class": slug, "shard": name, "metric": v.metric,
                                        "change_pct": v.change_pct, "p_value": v.p_value})
        shard_rows.append({"file": name, "datetime": run.datetime or None, "exitstatus": status, "gating": gating,
                           "benchmarks": len(run.benchmarks), "machine_classes": sorted(shard_classes)})
    for kept in merged.kept:
        entry = _entry(kept, kept.result.machine or kept.run.machine_info)
        merged.by_class.setdefault(kept.machine_class, []).append(entry)
    for slug, kept_of_class in merged.by_class.items():
        classes[slug]["benchmarks"] = len(kept_of_class)
    merged.exit_code = 1 if regressions or failed_shards else 0
    merged.lines += [f"FAILED shard {f}" for f in failed_shards]
    merged.lines += [f"REGRESSION {r['test']} [{r['machine_class']}, {r['shard']}]: {r['metric']} "
                     f"{fmt.change(r['change_pct'])} (p={fmt.p_value(r['p_value'])})" for r in regressions]
    merged.lines.append(f"{len(merged.kept)} result(s) from {len(shards)} shard(s) on {len(classes)} machine "
                        f"class(es): {'FAIL' if merged.exit_code else 'PASS'}")
    first = shards[0][1]
    merged.report = {
        "machine_info": first.machine_info, "commit_info": first.commit_info,
        "datetime": max(run.datetime for _, run in shards), "version": __version__,
        "benchmarks": [entry for entries in merged.by_class.values() for entry in entries],
        "energy": {"merged_from": shard_rows, "machine_classes": classes,
                   "verdict": {"exit_code": merged.exit_code, "regressions": regressions,
                               "failed_shards": failed_shards, "notes": list(merged.lines[:-1])}},
    }
    return merged


def save_baselines(merged: Merged, baseline_dir: str, class_dirs: bool = False) -> tuple[list[str], list[str]]:
    """Add every merged result to its test's baseline history, as `pytest --energy-save-baseline` does;
    returns (files written, notes). Each shard is one run (its id derived from the shard's report); a metric
    the shard's history rule called REGRESSION or IMPROVED starts a new history (gate.baselines.restarted_metrics,
    the session's rule). The reports carry no probe seconds, so these runs count as unprobed. MergeError before
    anything is written when a test was measured on two classes without `class_dirs`."""
    from ..gate.baselines import BaselineEntry, BaselineStore, append_run, restarted_metrics, run_entry

    if not class_dirs:
        seen: dict[str, str] = {}
        for kept in merged.kept:
            test = kept.result.record.nodeid
            other = seen.setdefault(test, kept.machine_class)
            if other != kept.machine_class:
                raise MergeError(f"{test} was measured on two machine classes ({other}, {kept.machine_class}); "
                                 "one baseline folder holds one entry per test: use --class-dirs")
    plan: dict[str, list[BaselineEntry]] = {}
    restart: dict[str, frozenset[str]] = {}
    notes = []
    for kept in merged.kept:
        result, run = kept.result, kept.run
        test = result.record.nodeid
        if result.shared:
            notes.append(f"{test} ({kept.shard}) not saved: measured on shared devices")
            continue
        directory = os.path.join(baseline_dir, kept.machine_class) if class_dirs else baseline_dir
        commit = run.commit_info or {}
        run_id = "shard-" + hashlib.sha256(f"{kept.shard}|{run.datetime}|{commit.get('id')}".encode()).hexdigest()[:12]
        restart[test] = restarted_metrics(result.outcome.verdicts if result.outcome is not None else [])
        plan.setdefault(directory, []).append(run_entry(
            test, result.record.metrics, machine=result.machine or run.machine_info, commit=commit,
            datetime_iso=run.datetime, run_id=run_id, extra_info=result.record.extra_info))

    def combine(old: BaselineEntry | None, new: BaselineEntry) -> BaselineEntry:
        return append_run(old, new, restart=restart.get(new.nodeid, frozenset()))

    written = []
    try:
        for directory, entries in sorted(plan.items()):
            written += [str(p) for p in BaselineStore(directory).save(entries, combine=combine)]
    except EnergyError as exc:
        written += [str(p) for p in getattr(exc, "written", [])]  # BaselineSaveError: the files that were saved
        raise MergeError(f"baselines: {exc}" + (f" (already written: {', '.join(written)})" if written else "")) \
            from None
    return written, notes


def markdown(merged: Merged) -> str:
    """A summary for a pull request or $GITHUB_STEP_SUMMARY: the verdict, then one row per result."""
    from ..report import format as fmt
    from ..report.markdown import cell
    from ..report.series import primary_series

    verdict = merged.report["energy"]["verdict"]
    lines = [f"### pytest-energy: {len(merged.report['energy']['merged_from'])} shards merged: "
             f"{'**FAIL**' if merged.exit_code else 'PASS'}", ""]
    lines += [f"- {cell(text)}" for text in verdict["failed_shards"]]
    lines += [f"- **REGRESSION** {cell(r['test'])} [{cell(r['machine_class'])}]: {cell(r['metric'])} "
              f"{fmt.change(r['change_pct'])}" for r in verdict["regressions"]]
    lines += ["", "| test | machine class | shard | energy (mean) | method | verdicts |", "|---|---|---|---|---|---|"]
    for slug in merged.by_class:  # the report's order: by machine class
        for kept in (k for k in merged.kept if k.machine_class == slug):
            series = primary_series(kept.result.record)
            energy, _ = fmt.mean_sd(series.energy.samples) if series else (None, None)
            counts: dict[str, int] = {}
            for v in kept.result.outcome.verdicts if kept.result.outcome else ():
                counts[str(v.verdict)] = counts.get(str(v.verdict), 0) + 1
            verdicts = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or fmt.MISSING
            method = series.energy.method if series else None
            lines.append(f"| {cell(kept.result.record.nodeid)} | {cell(slug)} | {cell(kept.shard)} | "
                         f"{fmt.value(energy, 'J')} | {cell(method or fmt.MISSING)} | {cell(verdicts)} |")
    return "\n".join(lines) + "\n"


def main(args: Any) -> int:
    """The `merge` subcommand; returns the exit code (0 pass, 1 a shard regressed or failed, 2 unusable input)."""
    from ..files import write_atomic
    from ..report.json import json_text

    try:
        merged = merge_reports([(path, read_shard(path)) for path in args.shards],
                               expected_shards=args.expected_shards, duplicates=args.duplicates,
                               allow_mixed_commits=args.allow_mixed_commits)
        written, notes = save_baselines(merged, args.baseline_dir, args.class_dirs) if args.save_baseline else ([], [])
        for path, text in ((args.json, lambda: json_text(merged.report)), (args.markdown, lambda: markdown(merged))):
            if path:
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
                written.append(str(write_atomic(path, text(), error=MergeError, what="merged report")))
        if args.bmf or args.github_benchmark:
            written_exports, export_notes = _write_exports(merged, args)
            written += written_exports
            notes += export_notes
    except MergeError as exc:
        print(f"pytest-energy merge: {exc}")
        return 2
    print("\n".join(merged.lines + notes + [f"wrote {p}" for p in written]))
    return merged.exit_code


def _write_exports(merged: Merged, args: Any) -> tuple[list[str], list[str]]:
    """The dashboards' files (Bencher BMF, github-action-benchmark) from the merged, typed results."""
    from types import SimpleNamespace

    from ..report.bmf import write_exports

    results = [k.result for k in merged.kept]
    outcomes = {r.record.nodeid: r.outcome for r in results if r.outcome is not None}
    targets = SimpleNamespace(bmf_path=args.bmf, github_benchmark_path=args.github_benchmark)
    written, errors, notes = write_exports([r.record for r in results], targets, outcomes,
                                           flags=("--bmf", "--github-benchmark"))
    if errors:
        raise MergeError("; ".join(errors))
    return written, notes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shards", nargs="+", metavar="SHARD.json", help="the shards' --energy-json reports")
    parser.add_argument("--json", metavar="PATH", help="write the merged report (pytest-benchmark's layout)")
    parser.add_argument("--markdown", metavar="PATH", help="write a markdown summary")
    parser.add_argument("--bmf", metavar="PATH", help="write every merged result's metrics in Bencher's metric format")
    parser.add_argument("--github-benchmark", metavar="PATH",
                        help="write the lower-is-better metrics as github-action-benchmark customSmallerIsBetter JSON")
    parser.add_argument("--save-baseline", action="store_true",
                        help="write every merged result as a baseline (with the fingerprint it was measured on)")
    parser.add_argument("--baseline-dir", default="baselines", metavar="PATH",
                        help="where --save-baseline writes (default: baselines)")
    parser.add_argument("--class-dirs", action="store_true",
                        help="write each machine class into <baseline-dir>/<class>/")
    parser.add_argument("--expected-shards", type=int, metavar="N", help="fail (exit 2) unless exactly N reports")
    parser.add_argument("--duplicates", choices=("error", "last"), default="error",
                        help="a test in two shards of one machine class: an error (default), or keep the later")
    parser.add_argument("--allow-mixed-commits", action="store_true", help="merge shards of different commits")
