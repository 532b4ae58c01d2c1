"""tools/gate_statistics.py --confirm-ab: the issue 16 stages run, report every stage, and keep their shape."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parents[2] / "tools" / "gate_statistics.py"


def load():
    spec = importlib.util.spec_from_file_location("gate_statistics_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_confirm_ab_reports_every_stage_with_and_without_bursts(capsys):
    tool = load()
    assert tool.main(["--confirm-ab", "--suites", "2", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert out.count("with bursts") == len(tool.NOISE_MODELS)
    assert out.count("without bursts") == len(tool.NOISE_MODELS)
    rows = [ln[4:48].rstrip() for ln in out.splitlines()]
    for variant in tool.CONFIRM_VARIANTS:
        assert rows.count(tool._stage(*variant)) == 2 * len(tool.NOISE_MODELS), tool._stage(*variant)
    assert rows.count("confirm 3 all end p<0.01 screen<0.01") == 2 * len(tool.NOISE_MODELS)  # the default
    assert out.count("A/B per metric at 2.00x") == 2 * len(tool.NOISE_MODELS)


def test_a_session_gives_every_stage_a_verdict_per_test():
    import random

    tool = load()
    got = tool.simulate_session(random.Random(1), tool.NOISE_MODELS[0], bursty=True)
    stages = [k for k in got if not k.startswith("_")]
    assert "history" in stages and "A/B" in stages and len(stages) == 2 + len(tool.CONFIRM_VARIANTS)
    for stage in stages:
        for delta in tool.AB_DELTAS:
            assert len(got[stage][delta]) == tool.SUITE_TESTS
    # the 2x slowdown is found by A/B in this quiet model; unchanged code is not failed by it
    assert sum(got["A/B"][1.0]) >= tool.SUITE_TESTS - 1


def test_bursts_are_poisson_in_session_length():
    import random

    tool = load()
    rng = random.Random(2)
    counts = [len(tool._bursts(rng, tool.SUITE_TESTS * 4)) for _ in range(400)]
    mean = sum(counts) / len(counts)
    assert 3.4 < mean < 4.6  # BURSTS_PER_RUN = 1 per 17 slots
    a, b, test, factor = tool._bursts(random.Random(5), 1000)[0]
    assert 2 <= b - a <= 8 and (test is None or 0 <= test < tool.SUITE_TESTS)
    assert 1.2 <= __import__("math").exp(factor) <= 2.0
