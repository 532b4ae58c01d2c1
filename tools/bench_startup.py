"""What pytest-energy costs a test run before anyone asks for a measurement (a benchmark, not a unit test).

Three figures, the targets of issue 17 (docs/architecture.md, "Start-up cost", quotes them):

1. import: `python -X importtime -c "import pytest, pytest_energy.plugin"`, the cumulative import time of
   `pytest_energy.plugin` over that of `pytest` in the same process (what the plugin adds to what pytest
   already loaded); median of `--imports` processes. Target: <= 5 %.
2. run: wall time of a plain `pytest` run of `--tests` trivial tests with the plugin installed, over the same
   run with `-p no:energy`; pairs run in ABAB order, median of `--pairs` ratios. Target: <= 1.03. Printed
   beside it: the same ratio of the runs' CPU times, which other jobs on the machine move far less.
3. baselines: load (gate.baselines.BaselineStore.load_all) and pool (gate.judge.pool_histories) the
   baselines of a generated suite of `--benchmarks` tests, each with `--metrics` measured metrics holding
   `--history`-run histories, written to a temporary folder with the project's own writer
   (BaselineStore.save, which writes the pool cache of a large folder: gate/pool_cache.py); median of
   `--repeats`. Target: load + pool <= 0.5 s for 10,000 benchmarks. Printed beside it, so that no cost is
   hidden: the same without the cache, reading every entry afterwards (what judging every test adds over
   the run), and a save into the folder.

    python tools/bench_startup.py            # the issue's sizes: 9 imports, 10 pairs of 500 tests, 10,000
    python tools/bench_startup.py --quick    # tiny sizes: checks that the tool runs (tests/tools)

Run it on a quiet machine: the figures are wall-clock times.

Bytecode: the measured processes import from bytecode, as an installed package is imported (pip compiles it).
They get a temporary PYTHONPYCACHEPREFIX, filled by one unmeasured process first, and PYTHONDONTWRITEBYTECODE
removed: where that is set (as on the development machine) and the source tree holds no current .pyc, every
process would otherwise compile pytest_energy from source, several times its import, and the import figure
would measure the compiler. `--as-is` measures the environment unchanged instead.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

PLUGIN = "pytest_energy.plugin"
_IMPORTTIME = re.compile(r"^import time:\s*(\d+)\s*\|\s*(\d+)\s*\|(\s*)(\S+)\s*$")
_MODULES_PER_FILE = 100  # tests per generated test module (one baseline file each)


def _subprocess_env(pycache_prefix: str | None = None) -> dict[str, str]:
    """The environment of every measured process: the pytest_energy this tool imports comes first on the path,
    so that a `python -c` (whose path starts with the working directory) measures the same code. With
    `pycache_prefix`, bytecode is written to and read from there, whatever PYTHONDONTWRITEBYTECODE says."""
    import importlib.util

    spec = importlib.util.find_spec("pytest_energy")
    if spec is None or spec.origin is None:
        raise RuntimeError("pytest_energy is not importable: install it (pip install -e .) or set PYTHONPATH")
    root = str(Path(spec.origin).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    if pycache_prefix is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = pycache_prefix
    return env


@contextlib.contextmanager
def _bytecode(as_is: bool) -> Iterator[str | None]:
    """A temporary bytecode folder for the measured processes (None with `as_is`: the environment unchanged)."""
    if as_is:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="bench-startup-pycache-") as prefix:
        yield prefix


def bytecode_note(as_is: bool) -> str:
    """How the measured processes get their bytecode, for the output (the figures depend on it)."""
    unset = os.environ.get("PYTHONDONTWRITEBYTECODE")
    if as_is:
        return ("bytecode: the environment as it is" + (" (PYTHONDONTWRITEBYTECODE is set: modules without a current "
                ".pyc are compiled in every process, and the import figure includes that)" if unset else ""))
    return ("bytecode: compiled once into a temporary PYTHONPYCACHEPREFIX, read from there by every measured "
            "process" + (" (PYTHONDONTWRITEBYTECODE, set here, is removed for them)" if unset else ""))


# --- 1. import ----------------------------------------------------------------------------------------------

def cumulative_us(importtime_stderr: str, module: str) -> int:
    """The cumulative microseconds `python -X importtime` reports for `module` (its first, outermost import)."""
    for line in importtime_stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match and match.group(4) == module:
            return int(match.group(2))
    raise ValueError(f"{module} is not in the -X importtime output")


def import_ratio(runs: int, module: str = PLUGIN, as_is: bool = False) -> tuple[float, float, float]:
    """(median ratio, median `module` ms, median pytest ms) over `runs` fresh processes (after one unmeasured
    process that writes the bytecode, unless `as_is`)."""
    ratios, plugin_ms, pytest_ms = [], [], []
    with _bytecode(as_is) as prefix:
        env = _subprocess_env(prefix)
        if prefix is not None:
            subprocess.run([sys.executable, "-c", f"import pytest, {module}"], capture_output=True, check=True,
                           env=env)
        for _ in range(runs):
            ratio, plugin, base = _one_import(module, env)
            ratios.append(ratio)
            plugin_ms.append(plugin)
            pytest_ms.append(base)
    return statistics.median(ratios), statistics.median(plugin_ms), statistics.median(pytest_ms)


def _one_import(module: str, env: dict[str, str]) -> tuple[float, float, float]:
    """(ratio, `module` ms, pytest ms) of one fresh process."""
    with tempfile.TemporaryDirectory(prefix="bench-startup-import-") as cwd:
        done = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import pytest, {module}"],
                              capture_output=True, text=True, check=True, cwd=cwd, env=env)
    plugin, base = cumulative_us(done.stderr, module), cumulative_us(done.stderr, "pytest")
    return plugin / base, plugin / 1000.0, base / 1000.0


# --- 2. a plain pytest run ----------------------------------------------------------------------------------

def _write_trivial_suite(folder: Path, n_tests: int) -> None:
    # Its own ini file, so that no project configuration around the temporary folder takes part.
    (folder / "pytest.ini").write_text("[pytest]\n")
    for start in range(0, n_tests, _MODULES_PER_FILE):
        count = min(_MODULES_PER_FILE, n_tests - start)
        body = "".join(f"def test_{start + i}():\n    assert {start + i} + 1 > {start + i}\n\n" for i in range(count))
        (folder / f"test_trivial_{start // _MODULES_PER_FILE}.py").write_text(body)


def _pytest_times_s(folder: Path, extra: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall s, CPU s) of one pytest process. The CPU time (user + system, of the child) barely moves when other
    jobs share the machine, which the wall time does by several percent, more than the plugin costs."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, str(folder)]
    before = os.times()
    started = time.perf_counter()
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    after = os.times()
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return elapsed, cpu


def plugin_installed() -> bool:
    """Whether pytest loads pytest-energy on its own (the `energy` entry point that `-p no:energy` names)."""
    from importlib import metadata

    points = metadata.entry_points()
    group = points.select(group="pytest11") if hasattr(points, "select") else points.get("pytest11", [])
    return any(point.name == "energy" for point in group)


def run_ratio(pairs: int, n_tests: int, as_is: bool = False) -> tuple[float, float, float, float]:
    """(median ratio with/without the plugin, median s with, median s without, median ratio of CPU times),
    ABAB order."""
    if not plugin_installed():
        raise RuntimeError("pytest-energy is not installed (no pytest11 entry point 'energy'): `pip install -e .` "
                           "first, or the two runs are the same")
    with tempfile.TemporaryDirectory(prefix="bench-startup-run-") as tmp, _bytecode(as_is) as prefix:
        folder = Path(tmp)
        env = _subprocess_env(prefix)
        _write_trivial_suite(folder, n_tests)
        _pytest_times_s(folder, [], env)  # warm the file cache and write the .pyc files before timing
        ratios, with_s, without_s, cpu_ratios = [], [], [], []
        for _ in range(pairs):
            a, a_cpu = _pytest_times_s(folder, [], env)
            b, b_cpu = _pytest_times_s(folder, ["-p", "no:energy"], env)
            ratios.append(a / b)
            with_s.append(a)
            without_s.append(b)
            cpu_ratios.append(a_cpu / b_cpu)
    return (statistics.median(ratios), statistics.median(with_s), statistics.median(without_s),
            statistics.median(cpu_ratios))


# --- 3. the baselines of a large suite ----------------------------------------------------------------------

def write_baselines(folder: Path, n_benchmarks: int, history: int, metrics: int = 2, seed: int = 0) -> None:
    """A suite of `n_benchmarks` tests (100 per test module) whose `metrics` measured metrics each hold a
    `history`-run history, saved with BaselineStore.save: the files the plugin reads at start-up."""
    from pytest_energy.gate.baselines import BaselineEntry, BaselineStore
    from pytest_energy.gate.history import RunSummary
    from pytest_energy.measure.probe import PROBE_ID
    from pytest_energy.meters.estimate import EstimateMeter
    from pytest_energy.machine import fingerprint
    from pytest_energy.records import Metric

    rng = random.Random(seed)
    machine = fingerprint(EstimateMeter())
    names = [("duration_s", "s"), ("energy_j", "J"), ("peak_memory_bytes", "B"), ("examples_per_s", "examples/s")]
    names += [(f"metric_{i}_j", "J") for i in range(max(0, metrics - len(names)))]
    run_ids = [f"run-{i:02d}" for i in range(history)]
    runs = {rid: {"datetime": f"2026-11-{i + 1:02d}T00:00:00+00:00", "commit": f"{i:040x}",
                  "probe_s": 0.03 * rng.lognormvariate(0.0, 0.05), "probe_id": PROBE_ID}
            for i, rid in enumerate(run_ids)}
    entries = []
    for t in range(n_benchmarks):
        nodeid = f"tests/test_suite_{t // _MODULES_PER_FILE}.py::test_{t}"
        centre = rng.uniform(0.01, 10.0)
        metric_map, histories = {}, {}
        for name, unit in names[:metrics]:
            samples = [centre * rng.lognormvariate(0.0, 0.03) for _ in range(5)]
            better = "higher" if unit.endswith("/s") else "lower"
            metric_map[name] = Metric(name, unit, better, "measured", samples)
            histories[name] = [RunSummary(centre * rng.lognormvariate(0.0, 0.05), centre * 0.02, 5, rid)
                               for rid in run_ids]
        entries.append(BaselineEntry(nodeid=nodeid, machine=machine, commit={"id": run_ids[-1]},
                                     datetime=runs[run_ids[-1]]["datetime"], method=machine["method"],
                                     metrics=metric_map, history=histories, runs=dict(runs)))
    BaselineStore(folder).save(entries)


def baseline_times(n_benchmarks: int, history: int, metrics: int, repeats: int) -> dict[str, float]:
    """Medians over `repeats` for a generated suite in a temporary folder, each figure in wall seconds and, as
    `<name>_cpu`, CPU seconds of this process (what other jobs on the machine do not change):

    load, pool: what a `pytest --energy` start-up pays, with the folder as the save left it (its pool cache,
        gate/pool_cache.py, when the folder is large enough to get one: `cached` is 1.0 then);
    cold_load, cold_pool: the same without the cache (the runs after a git merge or a hand edit, until the
        next save rewrites it): every file parsed and validated, every history pooled;
    entries: reading every entry afterwards, as judging every test does, file by file, during the run;
    save: BaselineStore.save of one test's new run into the full folder (rewrites the cache).
    Also `count`, the entries loaded.
    """
    from pytest_energy.gate.baselines import POOL_CACHE_NAME, BaselineStore
    from pytest_energy.gate.judge import pool_histories
    from pytest_energy.machine import fingerprint
    from pytest_energy.meters.estimate import EstimateMeter

    machine = fingerprint(EstimateMeter())
    times: dict[str, list[float]] = {}

    def timed(name: str, action):
        wall, cpu = time.perf_counter(), time.process_time()
        result = action()
        times.setdefault(name, []).append(time.perf_counter() - wall)
        times.setdefault(f"{name}_cpu", []).append(time.process_time() - cpu)
        return result

    with tempfile.TemporaryDirectory(prefix="bench-startup-baselines-") as tmp:
        write_baselines(Path(tmp), n_benchmarks, history, metrics)
        store = BaselineStore(tmp)
        cache = Path(tmp) / POOL_CACHE_NAME
        cached = cache.exists()
        count = 0
        for _ in range(repeats):
            entries = timed("load", store.load_all)
            timed("pool", lambda e=entries: pool_histories(e.values(), machine, probing=True))
            timed("entries", lambda e=entries: sum(1 for _ in e.values()))
            count = len(entries)
        if cached:
            one = next(iter(entries.values()))
            for _ in range(repeats):
                timed("save", lambda: store.save([one]))
            kept = cache.read_bytes()
            cache.unlink()
        for _ in range(repeats):
            entries = timed("cold_load", store.load_all)
            timed("cold_pool", lambda e=entries: pool_histories(e.values(), machine, probing=True))
        if cached:
            cache.write_bytes(kept)
    out = {name: statistics.median(values) for name, values in times.items()}
    out.update(count=float(count), cached=float(cached))
    return out


# --- the command --------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (2 imports, 1 pair of 20 tests, 200 "
                        "benchmarks): checks that the tool runs, measures nothing worth quoting")
    parser.add_argument("--imports", type=int, help="import processes (default 9)")
    parser.add_argument("--module", action="append", default=[], help=f"measure the import of this module "
                        f"after pytest instead of {PLUGIN} (repeatable: where the cost is)")
    parser.add_argument("--pairs", type=int, help="with/without pairs of pytest runs (default 10)")
    parser.add_argument("--tests", type=int, help="trivial tests per pytest run (default 500)")
    parser.add_argument("--benchmarks", type=int, help="benchmarks in the generated baselines (default 10000)")
    parser.add_argument("--history", type=int, default=10, help="runs per metric history (default 10)")
    parser.add_argument("--metrics", type=int, default=2, help="measured metrics per benchmark (default 2: "
                        "duration_s and energy_j, what energy(fn) records)")
    parser.add_argument("--repeats", type=int, help="load+pool repeats (default 3)")
    parser.add_argument("--as-is", action="store_true", help="measure imports with the environment's own "
                        "bytecode settings (default: a temporary PYTHONPYCACHEPREFIX, compiled once)")
    parser.add_argument("--skip", action="append", default=[], choices=("import", "run", "baselines"),
                        help="leave a figure out (repeatable)")
    args = parser.parse_args(argv)
    quick = {"imports": 2, "pairs": 1, "tests": 20, "benchmarks": 200, "repeats": 1}
    full = {"imports": 9, "pairs": 10, "tests": 500, "benchmarks": 10000, "repeats": 3}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    for key in ("imports", "pairs", "tests", "benchmarks", "repeats", "history", "metrics"):
        if getattr(args, key) < 1:
            parser.error(f"--{key} must be >= 1, got {getattr(args, key)}")

    print(f"python {sys.version.split()[0]} on {os.cpu_count()} cores; pytest_energy from "
          f"{Path(__import__('pytest_energy').__file__).parent}")
    if not {"import", "run"} <= set(args.skip):
        print(bytecode_note(args.as_is))
    if "import" not in args.skip:
        for module in args.module or [PLUGIN]:
            ratio, plugin_ms, pytest_ms = import_ratio(args.imports, module, args.as_is)
            print(f"import: {module} {plugin_ms:.1f} ms over pytest {pytest_ms:.1f} ms = {ratio:.1%} "
                  f"(median of {args.imports}; target <= 5 %)")
    if "run" not in args.skip:
        ratio, with_s, without_s, cpu_ratio = run_ratio(args.pairs, args.tests, args.as_is)
        print(f"run: {args.tests} trivial tests {with_s:.3f} s with the plugin, {without_s:.3f} s with "
              f"-p no:energy = {ratio:.3f}x (median of {args.pairs} ABAB pairs; target <= 1.03x); CPU time "
              f"{cpu_ratio:.3f}x")
    if "baselines" not in args.skip:
        b = baseline_times(args.benchmarks, args.history, args.metrics, args.repeats)
        how = "pool cache current" if b["cached"] else "no pool cache: the folder is under its 4 MiB threshold"
        print(f"baselines: {int(b['count'])} benchmarks x {args.metrics} metrics x {args.history} runs: load "
              f"{b['load']:.3f} s + pool {b['pool']:.3f} s = {b['load'] + b['pool']:.3f} s ({how}; median of "
              f"{args.repeats}; target <= 0.5 s); CPU {b['load_cpu']:.3f} + {b['pool_cpu']:.3f} s")
        print(f"baselines without the pool cache (after a git merge or a hand edit, until the next save): load "
              f"{b['cold_load']:.3f} s + pool {b['cold_pool']:.3f} s = {b['cold_load'] + b['cold_pool']:.3f} s; CPU "
              f"{b['cold_load_cpu']:.3f} + {b['cold_pool_cpu']:.3f} s")
        print(f"baselines: every entry read afterwards (judging every test parses its file once) {b['entries']:.3f} "
              f"s, CPU {b['entries_cpu']:.3f} s, spread over the run")
        if b["cached"]:
            print(f"baselines: saving one test's run into the folder (rewrites the cache) {b['save']:.3f} s, CPU "
                  f"{b['save_cpu']:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
