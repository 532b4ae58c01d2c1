"""pytest wiring: options, the `energy` fixture and marker, the gate's verdict on each test, the end of the run.

Thin on purpose: options are declared and parsed in config/; measuring, statistics, baselines and
reports live in the core, which does not import pytest. This module imports nothing heavy: the session,
the gate and the reports are imported inside the hooks, and only when --energy is given, so a plain
`pytest` run pays for little more than the option table.

With --energy, `pytest_configure` builds the `EnergySession` (registered as a plugin under
`session.SESSION_PLUGIN`: other plugins find it with `session.get_session(config)`) and registers the
reporters (report/reporters.py), each a plugin of its own. Two hooks of ours (`EnergyHookspecs`) hand
them the results: each test's when it is judged, the run's when it is finished.
Typed objects travel as dicts only across the pytest-xdist boundary (the test report).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from pluggy import HookspecMarker

# Only what every run needs: the option table and the RunMode (config.settings loads with --energy).
from .config import MARKER_HELP, RunMode, add_options
from .errors import EnergyError, EnergyWarning, UsageError

if TYPE_CHECKING:
    from .config import TestSettings
    from .records import Outcome, TestRecord
    from .session import BenchmarkResult, EnergySession, RunResult

# The xdist GPU split and torchrun ranks: a plugin module of its own, loaded with this one so that its
# xdist hooks are known when `-n auto` is resolved (before pytest_configure). It never imports this module.
pytest_plugins = ["pytest_energy.distributed.plugin"]

MODE = pytest.StashKey[RunMode]()
RECORD = pytest.StashKey["TestRecord"]()
SETTINGS = pytest.StashKey["TestSettings"]()
FIXTURE = pytest.StashKey[Any]()  # the test's EnergyFixture: closed (its last probe) before the gate judges
# The second look (pytest_energy.recheck.plugin): its plugin's name; set while a suspected test is re-run (its
# record is then collected under RERUN_RECORD, not judged).
RECHECK_PLUGIN = "energy-recheck"
RERUNNING = pytest.StashKey[bool]()
RERUN_RECORD = pytest.StashKey["TestRecord"]()

ONLY_REASON = "not an energy benchmark (--energy-only)"

hookspec = HookspecMarker("pytest")


class EnergyHookspecs:
    """The hooks pytest-energy calls; the reporters (report/reporters.py) implement them, and so can any plugin
    that wants another output."""

    @hookspec
    def pytest_energy_test_result(self, item: pytest.Item, result: BenchmarkResult) -> None:
        """A metered test's result is final (judged, or not judged because its body failed), on the process
        that measured it, while its call report is made (`item.user_properties` still reach JUnit XML)."""

    @hookspec
    def pytest_energy_run_result(self, config: pytest.Config, run: RunResult) -> None:
        """The run is finished and its baselines saved, on the process that reports (the xdist controller,
        torchrun's rank 0). A reporter that cannot write its output appends why to `run.errors`: the run then
        exits with status 1 and the terminal names it."""


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(EnergyHookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


# Before pytest_configure (and in a pytester run that never configured us): no --energy. Built once, not on
# every hook call of every test.
_NO_MODE = RunMode()


def _mode(config: pytest.Config) -> RunMode:
    return config.stash.get(MODE, _NO_MODE)


def _session(config: pytest.Config) -> EnergySession:
    """The session of a run that measures (only called once _mode(config).measure is known)."""
    from .session import get_session

    session = get_session(config)
    assert session is not None, "pytest-energy: no session although --energy measures"
    return session


def _pytest_benchmark_active(config: pytest.Config) -> bool:
    return config.pluginmanager.hasplugin("benchmark")  # pytest-benchmark's entry point (not -p no:benchmark)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    try:
        config.stash[MODE] = mode = RunMode.from_pytest(config)
    except EnergyError as exc:
        raise pytest.UsageError(f"pytest-energy: {exc}") from None
    if mode.measure:
        _start(config)


def _start(config: pytest.Config) -> None:
    """--energy: the session, its meter and baselines, its reporters. Every problem that would lose the run's
    results at the end (an unwritable output, a damaged baseline file, a meter named explicitly that cannot be
    used) stops the run here with one clean usage error, on the xdist controller too."""
    from .distributed import plugin as distributed
    from .gate.store import baseline_folder_problem
    from .config import SessionConfig
    from .report.outputs import check_targets
    from .session import SESSION_PLUGIN, EnergySession

    try:
        session_config = SessionConfig.from_pytest(config)
        problems = check_targets(session_config)
        folder = baseline_folder_problem(session_config.baseline_path, session_config.save_baseline)
        if problems or folder:
            raise UsageError("; ".join(problems + ([folder] if folder else [])))
        # Under torchrun the meter is this rank's share of the devices, claimed when it is opened.
        session = EnergySession(session_config, ranks=distributed.open_ranks(config, session_config))
        session.meter  # noqa: B018
        session.load_baselines()
        session.placement = distributed.placement(config, session)
    except EnergyError as exc:
        raise pytest.UsageError(f"pytest-energy: {exc}") from None
    for warning in session_config.warnings():
        config.issue_config_time_warning(EnergyWarning(warning), stacklevel=2)
    config.pluginmanager.register(session, SESSION_PLUGIN)
    reports = not hasattr(config, "workerinput") and session.reports
    from .report.reporters import register

    register(config, session_config, reports=reports)
    if reports:
        config.pluginmanager.register(_Controller(session), "energy-controller")
    _start_second_look(config, session)
    if _pytest_benchmark_active(config):
        from .integrations.pytest_benchmark import BenchmarkMetering

        config.pluginmanager.register(BenchmarkMetering(lambda item: _session(item.config).measurer, _record),
                                      "energy-pytest-benchmark")


def _start_second_look(config: pytest.Config, session: EnergySession) -> None:
    """--energy-confirm N (default 3) and --energy-against REV: the second look at suspected tests
    (pytest_energy.recheck). Not in a run that saves (it gates nothing), not in an A/B child (it only measures),
    not under torchrun (a re-run would have to be collective). REV is resolved here: a revision this clone
    lacks stops the run before anything is measured (exit 4), with the `git fetch` that brings it."""
    import os

    from .recheck.children import CHILD_ENV

    cfg = session.config
    if os.environ.get(CHILD_ENV) or cfg.save_baseline or session.ranks is not None:
        return
    if cfg.confirm <= 0 and cfg.against is None:
        return
    from .recheck.plugin import Recheck

    base = None
    if cfg.against is not None:
        from .recheck.git import resolve_base

        try:
            base = resolve_base(cfg.against, cfg.rootdir)
        except EnergyError as exc:
            raise pytest.UsageError(f"pytest-energy: {exc}") from None
        session.ab_base = base.short
    config.pluginmanager.register(Recheck(session, base), RECHECK_PLUGIN)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _mode(config).measure:
        from .session import get_session

        session = get_session(config)
        if session is not None:
            session.close()


def is_energy_test(item: pytest.Item) -> bool:
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
        if is_energy_test(item):
            if not mode.run:
                item.add_marker(skip)
        elif mode.only and not (benchmark_active and _uses_benchmark(item)):
            item.add_marker(only)


def _settings(item: pytest.Item) -> TestSettings:
    """Marker > command line > ini > default, decided once per test (in config.settings)."""
    if SETTINGS not in item.stash:
        from .config import SessionConfig, settings_for

        marker = item.get_closest_marker("energy")
        kwargs: dict[str, Any] = {}
        if marker is not None:
            if marker.args:
                raise UsageError(f"{item.nodeid}: energy marker takes keyword arguments only, got {marker.args!r}")
            kwargs = dict(marker.kwargs)
        # A --energy-disable run has no session: the marker is still checked against the defaults.
        session_config = _session(item.config).config if _mode(item.config).measure else SessionConfig()
        item.stash[SETTINGS] = settings_for(session_config, kwargs, where=f"{item.nodeid}: ")
    return item.stash[SETTINGS]


def _new_record(item: pytest.Item, settings: TestSettings) -> TestRecord:
    from .records import TestRecord

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
    try:
        measurer = _session(item.config).measurer
    except EnergyError as exc:
        pytest.fail(f"pytest-energy: {exc}", pytrace=False)
    fixture = EnergyFixture(measurer, _record(item), settings)
    item.stash[FIXTURE] = fixture
    return fixture


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if _mode(item.config).run and is_energy_test(item):
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


def _exchanged(item: pytest.Item, call: pytest.CallInfo, report: pytest.TestReport) -> bool:
    """Under torchrun every rank sends its part of an energy test exactly once: after its call, or after a
    setup that failed (the call never comes)."""
    return is_energy_test(item) and (call.when == "call" or (call.when == "setup" and not report.passed))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if not _mode(item.config).measure:
        return report
    session = _session(item.config)
    record = item.stash.get(RECORD, None)
    if call.when == "call" and report.passed and record is not None and record.metrics:
        fixture = item.stash.get(FIXTURE, None)
        if fixture is not None:  # a test metered through pytest-benchmark's `benchmark` has no energy fixture
            fixture.close()
    if call.when == "call" and item.stash.get(RERUNNING, False):
        # A re-run of a suspected test (pytest_energy.recheck): its record is collected there, not judged here.
        if report.passed and record is not None and record.metrics:
            record.make_jsonable()
            item.stash[RERUN_RECORD] = record
        return report
    if session.ranks is not None and _exchanged(item, call, report):
        from .distributed.plugin import gather

        # Rank 0 judges the record combined from every rank's part; the other ranks judge nothing.
        record = gather(item.config, item.nodeid, report, record)
    if call.when != "call" or record is None or not record.metrics:
        return report
    return _judged(item, call, report, session, record)


def _judged(item: pytest.Item, call: pytest.CallInfo, report: pytest.TestReport, session: EnergySession,
            record: TestRecord) -> pytest.TestReport:
    """The gate's verdict on a metered test (a regression fails it); the result rides on the report."""
    from .gate.judge import Outcome

    settings = item.stash[SETTINGS]
    conversions = record.make_jsonable()  # before anything is saved or sent to the xdist controller
    outcome = None
    duration = getattr(call, "duration", None)
    if report.passed:
        try:
            outcome = session.judge(record, settings)
        except EnergyError as exc:
            outcome = Outcome(failure=f"pytest-energy: {exc}")
        outcome.notes += conversions
        recheck = item.config.pluginmanager.get_plugin(RECHECK_PLUGIN)
        if recheck is not None and recheck.suspects(item, record, outcome, duration):
            return report  # held: reported once its second look is done (pytest_energy.recheck.plugin)
    return publish_result(item, report, session, record, outcome, duration)


def publish_result(item: pytest.Item, report: pytest.TestReport, session: EnergySession, record: TestRecord,
                   outcome: Outcome | None, call_duration_s: float | None) -> pytest.TestReport:
    """A judged test's final outcome onto its call report (a regression fails it) and to the reporters."""
    from .report.format import failure_message
    from .session import BenchmarkResult

    settings = item.stash[SETTINGS]
    if outcome is not None and outcome.failed:
        report.outcome = "failed"
        report.longrepr = failure_message(outcome)
    result = BenchmarkResult(record, settings, outcome, call_duration_s,
                             machine=session.fingerprint(), placement=session.placement)
    # The result rides on the report as plain data, so the xdist controller gets it too.
    report.energy_result = result.to_dict()
    item.config.hook.pytest_energy_test_result(item=item, result=result)
    return report


class _Controller:
    """Hooks of the process that owns the results: gathers the tests' results, finishes the session (saves
    baselines), hands the run to the reporters. Registered only with --energy, on the process that reports."""

    def __init__(self, session: EnergySession) -> None:
        self.session = session

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "energy_result", None)
        if data is None or report.when != "call":
            return
        from .records import plain
        from .session import BenchmarkResult

        result = BenchmarkResult.from_dict(plain(data))
        if result.outcome is None:
            return  # the test body itself failed: its figures are not a result
        self.session.results.append(result)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        from .distributed.plugin import placement
        from .report.outputs import complete_run

        config = session.config
        self.session.placement = placement(config, self.session)  # the xdist split is known only now
        run = complete_run(self.session.finish(int(session.exitstatus), session.testsfailed))
        config.hook.pytest_energy_run_result(config=config, run=run)
        if run.errors:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
