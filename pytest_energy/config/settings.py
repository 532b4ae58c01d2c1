"""The run's and one benchmark's settings: `SessionConfig`, `TestSettings` and `settings_for`.

Only a run that measures (`--energy`, `--energy-disable`) needs them, so they live apart from the option
table (`pytest_energy.config`), which every pytest run imports: creating these frozen dataclasses, and
importing the carbon model they hold, would otherwise be paid by every run. `pytest_energy.config`
re-exports every name here on first use, so `from pytest_energy.config import SessionConfig` keeps working.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..analysis.carbon import CarbonConfig
from ..errors import UsageError
from ..gate import DEFAULT_RERUNS, DEFAULT_TOLERANCE, HISTORY_LENGTH, MAX_PAIRS
from ..meters import DEFAULT_WATTS_PER_CORE
from . import (DEFAULT_BASELINE_DIR, DEFAULT_ROUNDS, DEFAULT_WARMUP, MARKER_ARGS, OPTIONS, format_tolerance,
               parse_option, parse_tolerance)

__all__ = ["SessionConfig", "TestSettings", "settings_for"]


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
    confirm: int = DEFAULT_RERUNS  # re-runs of a test the history rule convicts (0: off)
    against: str | None = None  # --energy-against REV (or "auto"): the same-job A/B's base revision
    against_all: bool = False  # A/B every selected test, not only the suspected
    max_pairs: int = MAX_PAIRS

    @property
    def baseline_path(self) -> Path:
        return Path(self.rootdir, self.baseline_dir)

    @property
    def reference_path(self) -> Path:
        """The stored HULK reference, kept beside the baselines."""
        from ..analysis.hulk_store import REFERENCE_FILENAME

        return self.baseline_path / REFERENCE_FILENAME

    @classmethod
    def from_pytest(cls, config: Any) -> SessionConfig:
        """Parse every option of `config` (pytest's Config, or anything with getoption/getini)."""
        values = {option.key: parse_option(config, option) for option in OPTIONS}
        if config.getoption("energy_against_all") and values["against"] is None:
            raise UsageError("--energy-against-all says which tests to A/B; it needs --energy-against REV as well")
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
            carbon=carbon, gpus_per_worker=values["gpus_per_worker"], dist_timeout_s=values["dist_timeout_s"],
            confirm=values["confirm"], against=values["against"],
            against_all=bool(config.getoption("energy_against_all")), max_pairs=values["max_pairs"])

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
