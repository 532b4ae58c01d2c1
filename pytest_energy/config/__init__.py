"""Every option, ini key, marker argument and default, parsed and validated once.

One table (`OPTIONS`) declares each `--energy-X` option with its ini key `energy_X`, default, metavar,
help and parser, so the command line, the ini file and the docs never drift apart. Precedence is decided
here and nowhere else: marker > command line > ini > default. The results are frozen objects:
`SessionConfig` for the run, `TestSettings` for one benchmark (both in `config.settings`).

Every pytest run imports this module (the plugin registers the options and decides the `RunMode`), so it
holds only what that needs, in plain classes (a dataclass costs about 0.5 ms to create). The settings of a
run that measures are in `config.settings`, loaded on first use of one of its names from here (PEP 562):
`from pytest_energy.config import SessionConfig` works as before.

No pytest import: the plugin hands over anything with pytest's `getoption`/`getini`/`addoption`/`addini`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

# Each default is defined by the layer that owns it and only read here; these package modules hold only
# constants, because every pytest run imports this one (the gate's statistics and the carbon model load
# with --energy only).
from ..analysis import STRUBELL_US_G_PER_KWH, STRUBELL_USD_PER_KWH
from ..errors import UsageError
from ..gate import DEFAULT_RERUNS, DEFAULT_TOLERANCE, HISTORY_LENGTH, MAX_PAIRS, MIN_PAIRS
from ..meters import DEFAULT_WATTS_PER_CORE, METER_CHOICES

if TYPE_CHECKING:  # what __getattr__ below re-exports, for type checkers
    from ..analysis.carbon import CarbonConfig as CarbonConfig
    from .settings import SessionConfig as SessionConfig
    from .settings import TestSettings as TestSettings
    from .settings import settings_for as settings_for

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


def _revision(text: str) -> str | None:
    """A git revision (commit, branch, tag) or 'auto'; 'none' turns a value from the ini file off."""
    text = str(text).strip()
    if text.lower() == "none":
        return None
    if text.startswith("-") or any(c.isspace() for c in text):
        raise UsageError(f"{text!r} is not a git revision; give a commit, a branch, a tag or 'auto'")
    return text


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

class _Frozen:
    """A small immutable value, compared by its fields (`__slots__`), as a frozen dataclass would be."""

    __slots__ = ()

    def _fields(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: {type(self).__name__} is frozen")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: {type(self).__name__} is frozen")

    def __eq__(self, other: object) -> bool:
        return self._fields() == other._fields() if type(other) is type(self) else NotImplemented

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"

    def __reduce__(self) -> tuple[Any, ...]:  # copy and pickle rebuild it through __init__ (no __setattr__)
        return type(self), self._fields()


class Option(_Frozen):
    """One `--energy-<name>` option and its ini key `energy_<name>` (dashes become underscores)."""

    __slots__ = ("name", "metavar", "help", "default", "parse")

    def __init__(self, name: str, metavar: str, help: str, default: str | None,
                 parse: Callable[[str], Any] = _path) -> None:
        object.__setattr__(self, "name", name)  # "idle-s"
        object.__setattr__(self, "metavar", metavar)
        object.__setattr__(self, "help", help)  # without the default; '%' is escaped for argparse when registered
        # as the user would type it; None: no default (e.g. a report path)
        object.__setattr__(self, "default", default)
        object.__setattr__(self, "parse", parse)

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
    Option("confirm", "N", "re-run a test the history rule suspects (beyond the tolerance at p < 0.01) N times at the "
           "end of the session (on the same xdist worker) and fail it only when every re-run repeats that (0: off: "
           "the history rule alone, at p < 0.001)", str(DEFAULT_RERUNS),
           _integer(0)),
    Option("against", "REV", "measure each suspected test (a REGRESSION, an INCONCLUSIVE beyond the tolerance, or "
           "no baseline) alternately at REV (a commit, branch or 'auto': the pull request's base) and here, in fresh "
           "processes, and decide with a sequential A/B test; only an A/B REGRESSION fails", None, _revision),
    Option("max-pairs", "N", "--energy-against: at most N base/head pairs per test (at least 3)", str(MAX_PAIRS),
           _integer(MIN_PAIRS)),
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
    ("--energy-against-all", "with --energy-against: A/B every selected energy benchmark, not only the suspected"),
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


class RunMode(_Frozen):
    """What --energy, --energy-only, --energy-skip and --energy-disable ask for, decided once.

    - `run`: energy benchmarks run (else they are skipped with `skip_reason`);
    - `measure`: they are metered, gated and reported, and `benchmark` tests are metered (else a
      `--energy-disable` smoke run: each runs once, unmetered, nothing is recorded);
    - `only`: every test that is not an energy benchmark (or a `benchmark` test) is skipped.
    """

    __slots__ = ("run", "measure", "only", "skip_reason")

    def __init__(self, run: bool = False, measure: bool = False, only: bool = False,
                 skip_reason: str = "energy benchmark: run `pytest --energy` to measure it") -> None:
        object.__setattr__(self, "run", run)
        object.__setattr__(self, "measure", measure)
        object.__setattr__(self, "only", only)
        object.__setattr__(self, "skip_reason", skip_reason)

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


def parse_text(option: Option, text: str, where: str | None = None) -> Any:
    """`text` parsed by `option`; a UsageError names where the text came from (default: the flag)."""
    try:
        return option.parse(text)
    except UsageError as exc:
        raise UsageError(f"{where or option.flag}: {exc}") from None


def parse_option(config: Any, option: Option) -> Any:
    text = raw_value(config, option)
    return None if text is None else parse_text(option, text)


MARKER_ARGS = ("rounds", "warmup", "tolerance", "deterministic_tolerance", "group", "reference")
MARKER_HELP = ("energy(rounds=N, warmup=N, tolerance='10%'|{metric: '5%'}, deterministic_tolerance='0%', "
               "group=str, reference=nodeid): an energy benchmark (skipped unless --energy)")


_LAZY = frozenset({"SessionConfig", "TestSettings", "settings_for"})


def __getattr__(name: str) -> Any:
    # The settings of a run that measures load on first use; `CarbonConfig` was importable from here before.
    if name in _LAZY:
        from . import settings

        value = getattr(settings, name)
    elif name == "CarbonConfig":
        from ..analysis.carbon import CarbonConfig as value
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # once: later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, "CarbonConfig"})
