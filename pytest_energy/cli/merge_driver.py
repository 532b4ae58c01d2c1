"""`python -m pytest_energy merge-driver %O %A %B %P`: git's merge driver for baseline files.

Two branches that both ran `--energy-save-baseline` change the same JSON file; git's text merge then leaves
conflict markers the next run refuses. This driver merges the run histories instead:

- the runs of both histories, in time order; a run both sides hold counted once (runs are keyed by id);
- a test (or metric) added on either side kept; one deleted on one side and untouched on the other deleted;
- a history restarted on one side (an accepted REGRESSION or IMPROVED, `--energy-reset-baseline`: none of
  the base's runs is left in it) wins for that metric, and the other side's runs of the old code are
  dropped; restarted on both, the later restart wins; a test measured on another machine class on one side
  is taken whole from that side. Each is said on stderr;
- every history keeps its last `--keep` runs (the `--energy-history` limit, 10 by default);
- the rest of an entry (latest samples, machine, commit, extra_info) comes from the side that saved last.

It never writes conflict markers. What it cannot merge (a damaged side, two schema versions, a file that is
no baseline) is left as git's own text merge leaves it (`git merge-file`), with the reason on stderr, and
the driver exits 1 so git reports a conflict. `--install` prints the two lines that install it; with
`--apply` it writes them into the current repository.

A run appended after a side already held `--keep` runs can look like a restart (none of the base's runs is
left): that side's history then wins, which is also what the limit would keep.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

DRIVER_NAME = "pytest-energy"
ATTRIBUTE = f"merge={DRIVER_NAME}"


class Unmergeable(Exception):
    """Why the driver leaves a file to git's text merge."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="*", metavar="FILE",
                        help="%%O %%A %%B [%%P] as git passes them: the common ancestor's version, ours (the "
                             "result is written here), theirs, and the file's path in the repository")
    parser.add_argument("--keep", type=int, default=None, metavar="N",
                        help="runs kept per metric, as --energy-history (default: 10)")
    parser.add_argument("--install", action="store_true",
                        help="print the .gitattributes line and the git config command that install the driver")
    parser.add_argument("--apply", action="store_true", help="with --install: add them to the current repository")
    parser.add_argument("--baseline-dir", default="baselines", metavar="PATH",
                        help="with --install: the baseline folder the attribute names (default: baselines)")


def main(args: argparse.Namespace) -> int:
    """0 merged; 1 left to git's text merge (a conflict); 2 bad usage."""
    if args.install:
        return install(args.baseline_dir, args.apply, args.keep)
    if len(args.files) not in (3, 4):
        print("merge-driver: give %O %A %B [%P] (as git does), or --install", file=sys.stderr)
        return 2
    from ..gate.history import HISTORY_LENGTH

    keep = HISTORY_LENGTH if args.keep is None else args.keep
    if keep < 1:
        print("merge-driver: --keep must be at least 1", file=sys.stderr)
        return 2
    base, ours, theirs = (Path(p) for p in args.files[:3])
    shown = args.files[3] if len(args.files) == 4 else str(ours)
    return merge_driver(base, ours, theirs, shown, keep, repo_name=len(args.files) == 4)


def merge_driver(base: Path, ours: Path, theirs: Path, shown: str, keep: int, *, repo_name: bool = True,
                 say: Callable[[str], None] | None = None) -> int:
    """Merge `theirs` into `ours` (written in place) with `base` as the common ancestor; see the module."""
    from ..gate.baselines import NOT_BASELINES, POOL_CACHE_NAME

    def note(line: str) -> None:
        (say or _stderr)(f"pytest-energy merge-driver: {shown}: {line}")

    name = Path(shown).name if repo_name else None
    if name == POOL_CACHE_NAME:  # derived from the files beside it (gate/pool_cache.py): stale after any merge
        note("the pool cache: ours kept; it no longer matches the merged files, so runs parse them until the "
             "next --energy-save-baseline rewrites it")
        return 0
    if name in NOT_BASELINES:  # the stored HULK reference beside the baselines: not ours to merge
        return min(_git_merge_file(base, ours, theirs), 1)
    try:
        text = merge_texts(base, ours, theirs, name, keep, note)
    except Unmergeable as exc:
        note(f"cannot merge the run histories ({exc}); left to git's text merge")
        _git_merge_file(base, ours, theirs)
        return 1
    from ..errors import BaselineError
    from ..files import write_atomic

    try:
        write_atomic(ours, text, error=BaselineError, what="merged baseline file")
    except BaselineError as exc:
        note(str(exc))
        return 1
    return 0


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def _git_merge_file(base: Path, ours: Path, theirs: Path) -> int:
    """git's own text merge of one file, into `ours`: what git does without this driver."""
    try:
        done = subprocess.run(["git", "merge-file", "-L", "ours", "-L", "base", "-L", "theirs",
                               str(ours), str(base), str(theirs)], check=False)
    except OSError as exc:
        _stderr(f"pytest-energy merge-driver: git merge-file: {exc}; ours left as it was")
        return 1
    return 1 if done.returncode != 0 else 0


# --- the merge -----------------------------------------------------------------------------------------------

def _read_side(path: Path, side: str, name: str | None, *, may_be_empty: bool = False) -> tuple[int | None, dict]:
    from ..errors import BaselineError
    from ..gate.baselines import read_file

    try:
        if may_be_empty and path.stat().st_size == 0:  # git's empty ancestor: the file is new on both sides
            return None, {}
        return read_file(path, name=name)
    except (OSError, BaselineError) as exc:
        raise Unmergeable(f"{side}: {exc}") from None


def merge_texts(base: Path, ours: Path, theirs: Path, name: str | None, keep: int,
                note: Callable[[str], None]) -> str:
    """The merged baseline file's text; Unmergeable says why there is none."""
    from ..errors import BaselineError
    from ..gate.baselines import checked_document_text

    _, base_entries = _read_side(base, "base", name, may_be_empty=True)
    version_a, a = _read_side(ours, "ours", name)
    version_b, b = _read_side(theirs, "theirs", name)
    if version_a != version_b:
        raise Unmergeable(f"ours is schema {version_a}, theirs schema {version_b}")
    merged = {}
    for nodeid in sorted(set(a) | set(b)):
        if nodeid in a and nodeid in b:
            merged[nodeid] = merge_entry(base_entries.get(nodeid), a[nodeid], b[nodeid], keep, note)
            continue
        present, other = ("ours", "theirs") if nodeid in a else ("theirs", "ours")
        entry = a.get(nodeid) or b[nodeid]
        if nodeid in base_entries:
            if entry.to_dict() == base_entries[nodeid].to_dict():
                note(f"{nodeid}: deleted on {other}")
                continue
            note(f"{nodeid}: deleted on {other} but saved again on {present}: kept")
        merged[nodeid] = entry
    try:
        return checked_document_text(merged, name)
    except BaselineError as exc:
        raise Unmergeable(f"the merged file would not load: {exc}") from None


def _when(entry: Any, rid: str) -> dt.datetime:
    """The start of run `rid`, timezone-aware (a naive time is taken as UTC)."""
    text = entry.runs.get(rid, {}).get("datetime")
    try:
        when = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise Unmergeable(f"{entry.nodeid}: run {rid!r} has datetime {text!r}, not ISO 8601") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.timezone.utc)


def _saved_at(entry: Any) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(entry.datetime.replace("Z", "+00:00"))
    except ValueError:
        raise Unmergeable(f"{entry.nodeid}: datetime {entry.datetime!r} is not ISO 8601") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.timezone.utc)


def merge_entry(base: Any, a: Any, b: Any, keep: int, note: Callable[[str], None]) -> Any:
    """One test's entry from ours (`a`) and theirs (`b`), `base` their common ancestor's (or None)."""
    from ..gate.baselines import BaselineEntry, machine_mismatch

    if a.to_dict() == b.to_dict():
        return a
    later, later_side = (b, "theirs") if _saved_at(b) > _saved_at(a) else (a, "ours")
    if machine_mismatch(a.machine, b.machine):
        moved = [(e, side) for e, side in ((a, "ours"), (b, "theirs"))
                 if base is None or machine_mismatch(base.machine, e.machine)]
        winner, side = moved[0] if len(moved) == 1 else (later, later_side)
        note(f"{a.nodeid}: measured on another machine class on {side}: that entry is kept whole "
             "(histories of two machine classes do not mix)")
        return winner
    metrics, history = {}, {}
    for name in sorted(set(a.metrics) | set(b.metrics)):
        if name not in a.metrics or name not in b.metrics:
            entry, side, other = (a, "ours", "theirs") if name in a.metrics else (b, "theirs", "ours")
            if base is not None and name in base.metrics and _metric_state(entry, name) == _metric_state(base, name):
                note(f"{a.nodeid}: metric {name} deleted on {other}")
                continue
            metrics[name] = entry.metrics[name]
            if name in entry.history:
                history[name] = entry.history[name][-keep:]
            continue
        ma, mb = a.metrics[name], b.metrics[name]
        if (ma.unit, ma.better, ma.kind) != (mb.unit, mb.better, mb.kind):
            note(f"{a.nodeid}: metric {name} changed unit, direction or kind; {later_side}'s (saved last) kept")
            metrics[name] = later.metrics[name]
            if name in later.history:
                history[name] = later.history[name][-keep:]
            continue
        if name not in a.history and name not in b.history:  # deterministic: no history to merge
            metrics[name] = later.metrics[name]
            continue
        runs, holder = _merge_history(base, a, b, name, keep, note)
        history[name] = runs
        metrics[name] = holder.metrics[name]
    return BaselineEntry(nodeid=later.nodeid, machine=later.machine, commit=later.commit, datetime=later.datetime,
                         method=later.method, metrics=metrics, extra_info=later.extra_info, history=history,
                         runs={**b.runs, **a.runs})


def _metric_state(entry: Any, name: str) -> tuple:
    return entry.metrics[name].to_dict(), [(h.run_id, h.mean, h.sd, h.n) for h in entry.history.get(name, [])]


def _merge_history(base: Any, a: Any, b: Any, name: str, keep: int, note: Callable[[str], None]):
    """(the merged runs of metric `name`, the entry whose latest samples go with its last run)."""
    ha, hb = a.history.get(name, []), b.history.get(name, [])
    ids_a, ids_b = {h.run_id for h in ha}, {h.run_id for h in hb}
    base_ids: set[str | None] = set()
    if base is not None and name in base.metrics and (base.metrics[name].unit, base.metrics[name].better) == (
            a.metrics[name].unit, a.metrics[name].better):
        base_ids = {h.run_id for h in base.history.get(name, [])}
    restarted = [(e, side, h) for e, side, h, ids in ((a, "ours", ha, ids_a), (b, "theirs", hb, ids_b))
                 if base_ids and h and not (ids & base_ids)]
    if restarted:
        # An accepted change (or a reset) on that side: the other side's runs measured the old code.
        if len(restarted) == 2:
            restarted.sort(key=lambda r: _when(r[0], r[2][0].run_id))
            note(f"{a.nodeid}: {name}: history restarted on both sides; the later restart ({restarted[-1][1]}) wins")
        winner, side, runs = restarted[-1]
        other = hb if winner is a else ha
        dropped = len({h.run_id for h in other} - {h.run_id for h in runs} - base_ids)
        note(f"{a.nodeid}: {name}: history restarted on {side}; {side}'s history kept"
             + (f", {dropped} newer run(s) of the other side dropped" if dropped else ""))
        return list(runs)[-keep:], winner
    by_id = {h.run_id: h for h in hb}
    by_id.update({h.run_id: h for h in ha})  # a run both hold is one run (ours' copy)
    owner = {**{h.run_id: b for h in hb}, **{h.run_id: a for h in ha}}
    order = sorted(by_id, key=lambda rid: (_when(owner[rid], rid), rid))
    runs = [by_id[rid] for rid in order][-keep:]
    last = runs[-1].run_id
    holders = [e for e, h in ((a, ha), (b, hb)) if h and h[-1].run_id == last]
    holder = max(holders, key=_saved_at) if holders else owner[last]
    return runs, holder


# --- installing ------------------------------------------------------------------------------------------------

def driver_command(keep: int | None = None, python: str | None = None) -> str:
    """The command git runs for a baseline file (this interpreter, so the driver is the installed one)."""
    command = f"{shlex.quote(python or sys.executable)} -m pytest_energy merge-driver %O %A %B %P"
    return command + (f" --keep {keep}" if keep is not None else "")


def install_lines(baseline_dir: str, keep: int | None = None, python: str | None = None) -> tuple[str, str]:
    """(the .gitattributes line, the git config command) that install the driver."""
    pattern = Path(baseline_dir).as_posix().strip("/") or "."
    return (f"{pattern}/*.json {ATTRIBUTE}",
            f"git config merge.{DRIVER_NAME}.driver {shlex.quote(driver_command(keep, python))}")


def install(baseline_dir: str, apply: bool, keep: int | None) -> int:
    if not apply:
        attribute, config = install_lines(baseline_dir, keep)
        print(attribute)
        print(config)
        print("# the first line goes into .gitattributes (commit it), the second runs in every clone (CI "
              "included); or run this command again with --apply", file=sys.stderr)
        return 0
    try:
        top = Path(subprocess.run(["git", "rev-parse", "--show-toplevel"], check=True, capture_output=True,
                                  text=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"merge-driver --install --apply: not in a git repository ({exc})", file=sys.stderr)
        return 2
    try:
        relative = Path(baseline_dir).resolve().relative_to(top.resolve())
    except ValueError:
        print(f"merge-driver --install --apply: {baseline_dir} is outside the repository {top}", file=sys.stderr)
        return 2
    attribute, config = install_lines(relative.as_posix(), keep)
    attributes = top / ".gitattributes"
    existing = attributes.read_text(encoding="utf-8") if attributes.exists() else ""
    if attribute not in existing.splitlines():
        with open(attributes, "a", encoding="utf-8") as f:
            f.write(("" if not existing or existing.endswith("\n") else "\n") + attribute + "\n")
    subprocess.run(["git", "config", f"merge.{DRIVER_NAME}.name", "pytest-energy baseline histories"], check=True)
    subprocess.run(["git", "config", f"merge.{DRIVER_NAME}.driver", driver_command(keep)], check=True)
    print(f"{attributes}: {attribute}")
    print(config)
    return 0
