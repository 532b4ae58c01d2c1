"""A noisy neighbour: CPU-bound processes that keep cores busy, to measure the gate beside one (issue 16).

Each neighbour is a pure-Python busy loop (one core, no threads, no numpy: its load does not depend on BLAS
settings). It runs until killed, for --seconds, or until the process that started it dies: on Linux the kernel
sends it SIGTERM when its parent dies (PR_SET_PDEATHSIG), and everywhere it checks its parent every 0.2 s,
so neither a Ctrl-C of the parent script nor a killed parent leaves an orphan spinning.

    python tools/noisy_neighbour.py --seconds 600          # one core busy for 10 minutes (Ctrl-C stops it)
    python tools/noisy_neighbour.py --cores 2              # two busy processes until Ctrl-C

From Python:

    from noisy_neighbour import neighbour
    with neighbour(cores=1):
        subprocess.run([...])                               # runs beside one busy core
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

SCRIPT = Path(__file__).resolve()
CHECK_EVERY_S = 0.2  # how often the loop looks at the clock and its parent


def _die_with_parent() -> None:
    """Linux: have the kernel send SIGTERM to this process when its parent dies (best effort elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):  # no prctl: the parent check in the loop still ends it
        pass


def spin(seconds: float | None = None, parent_pid: int | None = None) -> int:
    """Keep this process's core busy until `seconds` have passed or `parent_pid` is no longer our parent.
    Returns the number of loop iterations (the work done; useful only to show the loop ran)."""
    deadline = None if seconds is None else time.monotonic() + seconds
    next_check = time.monotonic() + CHECK_EVERY_S
    n = 0
    x = 0
    while True:
        for i in range(10_000):  # the busy work: integer arithmetic, no allocation beyond small ints
            x = (x * 31 + i) & 0xFFFF
        n += 1
        now = time.monotonic()
        if now >= next_check:
            if deadline is not None and now >= deadline:
                return n
            if parent_pid is not None and os.getppid() != parent_pid:  # reparented: the parent is gone
                return n
            next_check = now + CHECK_EVERY_S


@contextlib.contextmanager
def neighbour(cores: int = 1, seconds: float | None = None) -> Iterator[list[subprocess.Popen]]:
    """Run `cores` busy processes for the duration of the `with` block (or `seconds`, if shorter).

    They are this process's children, in its process group (a Ctrl-C in the terminal reaches them too), die
    with it, and are terminated (then killed) when the block exits, however it exits."""
    if cores < 1:
        raise ValueError(f"cores must be >= 1, got {cores}")
    if seconds is not None and not seconds > 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    cmd = [sys.executable, str(SCRIPT), "--parent", str(os.getpid())]
    if seconds is not None:
        cmd += ["--seconds", str(seconds)]
    procs: list[subprocess.Popen] = []
    try:
        for _ in range(cores):
            procs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL))
        yield procs
    finally:
        stop(procs)


def stop(procs: list[subprocess.Popen], timeout_s: float = 5.0) -> None:
    """Terminate the neighbours, kill those that do not exit within `timeout_s`, and reap them all."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, help="stop after this long (default: until killed)")
    ap.add_argument("--cores", type=int, default=1, help="busy processes to run (default 1)")
    ap.add_argument("--parent", type=int, help=argparse.SUPPRESS)  # set by neighbour(): exit when it dies
    args = ap.parse_args(argv)
    if args.cores < 1:
        ap.error("--cores must be >= 1")
    if args.seconds is not None and not args.seconds > 0:
        ap.error("--seconds must be > 0")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        if args.parent is not None:  # started by neighbour(): one loop, tied to that parent
            _die_with_parent()
            if os.getppid() != args.parent:  # the parent died before the death signal was armed
                return 0
            spin(args.seconds, args.parent)
        elif args.cores == 1:
            spin(args.seconds)
        else:
            with neighbour(cores=args.cores, seconds=args.seconds) as procs:
                for p in procs:
                    p.wait()
    except KeyboardInterrupt:  # Ctrl-C: the expected way to stop it
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
