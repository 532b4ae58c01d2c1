"""Split the GPUs this process may use among parallel workers (pytest-xdist workers, torchrun local ranks).

Pure functions: the caller passes the visible GPUs (meters.gpus.resolve_visible) and gets, per worker,
the value of its CUDA_VISIBLE_DEVICES and the warnings to show. The rules:

* A worker's CUDA_VISIBLE_DEVICES is a sub-list of the parent's entries, verbatim, so an entry means in
  the worker what it meant in the parent (same CUDA_DEVICE_ORDER). Where the parent sets no
  CUDA_VISIBLE_DEVICES the entries are UUIDs, the one selector CUDA and NVML agree on.
* The visible GPUs are cut into B = G // K blocks of K consecutive GPUs and worker i gets block i mod B.
  Every worker gets exactly K GPUs, so its GPU energy always covers K GPUs (idle ones included) and
  figures stay comparable between workers and with a baseline. GPUs that make no whole block are not
  handed out, and a note says so.
* K defaults to G // N when there are at least as many GPUs as workers (an even split), else 1.
  K = 0 means "do not split": every worker sees every GPU.
* More workers than blocks means workers share GPUs. NVML meters a whole GPU, not a process, so each
  sharing worker's GPU energy includes the others' load; the warning names the GPUs, the workers and
  the figures affected.
* A worker's GPUs depend only on its position, so a crashed worker's replacement (same position) gets them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import UsageError
from ..meters.gpus import VisibleGpu

__all__ = ["Assignment", "SplitPlan", "default_gpus_per_worker", "split_gpus"]


@dataclass(frozen=True)
class Assignment:
    """The GPUs of the worker at `position`."""

    position: int  # xdist: position of the worker's --tx spec; torchrun: local rank
    gpus: tuple[VisibleGpu, ...]
    shared_with: tuple[int, ...] = ()  # positions of the other workers using any of these GPUs

    @property
    def env(self) -> str:
        """This worker's CUDA_VISIBLE_DEVICES."""
        return ",".join(g.selector for g in self.gpus)


@dataclass(frozen=True)
class SplitPlan:
    per_worker: int  # K; 0 when nothing is split
    visible: tuple[VisibleGpu, ...]
    assignments: tuple[Assignment, ...]  # empty when nothing is split
    unused: tuple[VisibleGpu, ...] = ()
    warnings: tuple[str, ...] = ()  # figures are affected: said before the first test and in the summary
    notes: tuple[str, ...] = ()  # worth knowing, nothing is wrong

    @property
    def shared(self) -> bool:
        return any(a.shared_with for a in self.assignments)


def default_gpus_per_worker(n_gpus: int, n_workers: int) -> int:
    """An even split when there are enough GPUs, else one GPU per worker (shared)."""
    if n_workers < 1:
        raise UsageError(f"need at least one worker, got {n_workers}")
    return max(1, n_gpus // n_workers)


def split_gpus(visible: Sequence[VisibleGpu], n_workers: int, per_worker: int | None = None,
               names: Sequence[str] | None = None) -> SplitPlan:
    """Give `per_worker` GPUs (None: the default; 0: do not split) to each of `n_workers` workers.

    `names` label the workers in messages (default gw0, gw1, ...). Asking for more GPUs per worker than
    are visible is a UsageError naming the visible GPUs.
    """
    if n_workers < 1:
        raise UsageError(f"need at least one worker, got {n_workers}")
    if per_worker is not None and per_worker < 0:
        raise UsageError(f"GPUs per worker must be >= 0, got {per_worker}")
    names = list(names) if names is not None else [f"gw{i}" for i in range(n_workers)]
    if len(names) != n_workers:
        raise UsageError(f"{len(names)} worker names for {n_workers} workers")
    visible = tuple(visible)
    g = len(visible)
    if g == 0:
        return SplitPlan(0, visible, (), notes=("no GPU is visible: there are no GPUs to split",))
    if per_worker == 0:
        warnings = ()
        if n_workers > 1:
            warnings = (f"GPUs are not split (GPUs per worker 0): all {n_workers} workers see all {g} GPUs, so "
                        "every GPU energy figure includes the other workers' load (and so do power, energy per "
                        "item, CO2 and cost; durations include contention)",)
        return SplitPlan(0, visible, (), warnings=warnings)
    k = default_gpus_per_worker(g, n_workers) if per_worker is None else per_worker
    if k > g:
        raise UsageError(f"{k} GPUs per worker asked for, but only {g} are visible: "
                         f"{', '.join(v.label() for v in visible)}")
    blocks = [visible[b * k:(b + 1) * k] for b in range(g // k)]
    block_of = [i % len(blocks) for i in range(n_workers)]
    assignments = tuple(
        Assignment(i, tuple(blocks[block_of[i]]),
                   tuple(j for j in range(n_workers) if j != i and block_of[j] == block_of[i]))
        for i in range(n_workers))
    unused = visible[len(blocks) * k:]
    warnings, notes = [], []
    if n_workers > len(blocks):
        groups = []
        for b, block in enumerate(blocks):
            users = [names[i] for i in range(n_workers) if block_of[i] == b]
            if len(users) > 1:
                groups.append(f"{' + '.join(v.label() for v in block)} by {', '.join(users)}")
        affected = ", ".join(names[a.position] for a in assignments if a.shared_with)
        warnings.append(
            f"{n_workers} workers but {len(blocks)} block(s) of {k} GPU(s), so workers share GPUs: "
            f"{'; '.join(groups)}. NVML meters a whole GPU, not a process: the GPU energy of every test on "
            f"{affected} includes the other workers' load, and so do its power, energy per item, CO2 and cost; "
            "its durations include contention (peak memory, FLOPs and the CPU estimate are per process and "
            "unaffected). These results are marked as measured on shared GPUs and are neither compared with "
            f"nor saved as baselines; run with -n {len(blocks)} or fewer for clean figures.")
    if unused:
        notes.append(f"{len(unused)} GPU(s) not given to any worker ({g} GPUs make no whole blocks of {k}): "
                     f"{', '.join(v.label() for v in unused)}")
    if n_workers < len(blocks):
        idle = tuple(v for block in blocks[n_workers:] for v in block)
        notes.append(f"{n_workers} worker(s) for {len(blocks)} blocks of {k} GPU(s): "
                     f"{', '.join(v.label() for v in idle)} left idle")
        unused = unused + idle
    return SplitPlan(k, visible, assignments, tuple(unused), tuple(warnings), tuple(notes))
