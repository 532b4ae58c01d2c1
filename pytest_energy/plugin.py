"""pytest wiring: options, the `energy` fixture and marker, the gate's verdict on each test, the summary.

Thin on purpose: options are declared and parsed in config.py; measuring, statistics, baselines and
reports live in the core, which does not import pytest. Nothing heavy is imported unless --energy is given.
Typed objects travel as dicts only across the pytest-xdist boundary (the test report).
"""

from __future__ import annotations

from typing import Any

import pytest

from .config import MARKER_HELP, RunMode, SessionConfig, TestSettings, add_options, settings_for
from .errors import EnergyError, EnergyWarning, UsageError
from .records import TestRecord, plain
from .session import BenchmarkResult, EnergySession

# The xdist GPU split and torchrun ranks: a plugin module of its own, loaded with this one so that its
# xdist hooks are known when `-n auto` is resolved (before pytest_configure).
pytest_plugins = ["pytest_energy.distributed.plugin"]

SESSION = pytest.StashKey[EnergySession]()
MODE = pytest.StashKey[RunMode]()
RECORD = pytest.StashKey[TestRecord]()
SETTINGS = pytest.StashKey[TestSettings]()
FIXTURE = pytest.StashKey[Any]()  # the test's EnergyFixture: closed (its last probe) before the gate judges

SKIP_REASON = RunMode().skip_reason
ONLY_REASON = "not an energy benchmark (--energy-only)"


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def _mode(config: pytest.Config) -> RunMode:
    return config.stash.get(MODE, RunMode())


def _pytest_benchmark_active(config: pytest.Config) -> bool:
    return config.pluginmanager.hasplugin("benchmark")  # pytest-benchmark's entry point (not -p no:benchmark)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    try:
        config.stash[MODE] = mode = RunMode.from_pytest(config)
    except EnergyError as exc:
        raise pytest.UsageError(f"pytest-energy: {exc}") from None
    if not mode.measure:
        return
    from .report.outputs import check_targets

    try:
        session = EnergySession(SessionConfig.from_pytest(config))
        problems = check_targets(session.config)
        if problems:
            raise UsageError("; ".join(problems))
        from .distributed.plugin import attach

        attach(config, session)  # under torchrun the meter is this rank's share of the devices
        # Open the meter and read the baselines now, on the xdist controller too: a meter named explicitly
        # that cannot be used, or a damaged baseline file, stops the run here with one clean usage error
        # instead of a traceback from every worker.
        session.meter  # noqa: B018
        session.load_baselines()
    except EnergyError as exc:
        raise pytest.UsageError(f"pytest-energy: {exc}") from None
    for warning in session.config.warnings():
        config.issue_config_time_warning(EnergyWarning(warning), stacklevel=2)
    config.stash[SESSION] = session
    if not hasattr(config, "workerinput") and session.reports:
        config.pluginmanager.register(_Controller(session), "energy-controller")
    if _pytest_benchmark_active(config):
        from .integrations.pytest_benchmark import BenchmarkMetering

        config.pluginmanager.register(BenchmarkMetering(lambda item: item.config.stash[SESSION].measurer, _record),
                                      "energy-pytest-benchmark")


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION, None)
    if session is not None:
        session.close()


def _is_energy_test(item: pytest.Item) -> bool:
    return "energy" in getattr(item, "fixturenames", ()) or item.get_closest_marker("energy") is not None


def _uses_benchmark(item: pytest.Item) -> bool:
    """A pytest-benchmark test: metered with --energy, but never skipped by us without it (it is not ours)."""
    return "benchmark" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mode = _mode(config)
    benchmark_active = _pytest_benchmark_active(config)
    skip = pytest.mark.skip(reason=mode.skip_reason)
    only = pytest.mark.skip(reason=ONLY_REASON)
    for item in items:
        if _is_energy_test(item):
            if not mode.run:
                item.add_marker(skip)
        elif mode.only and not (benchmark_active and _uses_benchmark(item)):
            item.add_marker(only)


def _settings(item: pytest.Item) -> TestSettings:
    """Marker > command line > ini > default, decided once per test (in config.py)."""
    if SETTINGS not in item.stash:
        marker = item.get_closest_marker("energy")
        kwargs: dict[str, Any] = {}
        if marker is not None:
            if marker.args:
                raise UsageError(f"{item.nodeid}: energy marker takes keyword arguments only, got {marker.args!r}")
            kwargs = dict(marker.kwargs)
        session = item.config.stash.get(SESSION, None)
        # A --energy-disable run has no session: the marker is still checked against the defaults.
        item.stash[SETTINGS] = settings_for(session.config if session else SessionConfig(), kwargs,
                                            where=f"{item.nodeid}: ")
    return item.stash[SETTINGS]


def _new_record(item: pytest.Item, settings: TestSettings) -> TestRecord:
    callspec = getattr(item, "callspec", None)
    params = {k: _jsonable(v) for k, v in callspec.params.items()} if callspec else None
    return TestRecord(nodeid=item.nodeid, name=item.name, group=settings.group, params=params)


def _record(item: pytest.Item) -> TestRecord:
    """The test's record, shared by everything that meters it (the `energy` fixture and `benchmark`)."""
    if RECORD not in item.stash:
        item.stash[RECORD] = _new_record(item, _settings(item))
    return item.stash[RECORD]


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)


def _fixture_for(item: pytest.Item):
    from .fixture import EnergyFixture

    settings = _settings(item)
    if _mode(item.config).disabled:
        from .measure import UnmeteredMeasurer

        # A throwaway record: a smoke run keeps, compares and reports nothing.
        return EnergyFixture(UnmeteredMeasurer(), _new_record(item, settings), settings, disabled=True)
    session = item.config.stash[SESSION]
    try:
        measurer = session.measurer
    except EnergyError as exc:
        pytest.fail(f"pytest-energy: {exc}", pytrace=False)
    fixture = EnergyFixture(measurer, _record(item), settings)
    item.stash[FIXTURE] = fixture
    return fixture


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if _mode(item.config).run and _is_energy_test(item):
        try:
            _settings(item)
        except UsageError as exc:
            pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def energy(request: pytest.FixtureRequest):
    """Meter energy, time and peak memory of code in a test (see pytest_energy.fixture.EnergyFixture)."""
    mode = _mode(request.config)
    if not mode.run:
        pytest.skip(mode.skip_reason)
    return _fixture_for(request.node)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function):
    """A test with the marker but not the fixture: meter the whole test body, warmup + rounds times.

    Not a test that uses `benchmark`: pytest-benchmark's fixture can run once per test, and its rounds are
    metered where they happen (pytest_energy.integrations.pytest_benchmark). Not in a --energy-disable run:
    the body runs once, as pytest runs it.
    """
    mode = _mode(pyfuncitem.config)
    if (not mode.measure or "energy" in pyfuncitem.fixturenames or _uses_benchmark(pyfuncitem)
            or not pyfuncitem.get_closest_marker("energy")):
        return None
    fixture = _fixture_for(pyfuncitem)
    argnames = pyfuncitem._fixtureinfo.argnames
    fixture(pyfuncitem.obj, **{name: pyfuncitem.funcargs[name] for name in argnames})
    return True


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    record = item.stash.get(RECORD, None)
    if call.when != "call" or record is None or not record.metrics:
        return report
    fixture = item.stash.get(FIXTURE, None)
    if report.passed and fixture is not None:
        fixture.close()  # a test metered through pytest-benchmark's `benchmark` has no energy fixture
    from .gate.judge import Outcome
    from .report.format import failure_message

    session = item.config.stash[SESSION]
    settings = item.stash[SETTINGS]
    conversions = record.make_jsonable()  # before anything is saved or sent to the xdist controller
    outcome = None
    if report.passed:
        try:
            outcome = session.judge(record, settings)
        except EnergyError as exc:
            outcome = Outcome(failure=f"pytest-energy: {exc}")
        outcome.notes += conversions
        if outcome.failed:
            report.outcome = "failed"
            report.longrepr = failure_message(outcome)
    # The result rides on the report as plain data, so the xdist controller gets it too.
    report.energy_result = BenchmarkResult(record, settings, outcome, getattr(call, "duration", None),
                                           machine=session.fingerprint(), placement=session.placement).to_dict()
    for name, metric in record.metrics.items():
        if metric.samples:
            item.user_properties.append((f"energy:{name}[{metric.unit}]", f"{metric.mean:.6g}"))
    for verdict in (outcome.verdicts if outcome else []):
        item.user_properties.append((f"energy-verdict:{verdict.metric}", str(verdict.verdict)))
    return report


class _Controller:
    """Hooks of the process that owns the results: gathers reports, saves baselines, writes reports.

    Registered only with --energy, on the controller (or the only process without xdist).
    """

    def __init__(self, session: EnergySession) -> None:
        self.session = session
        self.run = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "energy_result", None)
        if data is None or report.when != "call":
            return
        result = BenchmarkResult.from_dict(plain(data))
        if result.outcome is None:
            return  # the test body itself failed: its figures are not a result
        self.session.results.append(result)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.run = self.session.finish(int(session.exitstatus), session.testsfailed)
        if self.run.errors:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter) -> None:
        from .report.terminal import terminal_lines

        terminalreporter.section("energy")
        run = self.run
        if run is None:
            return
        for line in terminal_lines(run):
            terminalreporter.write_line(line)
        for error in run.errors:
            terminalreporter.write_line(f"pytest-energy ERROR: {error}", red=True, bold=True)
