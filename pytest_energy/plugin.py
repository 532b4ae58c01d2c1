"""pytest wiring: options, the `energy` fixture and marker, the gate's verdict on each test, the summary.

Thin on purpose: options are declared and parsed in config.py; measuring, statistics, baselines and
reports live in the core, which does not import pytest. Nothing heavy is imported unless --energy is given.
Typed objects travel as dicts only across the pytest-xdist boundary (the test report).
"""

from __future__ import annotations

from typing import Any

import pytest

from .config import MARKER_HELP, SessionConfig, TestSettings, add_options, settings_for
from .errors import EnergyError, UsageError
from .records import TestRecord, plain
from .session import BenchmarkResult, EnergySession

SESSION = pytest.StashKey[EnergySession]()
RECORD = pytest.StashKey[TestRecord]()
SETTINGS = pytest.StashKey[TestSettings]()

SKIP_REASON = "energy benchmark: run `pytest --energy` to measure it"


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def _is_xdist_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput") and (getattr(config.option, "dist", "no") or "no") != "no"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    if not config.getoption("energy"):
        return
    try:
        session = EnergySession(SessionConfig.from_pytest(config))
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
    """Marker > command line > ini > default, decided once per test (in config.py)."""
    if SETTINGS not in item.stash:
        marker = item.get_closest_marker("energy")
        kwargs: dict[str, Any] = {}
        if marker is not None:
            if marker.args:
                raise UsageError(f"{item.nodeid}: energy marker takes keyword arguments only, got {marker.args!r}")
            kwargs = dict(marker.kwargs)
        item.stash[SETTINGS] = settings_for(item.config.stash[SESSION].config, kwargs, where=f"{item.nodeid}: ")
    return item.stash[SETTINGS]


def _new_record(item: pytest.Item, settings: TestSettings) -> TestRecord:
    callspec = getattr(item, "callspec", None)
    params = {k: _jsonable(v) for k, v in callspec.params.items()} if callspec else None
    record = TestRecord(nodeid=item.nodeid, name=item.name, group=settings.group, params=params)
    item.stash[RECORD] = record
    return record


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)


def _fixture_for(item: pytest.Item):
    from .fixture import EnergyFixture

    session = item.config.stash[SESSION]
    settings = _settings(item)
    try:
        measurer = session.measurer
    except EnergyError as exc:
        pytest.fail(f"pytest-energy: {exc}", pytrace=False)
    return EnergyFixture(measurer, _new_record(item, settings), settings)


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
    if SESSION not in request.config.stash:
        pytest.skip(SKIP_REASON)
    return _fixture_for(request.node)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function):
    """A test with the marker but not the fixture: meter the whole test body, warmup + rounds times."""
    if (SESSION not in pyfuncitem.config.stash or "energy" in pyfuncitem.fixturenames
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
    from .gate.judge import Outcome
    from .report.format import failure_message

    session = item.config.stash[SESSION]
    settings = item.stash[SETTINGS]
    outcome = None
    if report.passed:
        try:
            outcome = session.judge(record, settings)
        except EnergyError as exc:
            outcome = Outcome(failure=f"pytest-energy: {exc}")
        if outcome.failed:
            report.outcome = "failed"
            report.longrepr = failure_message(outcome)
    # The result rides on the report as plain data, so the xdist controller gets it too.
    report.energy_result = BenchmarkResult(record, settings, outcome).to_dict()
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
        self.run = self.session.finish()
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
