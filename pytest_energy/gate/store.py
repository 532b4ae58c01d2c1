"""The baselines one run is judged against and saved into: read once at start, pooled once, saved once.

`RunBaselines` is the gate's side of a session: the store (gate/baselines.py), the entries read at start,
the pooled run histories of this machine class (gate/judge.pool_histories) and the save at the end, which
appends this run to every test's history. It says what happened as data (`SavedRun`); the words are the
report layer's. No pytest import.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..files import folder_problem
from .baselines import BaselineEntry, BaselineStore

if TYPE_CHECKING:
    from .judge import HistoryContext

__all__ = ["RunBaselines", "SavedRun", "baseline_folder_problem"]


def baseline_folder_problem(folder: str | Path, save: bool) -> str | None:
    """Why the baseline folder cannot be used as asked (`save`: it is written at the end), or None."""
    folder = Path(folder)
    if save:
        return folder_problem(folder, f"--energy-baseline-dir {folder}", True)
    if folder.exists() and not folder.is_dir():
        return f"--energy-baseline-dir {folder} is a file, not a folder"
    return None


@dataclass
class SavedRun:
    """What saving one run into the baselines did (the report layer words it)."""

    run_id: str
    tests: int  # entries saved
    keep: int  # --energy-history
    reset: bool  # --energy-reset-baseline: every history started afresh
    written: list[str] = field(default_factory=list)
    history_lengths: list[int] = field(default_factory=list)  # runs per stored history, after the save
    restarted: dict[str, list[str]] = field(default_factory=dict)  # nodeid -> metrics whose history restarted
    error: str | None = None  # not every entry or file could be saved (`written` are those that were)


class RunBaselines:
    """The baseline folder as one run uses it. `shown(path)` prints a path as the user would type it."""

    def __init__(self, directory: str | Path, shown: Callable[[Path], str] = str) -> None:
        self.store = BaselineStore(directory)
        self._shown = shown
        self._entries: Mapping[str, BaselineEntry] | None = None  # gate.baselines.StoredEntries: parsed lazily
        self._context: HistoryContext | None = None

    def load(self) -> Mapping[str, BaselineEntry]:
        """Every stored entry, read once: a damaged file raises BaselineError (the run stops before measuring)."""
        if self._entries is None:
            self._entries = self.store.load_all()
        return self._entries

    def entry(self, nodeid: str) -> BaselineEntry | None:
        return self.load().get(nodeid)

    def file_for(self, nodeid: str) -> str:
        """Where `nodeid`'s baseline lives, as the user would type it."""
        return self._shown(self.store.path_for(nodeid))

    def history_context(self, machine: dict[str, Any], probing: bool) -> HistoryContext:
        """The pooled run histories of `machine`'s class, computed once from the entries read at start: never
        from this run (the first call's machine and probing decide; a session has one of each)."""
        if self._context is None:
            from .judge import pool_histories

            self._context = pool_histories(self.load().values(), machine, probing)
        return self._context

    def compared(self, nodeids: Iterable[str]) -> dict[str, BaselineEntry]:
        """The stored entries of `nodeids` ({} when the folder cannot be read: the reports' charts are optional,
        and a damaged file already stopped the workers that judged them)."""
        from ..errors import EnergyError

        nodeids = list(nodeids)
        if not nodeids:
            return {}
        try:
            entries = self.load()
        except EnergyError:
            return {}
        return {nodeid: entries[nodeid] for nodeid in nodeids if nodeid in entries}

    def save(self, entries: list[BaselineEntry], restart: dict[str, frozenset[str]], *, run_id: str, keep: int,
             reset: bool) -> SavedRun:
        """Append this run (`entries`, built with gate.baselines.run_entry) to the stored histories.

        A metric in `restart[nodeid]` (gate.baselines.restarted_metrics) starts a new history, as does everything
        with `reset`; each history keeps its last `keep` runs. What could not be saved is `error` (the other
        entries and files are saved); a damaged baseline file raises BaselineError and nothing is written."""
        from ..errors import BaselineSaveError
        from .baselines import append_run

        saved = SavedRun(run_id, len(entries), keep, reset)
        if not entries:
            return saved

        def combine(old: BaselineEntry | None, new: BaselineEntry) -> BaselineEntry:
            restarted = restart.get(new.nodeid, frozenset())
            stored = append_run(old, new, keep=keep, restart=restarted, reset=reset)
            saved.history_lengths.extend(len(runs) for runs in stored.history.values())
            if old is not None and restarted and not reset:
                saved.restarted[new.nodeid] = sorted(restarted)
            return stored

        try:
            saved.written = [str(p) for p in self.store.save(entries, combine=combine)]
        except BaselineSaveError as exc:
            saved.written, saved.error = [str(p) for p in exc.written], str(exc)
        return saved
