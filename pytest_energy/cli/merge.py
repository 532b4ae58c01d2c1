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
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..errors import EnergyError
from ..records import VerdictKind

from ..session import PASSING_EXIT_STATUSES  # pytest: all passed; no tests collected


class MergeError(EnergyError):
    """The shard reports cannot be merged (exit code 2); the message names the file and the problem."""


@dataclass
class Merged:
    report: dict[str, Any]
    exit_code: int
    lines: list[str] = field(default_factory=list)
    # class slug -> [(shard name, benchmark entry)] of the results kept
    by_class: dict[str, list[tuple[str, dict[str, Any], dict[str, Any]]]] = field(default_factory=dict)


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


def read_shard(path: str) -> dict[str, Any]:
    """A shard's --energy-json report, checked for what merging needs; MergeError naming the file."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as exc:
        raise MergeError(f"{path}: cannot be read: {exc}") from exc
    except ValueError as exc:
        raise MergeError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list):
        raise MergeError(f"{path}: not a pytest-energy JSON report (no 'benchmarks' list); write shards with "
                         "--energy-json")
    if not isinstance(doc.get("energy"), dict):
        raise MergeError(f"{path}: has no 'energy' block: a pytest-benchmark report, not pytest-energy's")
    for i, bench in enumerate(doc["benchmarks"]):
        if not (isinstance(bench, dict) and isinstance(bench.get("fullname"), str)
                and isinstance(bench.get("energy"), dict) and isinstance(bench["energy"].get("metrics"), dict)):
            raise MergeError(f"{path}: benchmark {i} lacks 'fullname' or its 'energy' metrics")
    return doc


def _regressions(bench: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for v in bench["energy"].get("comparison") or [] if v.get("verdict") == VerdictKind.REGRESSION.value]


def merge_reports(shards: Sequence[tuple[str, dict[str, Any]]], *, expected_shards: int | None = None,
                  duplicates: str = "error", allow_mixed_commits: bool = False) -> Merged:
    """Merge shard reports [(name, report)] into one report and one exit code (MergeError: unusable)."""
    from ..report import format as fmt

    if not shards:
        raise MergeError("no shard reports given")
    if expected_shards is not None and len(shards) != expected_shards:
        raise MergeError(f"{len(shards)} shard report(s) given but {expected_shards} expected (a missing shard would "
                         f"drop its regressions): {', '.join(name for name, _ in shards)}")
    commits = {(doc.get("commit_info") or {}).get("id") for _, doc in shards}
    if len(commits) > 1 and not allow_mixed_commits:
        raise MergeError(f"the shards come from different commits ({', '.join(sorted(map(str, commits)))}); "
                         "one verdict over several commits means nothing (--allow-mixed-commits to merge anyway)")
    merged = Merged({}, 0)
    where: dict[tuple[str, str], str] = {}
    classes: dict[str, dict[str, Any]] = {}
    failed_shards, regressions, shard_rows = [], [], []
    for name, doc in sorted(shards, key=lambda s: str(s[1].get("datetime") or "")):
        info = doc["energy"]
        status = info.get("exitstatus")
        gating = not info.get("save_baseline", False)
        if status is not None and status not in PASSING_EXIT_STATUSES:
            failed_shards.append(f"{name}: pytest exit status {status}")
        shard_classes = set()
        for bench in doc["benchmarks"]:
            machine = bench["energy"].get("machine") or doc.get("machine_info") or {}
            slug, key = machine_class(machine)
            shard_classes.add(slug)
            cls = classes.setdefault(slug, {"fingerprint": key, "shards": [], "benchmarks": 0})
            if name not in cls["shards"]:
                cls["shards"].append(name)
            test = bench["fullname"]
            if (slug, test) in where:
                first = where[(slug, test)]
                if duplicates != "last":
                    raise MergeError(f"{test} ran in two shards of machine class {slug}: {first} and {name} "
                                     "(overlapping shard selection, or a retried shard's old report was kept; "
                                     "--duplicates last keeps the later report)")
                merged.lines.append(f"{test} [{slug}]: {name} replaces {first} (the later report)")
                merged.by_class[slug] = [e for e in merged.by_class[slug] if e[1]["fullname"] != test]
                regressions = [r for r in regressions if not (r["test"] == test and r["machine_class"] == slug)]
            where[(slug, test)] = name
            entry = json.loads(json.dumps(bench))  # a copy: the shard's document stays as read
            entry["energy"].setdefault("machine", machine)
            entry["energy"].update(shard=name, machine_class=slug)
            merged.by_class.setdefault(slug, []).append((name, entry, doc))
            if gating:
                for v in _regressions(bench):
                    regressions.append({"test": test, "machine_class": slug, "shard": name, "metric": v.get("metric"),
                                        "change_pct": v.get("change_pct"), "p_value": v.get("p_value")})
        shard_rows.append({"file": name, "datetime": doc.get("datetime"), "exitstatus": status, "gating": gating,
                           "benchmarks": len(doc["benchmarks"]), "machine_classes": sorted(shard_classes)})
    for slug, entries in merged.by_class.items():
        classes[slug]["benchmarks"] = len(entries)
    merged.exit_code = 1 if regressions or failed_shards else 0
    merged.lines += [f"FAILED shard {f}" for f in failed_shards]
    merged.lines += [f"REGRESSION {r['test']} [{r['machine_class']}, {r['shard']}]: {r['metric']} "
                     f"{fmt.change(r['change_pct'])} (p={fmt.p_value(r['p_value'])})" for r in regressions]
    total = sum(len(e) for e in merged.by_class.values())
    merged.lines.append(f"{total} result(s) from {len(shards)} shard(s) on {len(classes)} machine class(es): "
                        f"{'FAIL' if merged.exit_code else 'PASS'}")
    first = shards[0][1]
    merged.report = {
        "machine_info": first.get("machine_info"), "commit_info": first.get("commit_info"),
        "datetime": max(str(doc.get("datetime") or "") for _, doc in shards), "version": __version__,
        "benchmarks": [entry for entries in merged.by_class.values() for _, entry, _ in entries],
        "energy": {"merged_from": shard_rows, "machine_classes": classes,
                   "verdict": {"exit_code": merged.exit_code, "regressions": regressions,
                               "failed_shards": failed_shards, "notes": list(merged.lines[:-1])}},
    }
    return merged


def save_baselines(merged: Merged, baseline_dir: str, class_dirs: bool = False) -> tuple[list[str], list[str]]:
    """Add every merged result to its test's baseline history, as `pytest --energy-save-baseline` does;
    returns (files written, notes). Each shard is one run (its id derived from the shard's report); a metric
    the shard's history rule called REGRESSION or IMPROVED starts a new history. The reports carry no probe
    seconds, so these runs count as unprobed. MergeError before anything is written when a test was
    measured on two classes without `class_dirs`, or an entry cannot be stored."""
    from types import SimpleNamespace

    from ..gate.baselines import BaselineEntry, BaselineStore, append_run, restarted_metrics, run_entry
    from ..records import Metric

    if not class_dirs:
        seen: dict[str, str] = {}
        for slug, entries in merged.by_class.items():
            for _, entry, _ in entries:
                other = seen.setdefault(entry["fullname"], slug)
                if other != slug:
                    raise MergeError(f"{entry['fullname']} was measured on two machine classes ({other}, {slug}); "
                                     "one baseline folder holds one entry per test: use --class-dirs")
    plan: dict[str, list[BaselineEntry]] = {}
    restart: dict[str, frozenset[str]] = {}
    notes = []
    for slug, entries in merged.by_class.items():
        for shard, entry, doc in entries:
            energy = entry["energy"]
            if (energy.get("placement") or {}).get("shared"):
                notes.append(f"{entry['fullname']} ({shard}) not saved: measured on shared devices")
                continue
            try:
                metrics = {k: Metric.from_dict(m) for k, m in energy["metrics"].items()}
            except (KeyError, TypeError, ValueError) as exc:
                raise MergeError(f"{shard}: {entry['fullname']}: a metric cannot be read back: {exc}") from None
            directory = os.path.join(baseline_dir, slug) if class_dirs else baseline_dir
            commit = doc.get("commit_info") or {}
            when = str(doc.get("datetime") or "")
            run_id = "shard-" + hashlib.sha256(f"{shard}|{when}|{commit.get('id')}".encode()).hexdigest()[:12]
            # The shard's verdicts as the restart rule reads them (metric, verdict, rule) from the report's dicts.
            verdicts = [SimpleNamespace(metric=v.get("metric"), verdict=v.get("verdict"), rule=str(v.get("rule", "")))
                        for v in energy.get("comparison") or []]
            restart[entry["fullname"]] = restarted_metrics(verdicts)
            plan.setdefault(directory, []).append(run_entry(
                entry["fullname"], metrics, machine=energy["machine"], commit=commit, datetime_iso=when,
                run_id=run_id, extra_info=entry.get("extra_info") or {}))

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

    verdict = merged.report["energy"]["verdict"]
    lines = [f"### pytest-energy: {len(merged.report['energy']['merged_from'])} shards merged: "
             f"{'**FAIL**' if merged.exit_code else 'PASS'}", ""]
    lines += [f"- {cell(text)}" for text in verdict["failed_shards"]]
    lines += [f"- **REGRESSION** {cell(r['test'])} [{cell(r['machine_class'])}]: {cell(r['metric'])} "
              f"{fmt.change(r['change_pct'])}" for r in verdict["regressions"]]
    lines += ["", "| test | machine class | shard | energy (mean) | method | verdicts |", "|---|---|---|---|---|---|"]
    for bench in merged.report["benchmarks"]:
        energy = bench["energy"]
        stats = energy.get("stats") or {}
        counts: dict[str, int] = {}
        for v in energy.get("comparison") or []:
            counts[v["verdict"]] = counts.get(v["verdict"], 0) + 1
        verdicts = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or fmt.MISSING
        lines.append(f"| {cell(bench['fullname'])} | {cell(energy['machine_class'])} | {cell(energy['shard'])} | "
                     f"{fmt.value(stats.get('mean'), 'J')} | {cell(energy.get('method') or fmt.MISSING)} | "
                     f"{cell(verdicts)} |")
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
    except MergeError as exc:
        print(f"pytest-energy merge: {exc}")
        return 2
    print("\n".join(merged.lines + notes + [f"wrote {p}" for p in written]))
    return merged.exit_code


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shards", nargs="+", metavar="SHARD.json", help="the shards' --energy-json reports")
    parser.add_argument("--json", metavar="PATH", help="write the merged report (pytest-benchmark's layout)")
    parser.add_argument("--markdown", metavar="PATH", help="write a markdown summary")
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
