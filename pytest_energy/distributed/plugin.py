"""pytest hooks for parallel runs: one pytest-xdist worker per GPU (block), and torchrun ranks.

Loaded by pytest_energy.plugin (its `pytest_plugins`), so the xdist hooks are known before xdist asks
them (`-n auto` is resolved before pytest_configure). Every xdist hook is optional: this module loads
without pytest-xdist. Nothing happens without --energy. It never imports pytest_energy.plugin: it finds
the session with the public lookup `session.get_session(config)`, and the main plugin calls its three
public functions at fixed points: `open_ranks` (before the meter is opened), `placement` (where this
process measures) and `gather` (a test's parts from every rank, before the gate judges).

**xdist.** The controller writes each worker's CUDA_VISIBLE_DEVICES into the worker's execnet spec
(`pytest_xdist_setupnodes`). execnet sets it in the new interpreter before xdist or pytest run any code,
so it holds before any plugin, conftest or test module imports torch; a worker's pytest_configure
would be too late for a conftest that initialises CUDA at import. A crashed worker's replacement
reuses the same spec, and so the same GPUs. The worker checks it got what it was given and tells every
result which GPU(s) it ran on.

**torchrun.** Every rank meters its own devices (distributed.ranks). After each energy test every rank
sends its part to rank 0, which combines the parts, gates and reports; the others only measure. At the
end every rank reports its exit status to rank 0, and the others wait until rank 0 has written its
reports: torchrun stops every rank once one exits with an error, which would kill rank 0 mid-report.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from ..errors import DeviceOrderWarning, EnergyError, EnergyWarning, SharedDeviceWarning, UsageError

# Everything else is imported inside the hooks that need it: this module is loaded in every pytest run.
if TYPE_CHECKING:
    from ..config import SessionConfig
    from ..meters.gpus import VisibleGpu
    from ..records import TestRecord
    from ..session import EnergySession
    from .ranks import RankContext

WORKER_KEY = "energy_placement"  # in xdist's workerinput
PER_RANK_LINES = 10  # tests whose per-rank parts the terminal shows; the JSON report has them all


@dataclass
class _Split:
    """The controller's view of the split."""

    names: list[str]
    spec_ids: list[int] = field(default_factory=list)  # id(spec) of each local worker, in `names`' order
    by_spec: dict[int, dict[str, Any]] = field(default_factory=dict)  # id(spec) -> the worker's placement
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    categories: list[type[Warning]] = field(default_factory=list)  # each warning's class, by where it came from

    def warn(self, texts: list[str] | tuple[str, ...], category: type[Warning]) -> None:
        self.warnings += texts
        self.categories += [category] * len(texts)

    @property
    def placement(self) -> dict[str, Any]:
        """The controller's placement: every worker's GPUs, with the split's notes and warnings."""
        return {"split": {"workers": {name: self.by_spec.get(key) for name, key in zip(self.names, self.spec_ids)},
                          "notes": self.notes, "warnings": self.warnings}}


@dataclass
class _Ranks:
    """This rank's bookkeeping for the session."""

    context: RankContext
    failures: list[dict[str, str]] = field(default_factory=list)  # this rank's failed test reports
    not_combined: dict[str, str] = field(default_factory=dict)  # rank 0: node id -> why
    per_rank: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # rank 0: node id -> parts
    outcomes: list[dict[str, Any]] = field(default_factory=list)  # rank 0: every rank's end of session
    gather_error: str | None = None


SPLIT = pytest.StashKey[_Split]()
RANKS = pytest.StashKey[_Ranks]()


def _session(config: pytest.Config) -> EnergySession | None:
    from ..session import get_session

    return get_session(config)


def open_ranks(config: pytest.Config, session_config: SessionConfig) -> RankContext | None:
    """Called by pytest_energy.plugin before the session and its meter exist: under torchrun, this rank's
    context (the session opens the rank's share of the devices with it) and its hooks; None otherwise."""
    from .ranks import RankContext

    ranks = RankContext.from_env(session_config.dist_timeout_s)
    if ranks is None:
        return None
    if hasattr(config, "workerinput") or (getattr(config.option, "dist", "no") or "no") != "no":
        raise UsageError("torchrun (WORLD_SIZE > 1) and pytest-xdist together are not supported: every rank would "
                         "start its own workers; run torchrun without -n")
    state = config.stash[RANKS] = _Ranks(ranks)
    config.pluginmanager.register(_RankHooks(state), "energy-ranks")
    return ranks


def placement(config: pytest.Config, session: EnergySession) -> dict[str, Any] | None:
    """Where this process measures, for its results and the JSON report: the xdist controller's split (once
    the workers are set up), an xdist worker's GPUs and the metered devices it shares (UsageError when its
    CUDA_VISIBLE_DEVICES changed), the torchrun ranks; None for a plain run."""
    split = config.stash.get(SPLIT, None)
    if split is not None:
        return split.placement
    if hasattr(config, "workerinput"):
        return _worker_placement(config, session)
    return session.metering.rank_placement()


# --- the GPUs ---------------------------------------------------------------------------------------------

def _visible() -> tuple[list[VisibleGpu], list[str], list[str]]:
    """The GPUs this process may use, as NVML lists them (never through CUDA), resolution warnings, and the
    warning that an index selector may name another GPU for CUDA than for NVML."""
    from ..meters.gpus import ENV, index_order_warning, list_gpus, resolve_visible, visible_gpu_selectors

    try:
        listed = list_gpus()
    except EnergyError:
        return [], [], []
    visible, warnings = resolve_visible(os.environ.get(ENV), listed)
    order = index_order_warning(visible_gpu_selectors(os.environ.get(ENV)), listed)
    return [v for v in visible if v.index is not None], warnings, [order] if order else []


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """With --energy, `-n auto` starts one worker per block of GPUs (xdist's own default: one per CPU)."""
    if not config.getoption("energy", False):
        return None
    from ..config import OPTIONS, parse_option

    try:
        per_worker = parse_option(config, next(o for o in OPTIONS if o.name == "gpus-per-worker"))
    except UsageError as exc:
        raise pytest.UsageError(f"pytest-energy: {exc}") from None
    visible, _, _ = _visible()
    if not visible or per_worker == 0:
        return None  # no GPU, or not split: let xdist count CPUs
    return max(1, len(visible) // (per_worker or 1))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_setupnodes(config: pytest.Config, specs: list) -> None:
    """Give each local worker its GPUs through its spec's environment, before the worker starts."""
    session = _session(config)
    if session is None:
        return
    from ..meters.gpus import ENV
    from .split import split_gpus

    local = [s for s in specs if s.popen and not s.via]
    names = [str(s.id) for s in local]
    state = _Split(names)
    if len(local) < len(specs):
        state.notes.append(f"{len(specs) - len(local)} remote --tx worker(s) are not given GPUs: theirs are not ours")
    visible, warnings, order = _visible()
    state.warn(warnings, EnergyWarning)
    state.warn(order, DeviceOrderWarning)
    if any(ENV in (s.env or {}) for s in local):
        state.notes.append(f"{ENV} is set in --tx: the workers were placed by hand, so GPUs are not split")
        state.by_spec, shared = _placed_by_hand(local, names)
        if shared:
            state.warn([
                f"workers {', '.join(shared)} were placed on the same GPU(s) by --tx: NVML meters a whole GPU, so "
                "their GPU energy (and power, energy per item, CO2, cost) includes each other's load; their "
                "results are neither compared with nor saved as baselines"], SharedDeviceWarning)
    elif local:
        try:
            plan = split_gpus(visible, len(local), session.config.gpus_per_worker, names)
        except UsageError as exc:
            raise pytest.UsageError(f"pytest-energy: --energy-gpus-per-worker: {exc}") from None
        state.warn(plan.warnings, SharedDeviceWarning)  # the split's only warnings: workers share GPUs
        state.notes += plan.notes
        for spec, assignment in zip(local, plan.assignments):
            spec.env[ENV] = assignment.env  # execnet sets it in the new interpreter before anything else runs
            state.by_spec[id(spec)] = {
                "cuda_visible_devices": assignment.env, "gpus": [g.to_dict() for g in assignment.gpus],
                "shared_with": [names[i] for i in assignment.shared_with], "gpus_per_worker": plan.per_worker}
        if not plan.assignments and plan.per_worker == 0 and visible and len(local) > 1:
            for spec, name in zip(local, names):  # not split: every worker uses every GPU
                state.by_spec[id(spec)] = {"cuda_visible_devices": os.environ.get(ENV),
                                           "gpus": [g.to_dict() for g in visible], "gpus_per_worker": 0,
                                           "shared_with": [n for n in names if n != name]}
    state.spec_ids = [id(s) for s in local]
    config.stash[SPLIT] = state  # the main plugin reads it through `placement` at the end
    for text, category in zip(state.warnings, state.categories):
        config.issue_config_time_warning(category(f"pytest-energy: {text}"), stacklevel=2)


def _placed_by_hand(local: list, names: list[str]) -> tuple[dict[int, dict[str, Any]], list[str]]:
    """Placements of workers given CUDA_VISIBLE_DEVICES in --tx, with the workers that overlap."""
    from ..meters.gpus import ENV, list_gpus, resolve_visible

    try:
        listed = list_gpus()
    except EnergyError:
        listed = None
    chosen = []
    for spec in local:
        env = (spec.env or {}).get(ENV, os.environ.get(ENV))
        chosen.append((spec, env, resolve_visible(env, listed)[0] if env is not None or listed else []))

    def ids(gpus: list[VisibleGpu]) -> set[str]:
        return {g.uuid or g.selector for g in gpus}

    by_spec = {}
    for i, (spec, env, gpus) in enumerate(chosen):
        others = [names[j] for j, (_, _, theirs) in enumerate(chosen) if j != i and ids(gpus) & ids(theirs)]
        by_spec[id(spec)] = {"cuda_visible_devices": env, "gpus": [g.to_dict() for g in gpus],
                             "shared_with": others, "gpus_per_worker": None}
    return by_spec, [names[i] for i, (spec, _, _) in enumerate(chosen) if by_spec[id(spec)]["shared_with"]]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    state = node.config.stash.get(SPLIT, None)
    if state is not None:
        placement = state.by_spec.get(id(node.gateway.spec))
        if placement is not None:
            node.workerinput[WORKER_KEY] = placement


def _worker_placement(config: pytest.Config, session: EnergySession) -> dict[str, Any]:
    """This worker's GPUs (checked against its environment) and the metered devices it shares."""
    from ..meters.gpus import ENV

    workerinput = config.workerinput  # type: ignore[attr-defined]
    given = workerinput.get(WORKER_KEY)
    placement: dict[str, Any] = {"worker": workerinput.get("workerid"), "cuda_visible_devices": os.environ.get(ENV),
                                 "gpus": [], "shared_with": []}
    if given is not None:
        if given["gpus_per_worker"] and os.environ.get(ENV) != given["cuda_visible_devices"]:
            raise UsageError(
                f"xdist worker {placement['worker']} was given {ENV}={given['cuda_visible_devices']!r} but has "
                f"{os.environ.get(ENV)!r}: something changed it before pytest_configure, so the GPU metered "
                "may not be the GPU used")
        placement.update(given)
    shared = []
    meter = session.meter
    if meter.name == "nvml" and placement["shared_with"]:
        gpus = ", ".join(f"GPU {g['index']}" for g in placement["gpus"]) or "the GPUs"
        shared.append(f"{gpus}, shared with {', '.join(placement['shared_with'])}")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if meter.name == "rapl" and workers > 1:
        shared.append(f"the CPU package (RAPL counts it whole), shared with {workers - 1} other worker(s)")
    placement["shared"] = shared
    return placement


# --- torchrun -----------------------------------------------------------------------------------------------

def gather(config: pytest.Config, nodeid: str, report: pytest.TestReport,
           record: TestRecord | None) -> TestRecord | None:
    """Every rank sends its part of an energy test to rank 0 (called by pytest_energy.plugin once per energy
    test: after its call, or after a setup that failed). Rank 0 returns the record combined from every rank's
    part, which is what the gate judges; the other ranks, and rank 0 when a rank failed, skipped or sent
    nothing in time, return None (nothing to judge). A failure to exchange or combine fails the test."""
    state = config.stash[RANKS]
    try:
        parts = state.context.post_test(nodeid, report.outcome, record)
    except EnergyError as exc:  # a rank sent nothing in time (rank 0), or this rank's record cannot be sent
        report.outcome, report.longrepr = "failed", f"pytest-energy: {exc}"
        state.not_combined[nodeid] = str(exc)
        return None
    if parts is None:
        return None
    failed = [p["rank"] for p in parts if p["outcome"] != "passed"]
    if failed:
        state.not_combined[nodeid] = f"not combined: failed or skipped on rank(s) {', '.join(map(str, failed))}"
        return None
    from .ranks import combine_records

    try:
        combined = combine_records(parts)
    except EnergyError as exc:
        report.outcome, report.longrepr = "failed", f"pytest-energy: {nodeid}: {exc}"
        state.not_combined[nodeid] = str(exc)
        return None
    state.per_rank[nodeid] = [w.per_rank for w in combined.windows]
    return combined


class _RankHooks:
    """Registered under torchrun only (by `open_ranks`)."""

    def __init__(self, state: _Ranks) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:  # sent to rank 0 at the end, which lists them
            lines = str(report.longrepr).strip().splitlines()
            self.state.failures.append({"nodeid": report.nodeid, "when": report.when,
                                        "message": lines[-1][:300] if lines else ""})

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Every rank reports its exit status and failures; rank 0 fails the session if another rank failed.
        Runs before pytest_energy's controller writes the reports, so they carry the job's exit status."""
        state, ranks = self.state, self.state.context
        payload = {"rank": ranks.info.rank, "host": ranks.info.host, "exitstatus": int(exitstatus),
                   "failures": state.failures}
        try:
            outcomes = ranks.exchange.gather("session-end", payload)
        except EnergyError as exc:
            state.gather_error = str(exc)
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            return
        if outcomes is None:
            return
        state.outcomes = outcomes
        from ..session import PASSING_EXIT_STATUSES

        if any(o["failures"] or o["exitstatus"] not in PASSING_EXIT_STATUSES for o in outcomes[1:]):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        ranks = self.state.context
        if not ranks.is_main:
            terminalreporter.write_line(f"pytest-energy: rank {ranks.info.rank}: energy results are combined, "
                                        "gated and reported by rank 0")
            return
        for line in rank_lines(self.state):
            terminalreporter.write_line(line)

    def pytest_unconfigure(self) -> None:
        self.state.context.exchange.release()  # rank 0: its reports are written; the others wait for that


# --- the summary ----------------------------------------------------------------------------------------------

@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    split = config.stash.get(SPLIT, None)
    if split is not None:
        for line in split_lines(split):
            terminalreporter.write_line(line)


def split_lines(split: _Split) -> list[str]:
    """The workers' GPUs; nothing at all where there were no GPUs to split (a CPU-only run)."""
    lines: list[str] = []
    if not split.by_spec and not split.warnings:
        return lines
    if split.by_spec:
        k = next(iter(split.by_spec.values()))["gpus_per_worker"]
        how = ("placed by hand with --tx" if k is None else "all of them each, not split" if k == 0 else
               f"{k} each, through CUDA_VISIBLE_DEVICES set before the worker started")
        lines.append(f"pytest-xdist workers and their GPUs ({how}):")
        for name, placement in zip(split.names, split.by_spec.values()):
            gpus = ", ".join(f"GPU {g['index']} ({g['uuid']})" for g in placement["gpus"])
            shared = f"; shared with {', '.join(placement['shared_with'])}" if placement["shared_with"] else ""
            lines.append(f"  {name}: {gpus}{shared}")
    lines += [f"  WARNING: {w}" for w in split.warnings]
    lines += [f"  note: {n}" for n in split.notes]
    return lines


def rank_lines(state: _Ranks) -> list[str]:
    from ..report import format as fmt

    ranks = state.context
    placement = ranks.placement()["distributed"]
    lines = [f"combined over {ranks.info.world_size} torchrun ranks (energy summed over ranks, duration the "
             f"longest rank's; exchange: {placement['exchange']})"]
    for r in placement["ranks"]:
        lines.append(f"  rank {r['rank']} ({r['host']}, local rank {r['local_rank']}) meters "
                     f"{', '.join(r['meters']) or 'nothing of its own'}")
    lines += [f"  note: {n}" for n in placement["notes"]]
    shown = list(state.per_rank.items())[:PER_RANK_LINES]
    for nodeid, windows in shown:
        if windows and windows[-1]:
            parts = ", ".join(f"rank {p['rank']} {fmt.value(p['energy_j'], 'J')} in {fmt.value(p['duration_s'], 's')}"
                              for p in windows[-1])
            lines.append(f"  {nodeid} (last window): {parts}")
    if len(state.per_rank) > len(shown):
        lines.append(f"  ... {len(state.per_rank) - len(shown)} more; every rank's part of every window is in the "
                     "JSON report (energy.per_rank)")
    for nodeid, why in state.not_combined.items():
        lines.append(f"  {nodeid}: {why}")
    if state.gather_error:
        lines.append(f"  the ranks' exit statuses could not be gathered: {state.gather_error}")
    for o in state.outcomes[1:]:
        for f in o["failures"]:
            lines.append(f"  FAILED on rank {o['rank']}: {f['nodeid']} ({f['when']}): {f['message']}")
    return lines
