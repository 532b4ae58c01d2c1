"""Every option, ini key, marker argument and default, parsed and validated once.

One table (`OPTIONS`) declares each `--energy-X` option with its ini key `energy_X`, default, metavar,
help and parser, so the command line, the ini file and the docs never drift apart. Precedence is decided
here and nowhere else: marker > command line > ini > default. The results are frozen objects:
`SessionConfig` for the run, `TestSettings` for one benchmark.

No pytest import: the plugin hands over anything with pytest's `getoption`/`getini`/`addoption`/`addini`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Each default is defined by the layer that owns it and only read here; these modules are small and import
# nothing heavy, because every pytest run imports this one (the gate's statistics load with --energy only).
from .analysis.carbon import STRUBELL_US_G_PER_KWH, STRUBELL_USD_PER_KWH, CarbonConfig
from .errors import UsageError
from .gate import DEFAULT_TOLERANCE, HISTORY_LENGTH
from .meters import DEFAULT_WATTS_PER_CORE, METER_CHOICES

PROBE_CHOICES = ("auto", "on", "off")
DEFAULT_ROUNDS = 5
DEFAULT_WARMUP = 1
DEFAULT_BASELINE_DIR = "baselines"

# --- parsers: raw text -> validated value, UsageError naming the problem --------------------------------

_TOLERANCE_RE = re.compile(r"\A(?:\d+(?:\.\d*)?|\.\d+)%?\Z")
_TOLERANCE_SYNTAX = "a percentage like '10%' or '7.5%', or a fraction like '0.1' (non-negative)"


def parse_tolerance(text: Any) -> float:
    """'10%' -> 0.10, '7.5%' -> 0.075, '0.1' -> 0.1 (a bare number is a fraction). Returns a fraction.

    Anything else (negative, NaN, 'abc', '10 %', '10%%') raises UsageError naming the value and the syntax.
    """
    s = str(text).strip()
    if not _TOLERANCE_RE.match(s):
        raise UsageError(f"bad tolerance {text!r}: expected {_TOLERANCE_SYNTAX}")
    value = float(s[:-1]) / 100.0 if s.endswith("%") else float(s)
    if not math.isfinite(value):
        raise UsageError(f"bad tolerance {text!r}: expected {_TOLERANCE_SYNTAX}")
    return value


def format_tolerance(fraction: float) -> str:
    return f"{fraction * 100:g}%"


def _integer(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except (TypeError, ValueError):
            raise UsageError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise UsageError(f"must be >= {minimum}, got {value}")
        return value
    return parse


def _number(minimum: float, maximum: float, *, above_minimum: bool = False) -> Callable[[str], float]:
    """A finite number in [minimum, maximum] ((minimum, maximum] with above_minimum)."""
    low = f"> {minimum:g}" if above_minimum else f">= {minimum:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except (TypeError, ValueError):
            raise UsageError(f"expected a number, got {text!r}") from None
        if not (math.isfinite(value) and (value > minimum if above_minimum else value >= minimum)
                and value <= maximum):
            raise UsageError(f"must be a finite number {low} and <= {maximum:g}, got {text!r}")
        return value
    return parse


def _choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise UsageError(f"unknown value {text!r}; choose one of {', '.join(choices)}")
        return text
    return parse


def _path(text: str) -> str:
    return str(text)


def _auto_or_seconds(text: str) -> float | None:
    """'auto' -> None (decided by the meter), else seconds >= 0."""
    if text == "auto":
        return None
    try:
        return _number(0.0, 3600.0)(text)
    except UsageError as exc:
        raise UsageError(f"expected 'auto' or seconds: {exc}") from None


def _gpus_per_worker(text: str) -> int | None:
    """'auto' -> None (split the visible GPUs evenly); an integer >= 0 (0: do not split)."""
    return None if text == "auto" else _integer(0)(text)


# --- the option table ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Option:
    """One `--energy-<name>` option and its ini key `energy_<name>` (dashes become underscores)."""

    name: str  # "idle-s"
    metavar: str
    help: str  # without the default; '%' is escaped for argparse when registered
    default: str | None  # as the user would type it; None: no default (e.g. a report path)
    parse: Callable[[str], Any] = _path

    @property
    def flag(self) -> str:
        return f"--energy-{self.name}"

    @property
    def dest(self) -> str:
        return "energy_" + self.name.replace("-", "_")

    ini = dest  # the ini key is the option's dest: --energy-idle-s <-> energy_idle_s

    @property
    def key(self) -> str:
        return self.name.replace("-", "_")


OPTIONS: tuple[Option, ...] = (
    Option("meter", "NAME", "energy meter: auto (NVML, else RAPL, else estimate), nvml, rapl or estimate",
           "auto", _choice(METER_CHOICES)),
    Option("rounds", "N", "metered rounds per benchmark (energy(fn) rounds; passes of energy.inference)",
           str(DEFAULT_ROUNDS), _integer(1)),
    Option("warmup", "N", "unmetered warmup rounds per benchmark", str(DEFAULT_WARMUP), _integer(0)),
    Option("min-round-s", "SECONDS", "energy(fn) calls fn often enough per round that a round lasts this long "
           "(auto: ten update periods of the meter; 0: one call per round); figures are per call", "auto",
           _auto_or_seconds),
    Option("history", "N", "runs kept per metric in each baseline's history (--energy-save-baseline appends "
           "this run; with 3 or more the gate judges against the run-to-run spread)", str(HISTORY_LENGTH),
           _integer(1)),
    Option("probe", "WHEN", "calibration probe around every round, so that wall-clock metrics are compared "
           "net of machine-wide slowness: auto (on unless the meter is NVML), on or off", "auto",
           _choice(PROBE_CHOICES)),
    Option("tolerance", "PCT", "regression tolerance for measured metrics, e.g. 10% or 0.1 (a change must also "
           "be significant)", format_tolerance(DEFAULT_TOLERANCE), parse_tolerance),
    Option("idle-s", "SECONDS", "measure idle power for this long before the first benchmark and report "
           "net-of-idle energy beside gross (0: off)", "0", _number(0.0, 3600.0)),
    Option("cpu-watts-per-core", "WATTS", "power per busy core used by the 'estimate' meter",
           f"{DEFAULT_WATTS_PER_CORE:g}", _number(0.0, 1000.0, above_minimum=True)),
    Option("baseline-dir", "PATH", "baseline folder, relative to the rootdir", DEFAULT_BASELINE_DIR),
    Option("grid-intensity", "GCO2E_PER_KWH", "grid carbon intensity in gCO2e/kWh (the default is 0.954 lb/kWh, "
           "the US average of Strubell et al. 2019)", f"{STRUBELL_US_G_PER_KWH:.4g}", _number(0.0, 5000.0)),
    Option("pue", "FACTOR", "data-centre PUE multiplier (Strubell et al. 2019 use 1.58)", "1",
           _number(1.0, 10.0)),
    Option("price-kwh", "USD", "electricity price in USD/kWh", f"{STRUBELL_USD_PER_KWH:g}", _number(0.0, 100.0)),
    Option("hardware-price-hour", "USD", "hardware rental price in USD/hour, for HULK-style cost", "0",
           _number(0.0, 1e6)),
    Option("json", "PATH", "write a JSON report (pytest-benchmark's layout plus an 'energy' block) to PATH", None),
    Option("markdown", "PATH", "write a markdown summary to PATH (also appended to $GITHUB_STEP_SUMMARY "
           "when that is set)", None),
    Option("html", "PATH", "write a self-contained HTML report (tables and pictures) to PATH", None),
    Option("bmf", "PATH", "write every metric of every benchmark in Bencher's metric format (BMF JSON) to PATH, "
           "for `bencher run --adapter json --file PATH`", None),
    Option("github-benchmark", "PATH", "write every lower-is-better metric of every benchmark as "
           "github-action-benchmark's customSmallerIsBetter JSON to PATH", None),
    Option("gpus-per-worker", "K", "GPUs each pytest-xdist worker gets through CUDA_VISIBLE_DEVICES (auto: the "
           "visible GPUs split evenly, at least 1 each; 0: do not split, every worker sees every GPU)", "auto",
           _gpus_per_worker),
    Option("dist-timeout-s", "SECONDS", "under torchrun: how long rank 0 waits for the other ranks' part of a "
           "test before failing it", "600", _number(0.0, 86400.0, above_minimum=True)),
)
FLAGS: tuple[tuple[str, str], ...] = (
    ("--energy", "run energy benchmarks (tests using the `energy` fixture or marker) and meter tests using "
     "pytest-benchmark's `benchmark` fixture; without it energy benchmarks are skipped"),
    ("--energy-only", "run only energy benchmarks (and tests using `benchmark`); implies --energy unless "
     "--energy-disable is given"),
    ("--energy-skip", "skip energy benchmarks and meter nothing, even when --energy is given (e.g. in addopts)"),
    ("--energy-disable", "run energy benchmarks once each, unmetered, as a smoke test (like --benchmark-disable): "
     "no rounds, no baselines, no gate, no reports"),
    ("--energy-save-baseline", "add this run to each test's baseline history (other tests' entries are kept; "
     "a metric whose verdict was REGRESSION or IMPROVED starts a new history)"),
    ("--energy-reset-baseline", "with --energy-save-baseline: start every saved test's history afresh with this run"),
    ("--energy-require-baseline", "fail an energy benchmark that has no baseline, or whose baseline could not be "
     "compared (another machine class, e.g. the meter fell back from NVML to the estimate)"),
    ("--energy-fail-on-inconclusive", "fail a benchmark with an INCONCLUSIVE verdict (by default INCONCLUSIVE "
     "passes: the change could not be told from the noise)"),
    ("--energy-save-reference", "store this run's fine-tuning and inference costs per task as the HULK reference "
     "of this machine class (<baseline dir>/hulk-reference.json); later runs score against it"),
    ("--energy-hulk-paper", "also place this run's times beside HULK's published Tables 3 and 4 (other "
     "hardware: one RTX 2080 Ti; time only)"),
)


class _Unset(str):
    """The ini default: tells an unset key from one set to an empty string (which is an error)."""


UNSET = _Unset("")


def _help(option: Option) -> str:
    default = "none" if option.default is None else option.default
    # argparse %-formats help strings: a bare '%' (as in '10%') would crash `pytest --help`.
    return f"{option.help} [default: {default}; ini: {option.ini}]".replace("%", "%%")


def add_options(parser: Any, group_name: str = "energy", description: str = "energy benchmarks (pytest-energy)",
                options: tuple[Option, ...] = OPTIONS, flags: tuple[tuple[str, str], ...] = FLAGS) -> None:
    """Register `options` and `flags` on a pytest parser (command line and ini)."""
    group = parser.getgroup(group_name, description)
    for flag, help_text in flags:
        group.addoption(flag, action="store_true", default=False, help=help_text.replace("%", "%%"))
    for option in options:
        group.addoption(option.flag, dest=option.dest, default=None, metavar=option.metavar, help=_help(option))
        parser.addini(option.ini, option.help, default=UNSET)


@dataclass(frozen=True)
class RunMode:
    """What --energy, --energy-only, --energy-skip and --energy-disable ask for, decided once.

    - `run`: energy benchmarks run (else they are skipped with `skip_reason`);
    - `measure`: they are metered, gated and reported, and `benchmark` tests are metered (else a
      `--energy-disable` smoke run: each runs once, unmetered, nothing is recorded);
    - `only`: every test that is not an energy benchmark (or a `benchmark` test) is skipped.
    """

    run: bool = False
    measure: bool = False
    only: bool = False
    skip_reason: str = "energy benchmark: run `pytest --energy` to measure it"

    @property
    def disabled(self) -> bool:
        return self.run and not self.measure

    @classmethod
    def from_pytest(cls, config: Any) -> RunMode:
        energy, only, skip, disable = (bool(config.getoption(dest)) for dest in
                                       ("energy", "energy_only", "energy_skip", "energy_disable"))
        if skip and (only or disable):
            other = "--energy-only" if only else "--energy-disable"
            raise UsageError(f"--energy-skip and {other} contradict each other: give one of them")
        if skip:
            return cls(skip_reason="energy benchmark skipped (--energy-skip)")
        if disable:  # wins over --energy, so a smoke run can override --energy in addopts
            return cls(run=True, measure=False, only=only)
        if energy or only:
            return cls(run=True, measure=True, only=only)
        return cls()


def raw_value(config: Any, option: Option) -> str | None:
    """Command line > ini > default, as text; None when the option has no default and is not set."""
    cli = config.getoption(option.dest)
    if cli is not None:
        text, where = cli, option.flag
    else:
        ini = config.getini(option.ini)
        if ini is UNSET or ini is None:
            return option.default
        text, where = ini, f"ini key {option.ini}"
    if not str(text).strip():
        raise UsageError(f"{where}: empty value; give a value or leave it out "
                         f"(default: {'none' if option.default is None else option.default})")
    return str(text).strip()


def parse_option(config: Any, option: Option) -> Any:
    text = raw_value(config, option)
    if text is None:
        return None
    try:
        return option.parse(text)
    except UsageError as exc:
        raise UsageError(f"{option.flag}: {exc}") from None


# --- the session's configuration -----------------------------------------------------------------------

@dataclass(frozen=True)
class SessionConfig:
    """Everything a run is configured with, validated. Paths are absolute."""

    meter: str = "auto"
    rounds: int = DEFAULT_ROUNDS
    warmup: int = DEFAULT_WARMUP
    tolerance: float = DEFAULT_TOLERANCE
    idle_s: float = 0.0
    cpu_watts_per_core: float = DEFAULT_WATTS_PER_CORE
    rootdir: str = "."
    baseline_dir: str = DEFAULT_BASELINE_DIR  # absolute after from_pytest; relative to rootdir otherwise
    save_baseline: bool = False
    reset_baseline: bool = False
    require_baseline: bool = False
    fail_on_inconclusive: bool = False
    min_round_s: float | None = None  # None: CALIBRATION_FACTOR x the meter's update period
    history: int = HISTORY_LENGTH
    probe: str = "auto"
    save_reference: bool = False  # store this run's HULK costs (analysis/hulk_store.py)
    hulk_paper: bool = False  # show HULK's published tables beside this run (analysis/hulk_paper.py)
    json_path: str | None = None
    markdown_path: str | None = None
    html_path: str | None = None
    bmf_path: str | None = None  # Bencher Metric Format export (report/bmf.py)
    github_benchmark_path: str | None = None  # customSmallerIsBetter export (report/github_benchmark.py)
    carbon: CarbonConfig = field(default_factory=CarbonConfig)
    gpus_per_worker: int | None = None  # None: split evenly; 0: do not split
    dist_timeout_s: float = 600.0

    @property
    def baseline_path(self) -> Path:
        return Path(self.rootdir, self.baseline_dir)

    @property
    def reference_path(self) -> Path:
        """The stored HULK reference, kept beside the baselines."""
        from .analysis.hulk_store import REFERENCE_FILENAME

        return self.baseline_path / REFERENCE_FILENAME

    @classmethod
    def from_pytest(cls, config: Any) -> SessionConfig:
        """Parse every option of `config` (pytest's Config, or anything with getoption/getini)."""
        values = {option.key: parse_option(config, option) for option in OPTIONS}
        if config.getoption("energy_reset_baseline") and not config.getoption("energy_save_baseline"):
            raise UsageError("--energy-reset-baseline starts a new baseline history, so it needs "
                             "--energy-save-baseline as well")
        rootdir = str(getattr(config, "rootpath", None) or os.getcwd())
        carbon = CarbonConfig(grid_gco2e_per_kwh=values["grid_intensity"], pue=values["pue"],
                              electricity_usd_per_kwh=values["price_kwh"],
                              hardware_usd_per_hour=values["hardware_price_hour"])
        return cls(
            meter=values["meter"], rounds=values["rounds"], warmup=values["warmup"],
            tolerance=values["tolerance"], idle_s=values["idle_s"],
            cpu_watts_per_core=values["cpu_watts_per_core"], rootdir=rootdir,
            baseline_dir=str(Path(rootdir, values["baseline_dir"])),
            save_baseline=bool(config.getoption("energy_save_baseline")),
            reset_baseline=bool(config.getoption("energy_reset_baseline")),
            require_baseline=bool(config.getoption("energy_require_baseline")),
            fail_on_inconclusive=bool(config.getoption("energy_fail_on_inconclusive")),
            min_round_s=values["min_round_s"], history=values["history"], probe=values["probe"],
            save_reference=bool(config.getoption("energy_save_reference")),
            hulk_paper=bool(config.getoption("energy_hulk_paper")),
            json_path=values["json"], markdown_path=values["markdown"], html_path=values["html"],
            bmf_path=values["bmf"], github_benchmark_path=values["github_benchmark"],
            carbon=carbon, gpus_per_worker=values["gpus_per_worker"], dist_timeout_s=values["dist_timeout_s"])

    def warnings(self) -> list[str]:
        """Values that are valid but probably not what was meant."""
        out = []
        if self.tolerance > 1.0:
            out.append(f"--energy-tolerance {format_tolerance(self.tolerance)} lets a metric grow "
                       f"{self.tolerance + 1:g}-fold before it regresses; a bare number is a fraction "
                       "('0.1' is 10 %), write '10%' for ten percent")
        return out

    def display_path(self, path: Any) -> str:
        """Relative to rootdir when inside it (as users type it), else absolute."""
        path = os.path.abspath(path)
        root = os.path.abspath(self.rootdir)
        return os.path.relpath(path, root) if path.startswith(root + os.sep) else path


# --- one benchmark's settings --------------------------------------------------------------------------

@dataclass(frozen=True)
class TestSettings:
    """What one energy benchmark runs with. Frozen: built once per test, then only read."""

    __test__ = False  # not a pytest test class, despite the name

    rounds: int = DEFAULT_ROUNDS
    warmup: int = DEFAULT_WARMUP
    tolerance: float = DEFAULT_TOLERANCE  # relative tolerance for every measured metric
    metric_tolerances: dict[str, float] = field(default_factory=dict)  # per metric overrides
    deterministic_tolerance: float = 0.0  # steps to cut-off, tokens, FLOPs: exact by default
    group: str | None = None
    reference: str | None = None  # node id of the HULK reference benchmark (e.g. BERT-large)
    min_round_s: float | None = None  # energy(fn) calibration target; None: from the meter

    def __post_init__(self) -> None:
        for name, minimum in (("rounds", 1), ("warmup", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise UsageError(f"energy {name} must be an integer >= {minimum}, got {value!r}")

    def tolerance_for(self, metric: str, deterministic: bool = False) -> float:
        if metric in self.metric_tolerances:
            return self.metric_tolerances[metric]
        return self.deterministic_tolerance if deterministic else self.tolerance

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TestSettings:
        return cls(**d)


MARKER_ARGS = ("rounds", "warmup", "tolerance", "deterministic_tolerance", "group", "reference")
MARKER_HELP = ("energy(rounds=N, warmup=N, tolerance='10%'|{metric: '5%'}, deterministic_tolerance='0%', "
               "group=str, reference=nodeid): an energy benchmark (skipped unless --energy)")


def settings_for(session: SessionConfig, marker_kwargs: dict[str, Any] | None = None,
                  where: str = "") -> TestSettings:
    """The session's defaults overlaid with `@pytest.mark.energy(...)` keyword arguments.

    `tolerance` is either one value ("5%") for every measured metric or a dict per metric
    ({"energy_j": "5%", "duration_s": "15%"}). Unknown arguments are an error, never ignored.
    """
    base = TestSettings(rounds=session.rounds, warmup=session.warmup, tolerance=session.tolerance,
                        min_round_s=session.min_round_s)
    kwargs = dict(marker_kwargs or {})
    unknown = sorted(set(kwargs) - set(MARKER_ARGS))
    if unknown:
        raise UsageError(f"{where}energy marker: unknown argument(s) {', '.join(unknown)}; "
                         f"accepted: {', '.join(MARKER_ARGS)}")
    changes: dict[str, Any] = {key: kwargs[key] for key in ("rounds", "warmup", "group", "reference")
                               if key in kwargs}
    try:
        if "tolerance" in kwargs:
            tol = kwargs["tolerance"]
            if isinstance(tol, dict):
                changes["metric_tolerances"] = {str(k): parse_tolerance(v) for k, v in tol.items()}
            else:
                changes["tolerance"] = parse_tolerance(tol)
        if "deterministic_tolerance" in kwargs:
            changes["deterministic_tolerance"] = parse_tolerance(kwargs["deterministic_tolerance"])
        return dataclasses.replace(base, **changes)
    except UsageError as exc:
        raise UsageError(f"{where}{exc}") from None
