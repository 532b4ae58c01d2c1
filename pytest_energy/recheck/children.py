"""One side of a same-job A/B: the tests measured in a fresh pytest process, at the base revision or here.

Each side runs with the same interpreter (`sys.executable`) and environment, its own empty baseline folder
(the child judges nothing) and a JSON report that the parent reads back. The base's code comes from its
worktree: the worktree (and its `src/`, where there is one) lead PYTHONPATH, ahead of any editable install of
the head; the head gets its own checkout there the same way, so both sides import alike. Each side also gets a folder
that lasts for the whole A/B (`SIDE_CACHE_ENV`, read with `side_cache()`): a fixture may keep unmetered set-up
work there that every later process of the same side can reuse (the reference suite keeps its fine-tuned
model), so a pair pays for what it measures and not for the set-up again. No pytest import.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..records import Kind, RunResult

__all__ = ["CHILD_ENV", "SIDE_CACHE_ENV", "ChildRunner", "SideResult", "side_cache"]

# Set in every child: a child measures and reports, it never starts a second look of its own.
CHILD_ENV = "PYTEST_ENERGY_AB_CHILD"
# Set in every child: its side's folder, kept across the pairs of one A/B and removed with it; one per side, so
# the base's set-up never serves the head (their code differs).
SIDE_CACHE_ENV = "PYTEST_ENERGY_SIDE_CACHE"
# What a child must not inherit: an xdist worker's identity (it is a plain pytest process), an outer A/B's folder.
_DROPPED_ENV = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID", "PYTEST_CURRENT_TEST",
                SIDE_CACHE_ENV)
_TAIL_LINES = 12


@dataclass
class SideResult:
    """What one child measured: per node id, the mean of each measured metric (`values`), or why it has none
    (`missing`); `seconds`: the child's wall time; `tail`: the end of its output, for error messages."""

    values: dict[str, dict[str, float]] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    tail: str = ""


class ChildRunner:
    """Runs node ids in a fresh pytest process at the base (`tree` = the worktree's rootdir) or the head
    (`tree` = pytest's rootdir). `options`: the run's own --energy-* options to hand on (the child must measure as
    the parent does); `xdist`: the parent has pytest-xdist, so the child is told `-n 0`."""

    def __init__(self, options: Sequence[str] = (), *, xdist: bool = False, python: str = sys.executable,
                 timeout_s: float | None = None) -> None:
        self.options = list(options)
        self.xdist = xdist
        self.python = python
        self.timeout_s = timeout_s
        self._tmp = tempfile.TemporaryDirectory(prefix="pytest-energy-ab-")
        self._count = 0
        self._caches: dict[str, Path] = {}

    def close(self) -> None:
        self._tmp.cleanup()

    def side_cache(self, tree: Path) -> Path:
        """The folder that every process run in `tree` (one side) shares for this A/B."""
        key = str(Path(tree).resolve())
        if key not in self._caches:
            self._caches[key] = Path(self._tmp.name, f"side{len(self._caches) + 1}-cache")
            self._caches[key].mkdir()
        return self._caches[key]

    def env(self, top: Path, tree: Path | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
        env[CHILD_ENV] = "1"
        if tree is not None:
            env[SIDE_CACHE_ENV] = str(self.side_cache(tree))
        paths = [str(top)] + ([str(top / "src")] if (top / "src").is_dir() else [])
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        return env

    def command(self, nodeids: Sequence[str], report: Path, baselines: Path, collect: bool = False) -> list[str]:
        cmd = [self.python, "-m", "pytest", *nodeids, "-p", "no:cacheprovider", "-q"]
        if self.xdist:
            cmd += ["-n", "0"]
        if collect:
            return cmd + ["--collect-only"]
        return cmd + ["--energy", "--energy-baseline-dir", str(baselines), "--energy-json", str(report), *self.options]

    def _run(self, cmd: list[str], tree: Path, top: Path) -> tuple[int, str, float]:
        start = time.perf_counter()
        try:
            done = subprocess.run(cmd, cwd=str(tree), env=self.env(top, tree), capture_output=True, text=True,
                                  timeout=self.timeout_s, check=False)
            code, output = done.returncode, (done.stdout or "") + (done.stderr or "")
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            code, output = -1, out + f"\n(stopped after {self.timeout_s:g} s)"
        return code, output, time.perf_counter() - start

    def collect(self, nodeids: Sequence[str], tree: Path, top: Path) -> tuple[set[str], dict[str, str]]:
        """Which node ids exist in `tree` (collected there); the others with why."""
        missing: dict[str, str] = {}
        present_files = []
        for nodeid in nodeids:
            path = nodeid.split("::", 1)[0]
            if not (tree / path).is_file():
                missing[nodeid] = f"{path} does not exist there"
            elif path not in present_files:
                present_files.append(path)
        found: set[str] = set()
        if present_files:
            code, output, _ = self._run(self.command(present_files, Path(), Path(), collect=True), tree, top)
            found = {line.strip() for line in output.splitlines() if "::" in line and not line.startswith(" ")}
            if code not in (0, 5):
                tail = _tail(output)
                for nodeid in nodeids:
                    missing.setdefault(nodeid, f"its tests could not be collected there:\n{tail}")
                return set(), missing
        for nodeid in nodeids:
            if nodeid not in found:
                missing.setdefault(nodeid, "the test does not exist there")
        return {n for n in nodeids if n not in missing}, missing

    def measure(self, nodeids: Sequence[str], tree: Path, top: Path) -> SideResult:
        """Run `nodeids` with --energy in a fresh process in `tree`; read their measured metrics back."""
        self._count += 1
        folder = Path(self._tmp.name, f"run{self._count}")
        folder.mkdir()
        report = folder / "energy.json"
        code, output, seconds = self._run(self.command(nodeids, report, folder / "baselines"), tree, top)
        result = SideResult(seconds=seconds, tail=_tail(output))
        run = None
        if report.is_file():
            try:
                run = RunResult.from_report(json.loads(report.read_text(encoding="utf-8")))
            except (OSError, ValueError) as exc:
                result.tail = f"its JSON report could not be read: {exc}\n{result.tail}"
        measured = {}
        for bench in run.benchmarks if run is not None else ():
            measured[bench.record.nodeid] = {name: m.mean for name, m in bench.record.metrics.items()
                                             if m.kind == Kind.MEASURED and m.samples}
        failed = {n for n in nodeids if _failed(output, n)}
        for nodeid in nodeids:
            if nodeid in measured and nodeid not in failed:
                result.values[nodeid] = measured[nodeid]
            else:
                why = "the test failed" if nodeid in failed else f"pytest exited {code} without measuring it"
                result.missing[nodeid] = f"{why}:\n{result.tail}"
        return result


def side_cache() -> Path | None:
    """This A/B side's shared folder when running as an A/B child (see SIDE_CACHE_ENV), else None: a fixture that
    caches there must work the same without it."""
    folder = os.environ.get(SIDE_CACHE_ENV)
    return Path(folder) if folder and Path(folder).is_dir() else None


def _failed(output: str, nodeid: str) -> bool:
    return any(line.startswith(("FAILED ", "ERROR ")) and nodeid in line for line in output.splitlines())


def _tail(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    return "\n".join(lines[-_TAIL_LINES:])
