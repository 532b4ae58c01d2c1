"""The calibration probe: fixed work, its timing, and the geometric mean a test's probes give."""

from __future__ import annotations

import hashlib
import math
import threading

import pytest

from pytest_energy.measure import probe as p


def test_probe_is_fixed_work_and_reports_its_time():
    assert p._kernel(4096) == p._kernel(4096)  # the same work every time
    r = p.probe(repeats=2, iterations=4096)
    assert r.wall_s > 0 and r.cpu_s > 0 and r.own_load >= 0 and r.usable
    assert p.PROBE_ID.startswith(f"v{p.PROBE_VERSION}-")


def test_probe_value_is_the_geometric_mean_of_usable_probes():
    assert p.probe_value([0.02, 0.08]) == pytest.approx(0.04)
    assert p.probe_value([0.0, math.nan]) is None and p.probe_value([]) is None


def test_a_probe_during_which_our_own_threads_burn_cpu_is_not_usable():
    """Leftover busy threads (an OpenMP pool spinning) slow the probe and would hide a regression."""
    stop = threading.Event()
    block = bytes(4 << 20)

    def spin():  # hashing a large buffer releases the GIL: CPU burnt beside the probe, as by C threads
        while not stop.is_set():
            hashlib.sha256(block).digest()

    t = threading.Thread(target=spin)
    t.start()
    try:
        r = p.probe(repeats=3, iterations=1 << 14)
    finally:
        stop.set()
        t.join()
    assert r.own_load > p.MAX_OWN_LOAD and not r.usable
