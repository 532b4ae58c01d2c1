"""The second look's pytest side: defer a suspected test's report, look again at the end, then report it.

Registered by pytest_energy.plugin with --energy when --energy-confirm is above 0 or --energy-against is
given (never in an A/B child, never under torchrun, never in a run that saves baselines: it gates nothing).

How a suspected test is reported once, with its final verdict: every energy test runs through
`pytest_runtest_protocol` here with its reports held back (pytest's own `runtestprotocol(log=False)`); an
unsuspected test's reports are logged right away, as pytest would. A test the gate suspects (plugin._judged asks
`suspects`) keeps its reports until the session's last test has run (`pytest_runtestloop`): then it is
re-run on this same process (confirm), or measured against the base revision in fresh processes (A/B), its
verdicts are replaced, its call report passes or fails, and only then are its reports logged. Under xdist this
all happens on the worker that measured the test, with its GPUs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from _pytest.runner import runtestprotocol

from ..errors import EnergyError
from ..plugin import FIXTURE, RECORD, RERUN_RECORD, RERUNNING, SETTINGS, is_energy_test, publish_result

if TYPE_CHECKING:
    from ..records import Outcome, TestRecord
    from ..session import EnergySession
    from .git import BaseRevision, Worktree


@dataclass
class _Held:
    """A suspected test whose reports wait for its second look."""

    item: pytest.Item
    record: TestRecord
    outcome: Outcome
    call_duration_s: float | None
    reports: list[Any] = field(default_factory=list)
    reruns: list[Outcome] = field(default_factory=list)
    cost_s: float = 0.0
    failed_rerun: Any = None  # the report of a re-run whose test failed


class Recheck:
    def __init__(self, session: EnergySession, base: BaseRevision | None) -> None:
        self.session = session
        self.confirm = session.config.confirm
        self.base = base
        self.held: dict[str, _Held] = {}
        self._worktree: Worktree | None = None

    # -- which tests ---------------------------------------------------------------------------------------
    def suspects(self, item: pytest.Item, record: TestRecord, outcome: Outcome,
                 call_duration_s: float | None) -> bool:
        """Called by plugin._judged for each judged test: hold it for a second look when it is suspected."""
        from ..gate.confirm import suspected
        from .ab import flagged

        if not is_energy_test(item):
            return False  # a pytest-benchmark test: its protocol is pytest's, its report cannot be held
        if outcome.failure is not None:
            return False  # it fails for another reason (e.g. --energy-require-baseline): nothing to look at twice
        if self.base is not None:
            wanted = outcome.gating and (self.session.config.against_all or flagged(outcome))
        else:
            wanted = self.confirm > 0 and bool(suspected(outcome))
        if wanted:
            self.held[item.nodeid] = _Held(item, record, outcome, call_duration_s)
        return wanted

    # -- pytest's protocol, with the reports held back -------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
        if not is_energy_test(item):
            return None
        reports = runtestprotocol(item, nextitem=nextitem, log=False)
        held = self.held.get(item.nodeid)
        if held is not None:
            held.reports = reports
        else:
            _log(item, reports)
        return True

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session):
        result = yield
        if self.held:
            try:
                self._second_look(session)
            finally:
                for held in self.held.values():
                    _log(held.item, held.reports)
                self.held.clear()
        return result

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.close()

    def close(self) -> None:
        if self._worktree is not None:
            self._worktree.close()

    # -- the second look ------------------------------------------------------------------------------------
    def _second_look(self, session: pytest.Session) -> None:
        try:
            if self.base is not None:
                self._ab(session)
            else:
                self._confirm(session)
        except (EnergyError, OSError) as exc:
            for held in self.held.values():
                held.outcome.failure = f"pytest-energy: the second look failed: {exc}"
                self._publish(held, held.outcome.verdicts, None)
        finally:
            session._setupstate.teardown_exact(None)  # the last re-run kept the fixtures up for a next one

    def _confirm(self, session: pytest.Session) -> None:
        from ..gate.confirm import confirm_outcome, confirmation_summary, still_convicted
        from ..records import Recheck as RecheckRecord

        pending = list(self.held.values())
        for round_no in range(self.confirm):
            todo = [h for h in pending if h.failed_rerun is None and still_convicted(h.outcome, h.reruns)]
            if not todo:
                break
            for k, held in enumerate(todo):
                # Keep the module's and session's fixtures up while more re-runs follow.
                nxt = todo[k + 1].item if k + 1 < len(todo) else (todo[0].item if round_no + 1 < self.confirm
                                                                  else None)
                if nxt is held.item:
                    # pytest tears down only what the next item does not share: naming the item itself would keep
                    # its own function-scoped fixtures (the `energy` fixture among them) for the next re-run.
                    nxt = _sibling(session, held.item)
                record, reports, seconds = self._rerun(held.item, nxt)
                held.cost_s += seconds
                if record is None:
                    held.failed_rerun = next((r for r in reports if r.failed), None)
                    if held.failed_rerun is None:
                        raise EnergyError(f"a re-run of {held.item.nodeid} passed but measured nothing")
                    continue
                held.reruns.append(self.session.judge(record, held.item.stash[SETTINGS]))
        for held in pending:
            verdicts = confirm_outcome(held.outcome, held.reruns, planned=self.confirm)
            n = len(held.reruns)
            text = confirmation_summary(verdicts, n)
            if held.failed_rerun is not None:
                text = "a re-run failed"
            self._publish(held, verdicts, RecheckRecord("confirm", text, held.cost_s, n))

    def _rerun(self, item: pytest.Item, nextitem: pytest.Item | None) -> tuple[TestRecord | None, list, float]:
        for key in (RECORD, FIXTURE, RERUN_RECORD):
            _drop(item.stash, key)
        item.stash[RERUNNING] = True
        start = time.perf_counter()
        try:
            reports = runtestprotocol(item, nextitem=nextitem, log=False)
        finally:
            item.stash[RERUNNING] = False
        seconds = time.perf_counter() - start
        if any(r.failed for r in reports):
            return None, reports, seconds
        return item.stash.get(RERUN_RECORD, None), reports, seconds

    def _ab(self, session: pytest.Session) -> None:
        from .ab import Subject, run_ab

        subjects = []
        for held in self.held.values():
            settings = held.item.stash[SETTINGS]
            subjects.append(Subject(held.item.nodeid, held.record, held.outcome, settings.tolerance_for))
        assert self.base is not None
        sides = _ProcessSides(self, session.config)
        try:
            results = run_ab(subjects, sides, base_ref=self.base.short, max_pairs=self.session.config.max_pairs,
                             seed=self.session.run_id)
        finally:
            sides.runner.close()
        for nodeid, (verdicts, recheck) in results.items():
            self._publish(self.held[nodeid], verdicts, recheck)

    @property
    def worktree(self) -> Worktree:
        if self._worktree is None:
            from .git import Worktree

            assert self.base is not None
            self._worktree = Worktree(self.base)
        return self._worktree

    def _publish(self, held: _Held, verdicts: list, recheck: Any) -> None:
        """The test's final outcome onto its held call report, then the plugin's usual result hook."""
        held.outcome.verdicts = list(verdicts)
        held.outcome.recheck = recheck
        call = next((r for r in held.reports if r.when == "call"), None)
        if call is None:
            return
        if held.failed_rerun is not None:
            call.outcome = "failed"
            call.longrepr = (f"pytest-energy: re-running the suspected test to confirm it failed:\n"
                             f"{held.failed_rerun.longreprtext}")
        publish_result(held.item, call, self.session, held.record, held.outcome, held.call_duration_s)
        for report in held.reports:  # JUnit XML reads the properties from the reports
            report.user_properties = list(held.item.user_properties)


class _ProcessSides:
    """The A/B's two sides as fresh pytest processes: the base in the worktree, the head in pytest's rootdir."""

    def __init__(self, recheck: Recheck, config: pytest.Config) -> None:
        from .children import ChildRunner

        self.recheck = recheck
        self.config = config
        self.runner = ChildRunner(child_options(config), xdist=config.pluginmanager.hasplugin("xdist"))

    def _tree(self, side: str):
        from pathlib import Path

        if side == "base":
            worktree = self.recheck.worktree
            return worktree.path, worktree.top
        base = self.recheck.base
        assert base is not None
        return Path(self.config.rootpath), base.toplevel

    def exists(self, nodeids):
        tree, top = self._tree("base")
        return self.runner.collect(nodeids, tree, top)

    def measure(self, side, nodeids):
        tree, top = self._tree(side)
        return self.runner.measure(nodeids, tree, top)


# Options a child must not get: where the parent writes and what it judges against; the second look itself.
_NOT_HANDED_ON = frozenset({"json", "markdown", "html", "bmf", "github-benchmark", "baseline-dir", "history",
                            "confirm", "against", "max-pairs"})


def child_options(config: pytest.Config) -> list[str]:
    """The run's --energy-* options given on the command line, for a child that must measure as this run does:
    the core's (config.OPTIONS) and the reference suite's (reference/plugin.REFERENCE_OPTIONS, when loaded)."""
    from ..config import OPTIONS

    options = list(OPTIONS)
    if config.pluginmanager.hasplugin("pytest_energy.reference.plugin"):
        from ..reference.plugin import REFERENCE_OPTIONS

        options += list(REFERENCE_OPTIONS)
    out = []
    for option in options:
        if option.name in _NOT_HANDED_ON:
            continue
        value = config.getoption(option.dest, None)
        if value is not None:
            out.append(f"{option.flag}={value}")
    return out


def _sibling(session: pytest.Session, item: pytest.Item) -> pytest.Item | None:
    """Another collected item under the same parent (its module's and session's fixtures stay up when it is
    named as the next item), else None: everything is torn down, and set up again for the next re-run."""
    return next((other for other in session.items if other is not item and other.parent is item.parent), None)


def _drop(stash: Any, key: Any) -> None:
    try:
        del stash[key]
    except KeyError:
        pass


def _log(item: pytest.Item, reports: list[Any]) -> None:
    """What pytest's runtestprotocol(log=True) would have logged, now."""
    ihook = item.ihook
    ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for report in reports:
        ihook.pytest_runtest_logreport(report=report)
    ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
