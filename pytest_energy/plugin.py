"""pytest wiring: options, the `energy` fixture and marker, the gate, the end-of-session reports.

Thin on purpose: measuring, statistics, baselines and reports live in the core modules, which do
not import pytest. Nothing heavy is imported unless --energy is given.
"""

from __future__ import annotations

from typing import Any

import pytest

from .errors import EnergyError, UsageError
from .results import TestRecord
from .session import EnergySession
from .settings import DEFAULT_ROUNDS, DEFAULT_TOLERANCE, DEFAULT_WARMUP, TestSettings, apply_marker

SESSION = pytest.StashKey[EnergySession]()
RECORD = pytest.StashKey[TestRecord]()
SETTINGS = pytest.StashKey[TestSettings]()

SKIP_REASON = "energy benchmark: run `pytest --energy` to measure it"

# (option, ini name, default, help). One table so the command line and ini never drift apart.
_VALUED_OPTIONS = [
    ("--energy-meter", "energy_meter", "auto",
     "meter: auto (NVML, else RAPL, else estimate), nvml, rapl or estimate"),
    ("--energy-rounds", "energy_rounds", str(DEFAULT_ROUNDS), "metered rounds per benchmark"),
    ("--energy-warmup", "energy_warmup", str(DEFAULT_WARMUP), "unmetered warmup rounds per benchmark"),
    ("--energy-tolerance", "energy_tolerance", DEFAULT_TOLERANCE,
     "regression tolerance for measured metrics, e.g. 10% (a change must also be significant)"),
    ("--energy-idle-s", "energy_idle_s", "0",
     "measure idle power for this many seconds before the first benchmark and report net-of-idle energy"),
    ("--energy-cpu-watts-per-core", "energy_cpu_watts_per_core", "",
     "power per busy core used by the 'estimate' meter (default 10 W)"),
    ("--energy-baseline-dir", "energy_baseline_dir", "baselines", "baseline folder, relative to rootdir"),
    ("--energy-grid-intensity", "energy_grid_gco2e_per_kwh", "",
     "grid carbon intensity in gCO2e/kWh (default 432.7 = 0.954 lb/kWh, US average, Strubell et al.)"),
    ("--energy-pue", "energy_pue", "", "data-centre PUE multiplier (default 1.0; Strubell et al. use 1.58)"),
    ("--energy-price-kwh", "energy_usd_per_kwh", "", "electricity price in USD/kWh (default 0.12)"),
    ("--energy-hardware-price-hour", "energy_hardware_usd_per_hour", "",
     "hardware rental price in USD/hour, for HULK-style cost (default 0)"),
]
_PATH_OPTIONS = [
    ("--energy-json", "write a JSON report (pytest-benchmark layout plus an 'energy' block) to PATH"),
    ("--energy-markdown", "write a markdown summary to PATH (also written to $GITHUB_STEP_SUMMARY when set)"),
    ("--energy-html", "write a self-contained HTML report (tables and pictures) to PATH"),
]


def _dest(option: str) -> str:
    return option.lstrip("-").replace("-", "_")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("energy", "energy benchmarks (pytest-energy)")
    group.addoption("--energy", action="store_true", default=False,
                    help="run energy benchmarks (tests using the `energy` fixture or marker); "
                         "without it they are skipped")
    for option, ini, default, help_text in _VALUED_OPTIONS:
        group.addoption(option, dest=_dest(option), default=None, metavar="VALUE",
                        help=f"{help_text} [ini: {ini}, default: {default or 'see docs'}]")
        parser.addini(ini, help_text, default=default)
    for option, help_text in _PATH_OPTIONS:
        group.addoption(option, dest=_dest(option), default=None, metavar="PATH", help=help_text)
    group.addoption("--energy-save-baseline", action="store_true", default=False,
                    help="write this run's results to the baseline folder (merging with other tests' entries)")
    group.addoption("--energy-require-baseline", action="store_true", default=False,
                    help="fail an energy benchmark that has no baseline (strict CI)")


def _value(config: pytest.Config, option: str, ini: str) -> str:
    cli = config.getoption(_dest(option))
    return cli if cli is not None else config.getini(ini)


def _is_xdist_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput") and (getattr(config.option, "dist", "no") or "no") != "no"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "energy(rounds=N, warmup=N, tolerance='10%'|{metric: '5%'}, deterministic_tolerance='0%', "
        "group=str, reference=nodeid): an energy benchmark (skipped unless --energy)")
    if not config.getoption("energy"):
        return
    from .session import parse_session_options

    raw: dict[str, Any] = {_dest(o)[len("energy_"):]: _value(config, o, ini) for o, ini, _, _ in _VALUED_OPTIONS}
    try:
        carbon = _carbon_config(raw)
        options = parse_session_options({
            **raw, "save_baseline": config.getoption("energy_save_baseline"),
            "require_baseline": config.getoption("energy_require_baseline"),
            "json_path": config.getoption("energy_json"), "markdown_path": config.getoption("energy_markdown"),
            "html_path": config.getoption("energy_html"), "rootdir": str(config.rootpath), "carbon": carbon,
        })
        session = EnergySession(options)
        if not _is_xdist_controller(config):
            # Open the meter now: a meter named explicitly that cannot be used stops the run here,
            # and a damaged baseline file stops it before anything is measured.
            session.meter  # noqa: B018
            session.load_baselines()
    except EnergyError as exc:
        raise pytest.UsageError(f"pytest-energy: {exc}") from None
    config.stash[SESSION] = session
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(_Controller(session), "energy-controller")


def _carbon_config(raw: dict[str, Any]):
    from .carbon import CarbonConfig

    fields = {"grid_intensity": "grid_gco2e_per_kwh", "pue": "pue", "price_kwh": "electricity_usd_per_kwh",
              "hardware_price_hour": "hardware_usd_per_hour"}
    kwargs = {}
    for key, field_name in fields.items():
        value = raw.pop(key)
        if value in (None, ""):
            continue
        try:
            kwargs[field_name] = float(value)
        except ValueError:
            raise UsageError(f"--energy-{key.replace('_', '-')}: expected a number, got {value!r}") from None
    return CarbonConfig(**kwargs)


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION, None)
    if session is not None:
        session.close()


def _is_energy_test(item: pytest.Item) -> bool:
    return "energy" in getattr(item, "fixturenames", ()) or item.get_closest_marker("energy") is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("energy"):
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if _is_energy_test(item):
            item.add_marker(skip)


def _settings(item: pytest.Item) -> TestSettings:
    """Marker > command line > ini > default, decided once per test."""
    if SETTINGS in item.stash:
        return item.stash[SETTINGS]
    options = item.config.stash[SESSION].options
    base = TestSettings(rounds=options.rounds, warmup=options.warmup, tolerance=options.tolerance)
    marker = item.get_closest_marker("energy")
    settings = base
    if marker is not None:
        if marker.args:
            raise UsageError(f"{item.nodeid}: energy marker takes keyword arguments only, got {marker.args!r}")
        settings = apply_marker(base, dict(marker.kwargs), where=f"{item.nodeid}: ")
    item.stash[SETTINGS] = settings
    return settings


def _new_record(item: pytest.Item, settings: TestSettings) -> TestRecord:
    callspec = getattr(item, "callspec", None)
    params = {k: _jsonable(v) for k, v in callspec.params.items()} if callspec else None
    record = TestRecord(nodeid=item.nodeid, name=item.name, group=settings.group, params=params)
    item.stash[RECORD] = record
    return record


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if SESSION in item.config.stash and _is_energy_test(item):
        try:
            _settings(item)
        except UsageError as exc:
            pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def energy(request: pytest.FixtureRequest):
    """Meter energy, time and peak memory of code in a test (see pytest_energy.fixture.EnergyFixture)."""
    session = request.config.stash.get(SESSION, None)
    if session is None:
        pytest.skip(SKIP_REASON)
    from .fixture import EnergyFixture

    settings = _settings(request.node)
    try:
        measurer = session.measurer
    except EnergyError as exc:
        pytest.fail(f"pytest-energy: {exc}", pytrace=False)
    return EnergyFixture(measurer, _new_record(request.node, settings), settings)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function):
    """A test with the marker but not the fixture: meter the whole test body, warmup + rounds times."""
    session = pyfuncitem.config.stash.get(SESSION, None)
    if session is None or "energy" in pyfuncitem.fixturenames or not pyfuncitem.get_closest_marker("energy"):
        return None
    from .fixture import EnergyFixture

    settings = _settings(pyfuncitem)
    fixture = EnergyFixture(session.measurer, _new_record(pyfuncitem, settings), settings)
    argnames = pyfuncitem._fixtureinfo.argnames
    fixture(pyfuncitem.obj, **{name: pyfuncitem.funcargs[name] for name in argnames})
    return True


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    record = item.stash.get(RECORD, None)
    if call.when != "call" or record is None or not record.metrics:
        return report
    from .session import Outcome

    session = item.config.stash[SESSION]
    outcome = None
    if report.passed:
        try:
            outcome = session.judge(record, item.stash[SETTINGS])
        except EnergyError as exc:
            outcome = Outcome(failure=f"pytest-energy: {exc}")
        if outcome.failure:
            report.outcome = "failed"
            report.longrepr = outcome.failure
    # Data rides on the report (JSON-serialisable) so the xdist controller gets it too.
    report.energy_record = record.to_dict()
    report.energy_outcome = vars(outcome) if outcome else None  # None: the test body failed
    settings = item.stash[SETTINGS]
    report.energy_settings = {"rounds": settings.rounds, "warmup": settings.warmup,
                              "reference": settings.reference}
    for name, metric in record.metrics.items():
        if metric.samples:
            item.user_properties.append((f"energy:{name}[{metric.unit}]",
                                         f"{sum(metric.samples) / len(metric.samples):.6g}"))
    for verdict in (outcome.verdicts if outcome else []):
        item.user_properties.append((f"energy-verdict:{verdict['metric']}", verdict["verdict"]))
    return report


class _Controller:
    """Hooks of the process that owns the results: gathers reports, writes reports and baselines.

    Registered only with --energy, on the controller (or the only process without xdist).
    """

    def __init__(self, session: EnergySession) -> None:
        self.session = session
        self.finish_error: str | None = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "energy_record", None)
        if data is None or report.when != "call":
            return
        outcome = getattr(report, "energy_outcome", None)
        if outcome is None:
            return  # the test body itself failed: its figures are not a result
        from .session import Outcome

        record = TestRecord.from_dict(data)
        self.session.records.append(record)
        self.session.outcomes[record.nodeid] = Outcome(**outcome)
        self.session.settings_by_test[record.nodeid] = report.energy_settings

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        from .reporting import finish_session

        try:
            finish_session(self.session, session.config)
        except EnergyError as exc:
            self.finish_error = str(exc)
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter) -> None:
        from .reporting import terminal_lines

        terminalreporter.section("energy")
        for line in terminal_lines(self.session):
            terminalreporter.write_line(line)
        if self.finish_error:
            terminalreporter.write_line(f"pytest-energy ERROR: {self.finish_error}", red=True, bold=True)
