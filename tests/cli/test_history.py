"""`python -m pytest_energy history`: the runs, the restarts, and a band that is the gate's own threshold."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pytest_energy.analysis.trends import history_contexts, metric_matches, metric_trend, node_matcher, trends
from pytest_energy.cli import main
from pytest_energy.errors import PlotsUnavailable, UsageError
from pytest_energy.gate.baselines import BaselineEntry, BaselineStore
from pytest_energy.gate.compare import compare_metric
from pytest_energy.gate.history import RunSummary
from pytest_energy.measure.probe import PROBE_ID
from pytest_energy.records import Kind, Metric, VerdictKind
from pytest_energy.report.trends import history_chart_png, render_trends_html, terminal_lines

EVIL = "test_x.py::test_e[<script>window.__pwned = 1</script>&]"
MACHINE = {"method": "estimate", "cpu_model": "Test CPU", "estimate_watts_per_core": 10.0, "gpus": []}


def entry(nodeid: str, energy: list[float], duration: list[float], *, energy_from: int = 0,
          machine: dict | None = None) -> BaselineEntry:
    """A stored test whose runs r0, r1, ... saved these means (one round each); energy_j's history begins at
    run `energy_from` (a restart there) while duration_s keeps every run."""
    runs = {f"r{i}": {"datetime": f"2026-11-{10 + i:02d}T12:00:00+00:00", "commit": f"{i:040x}", "probe_s": None,
                      "probe_id": None} for i in range(len(duration))}
    history = {"energy_j": [RunSummary(x, 0.0, 1, f"r{i}") for i, x in enumerate(energy, energy_from)],
               "duration_s": [RunSummary(x, 0.0, 1, f"r{i}") for i, x in enumerate(duration)]}
    metrics = {"energy_j": Metric("energy_j", "J", samples=[energy[-1]]),
               "duration_s": Metric("duration_s", "s", samples=[duration[-1]]),
               "steps": Metric("steps", "steps", kind=Kind.DETERMINISTIC, samples=[40.0])}
    return BaselineEntry(nodeid=nodeid, machine=dict(machine or MACHINE), commit={"id": "f" * 40},
                         datetime=runs[f"r{len(duration) - 1}"]["datetime"], method="estimate", metrics=metrics,
                         history=history, runs=runs)


@pytest.fixture
def stored(tmp_path) -> Path:
    folder = tmp_path / "baselines"
    BaselineStore(folder).save([
        entry("test_a.py::test_steady", [100.0, 104.0, 98.0, 101.0, 103.0], [1.0, 1.02, 0.99, 1.01, 1.03]),
        entry("test_a.py::test_restarted", [150.0, 152.0, 149.0], [1.0, 1.01, 1.5, 1.49, 1.52], energy_from=2),
        entry("test_b.py::test_young", [10.0, 11.0], [0.1, 0.11]),
        entry(EVIL, [5.0, 5.1, 4.9], [0.5, 0.51, 0.49]),
    ])
    return folder


def test_band_is_the_gates_regression_and_improvement_threshold(stored):
    e = BaselineStore(stored).load("test_a.py::test_steady")
    t = metric_trend(e, "energy_j")
    assert t.band is not None and t.band.rule.startswith("history: 5 runs")
    low, high = t.band.low, t.band.high
    assert low < t.band.expected < high
    history = e.history_for("energy_j")

    def verdict(x: float) -> VerdictKind:
        return compare_metric(e.metrics["energy_j"], Metric("energy_j", "J", samples=[x]), 0.08,
                              history=history).verdict

    # Lower is better: just inside the band is no change the gate acts on; just beyond it, it is.
    assert verdict(high * 0.999) not in (VerdictKind.REGRESSION, VerdictKind.IMPROVED)
    assert verdict(high * 1.001) == VerdictKind.REGRESSION
    assert verdict(low * 1.001) not in (VerdictKind.REGRESSION, VerdictKind.IMPROVED)
    assert verdict(low * 0.999) == VerdictKind.IMPROVED


def test_runs_in_order_with_date_commit_spread_and_the_restart(stored):
    e = BaselineStore(stored).load("test_a.py::test_restarted")
    energy, duration = metric_trend(e, "energy_j"), metric_trend(e, "duration_s")
    assert [r.mean for r in energy.runs] == [150.0, 152.0, 149.0]
    assert [r.run_id for r in energy.runs] == ["r2", "r3", "r4"]
    assert [r.restart for r in energy.runs] == [True, False, False]
    assert energy.restarts[0].date == "2026-11-12 12:00" and energy.restarts[0].short_commit == "00000000"
    assert not duration.restarts and len(duration.runs) == 5
    assert energy.trend_pct == pytest.approx((149.0 / 150.0 - 1) * 100)
    assert energy.machine_class == "estimate · Test CPU · 10 W/core"


def test_a_short_history_has_no_band_and_says_why(stored):
    t = metric_trend(BaselineStore(stored).load("test_b.py::test_young"), "energy_j")
    assert t.band is None and "fewer than 3" in t.band_note
    assert metric_trend(BaselineStore(stored).load("test_b.py::test_young"), "steps") is None  # deterministic


def test_metric_and_node_selection():
    assert metric_matches("energy_j", "energy_j") and metric_matches("inference.energy_j", "energy_j")
    assert not metric_matches("finetune.wall_energy_j", "energy_j")
    match = node_matcher("inference and not (batch or [1])")
    assert match("benchmarks/test_inference.py::test_inference[32]")
    assert not match("benchmarks/test_inference.py::test_inference[1]")
    assert not match("benchmarks/test_sweeps.py::test_sweep[batch_size-8]")
    assert node_matcher("FINETUNE")("benchmarks/test_finetune.py::x")  # case-insensitive, like pytest -k
    assert node_matcher(None)("anything")
    for bad in ("a and", "(a", "a )", "or b", "not"):
        with pytest.raises(UsageError, match="-k"):
            node_matcher(bad)


def test_trends_select_tests_and_metrics(stored):
    entries = BaselineStore(stored).load_all()
    got = trends(entries, ["energy_j"], match="test_a")
    assert [(t.nodeid, t.metric) for t in got] == [("test_a.py::test_restarted", "energy_j"),
                                                     ("test_a.py::test_steady", "energy_j")]


def test_terminal_summary_one_line_per_test_and_metric(stored, capsys):
    assert main(["history", "--baseline-dir", str(stored), "-k", "steady or young"]) == 0
    out = capsys.readouterr().out
    [steady] = [line for line in out.splitlines() if "test_steady" in line and "energy_j" in line]
    assert "5 runs" in steady and "103 J" in steady and "+3.0 %" in steady and ".." in steady
    [young] = [line for line in out.splitlines() if "test_young" in line and "energy_j" in line]
    assert "2 runs" in young and "no band" in young
    assert "machine class: estimate · Test CPU · 10 W/core" in out
    assert "restarted" not in out


def test_html_page_is_self_contained_and_escapes_node_ids(stored, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    page = tmp_path / "out" / "trends.html"
    assert main(["history", "--baseline-dir", str(stored), "--html", str(page)]) == 0
    text = page.read_text(encoding="utf-8")
    assert "<script>window.__pwned" not in text and "&lt;script&gt;window.__pwned" in text
    assert "http://" not in text and "https://" not in text  # no network reference
    assert text.count('<img src="data:image/png;base64,') == 8  # 4 tests x (energy_j, duration_s)
    assert text.count('<details class="test"') == 4
    assert "restart" in text and "filter" in text
    data = text.split('<script type="application/json" id="trend-data">')[1].split("</script>")[0]
    assert {d["test"] for d in json.loads(data)} == {EVIL, "test_a.py::test_steady", "test_a.py::test_restarted",
                                                     "test_b.py::test_young"}


def test_without_matplotlib_the_page_keeps_its_tables(stored, monkeypatch):
    def no_plots(*args, **kwargs):
        raise PlotsUnavailable("pytest-energy figures need matplotlib: pip install 'pytest-energy[plots]'")

    monkeypatch.setattr("pytest_energy.report.trends._blank_figure", no_plots)
    found = trends(BaselineStore(stored).load_all())
    text = render_trends_html(found)
    assert "Figures are unavailable" in text and "<img" not in text
    assert text.count("<tr data-test=") == 8
    e = BaselineStore(stored).load("test_a.py::test_steady")
    assert history_chart_png(e, "energy_j") is None


def test_history_chart_png_for_the_run_report(stored):
    pytest.importorskip("matplotlib")
    e = BaselineStore(stored).load("test_a.py::test_restarted")
    png = history_chart_png(e, "energy_j")
    assert png is not None and png.startswith(b"\x89PNG\r\n\x1a\n")
    assert history_chart_png(e, "steps") is None and history_chart_png(e, "no_such_metric") is None


def test_bad_input_is_a_clear_error_and_nothing_is_touched(stored, tmp_path, capsys):
    damaged = stored / "test_b.json"
    damaged.write_text('{"schema_version": 2, "entries": ', encoding="utf-8")
    before = {p.name: p.read_bytes() for p in stored.iterdir()}
    page = tmp_path / "trends.html"
    assert main(["history", "--baseline-dir", str(stored), "--html", str(page)]) == 2
    out = capsys.readouterr().out
    assert "test_b.json" in out and not page.exists()
    assert {p.name: p.read_bytes() for p in stored.iterdir()} == before
    assert main(["history", "--baseline-dir", str(tmp_path / "nowhere")]) == 2
    assert "no baseline folder" in capsys.readouterr().out
    assert main(["history", "--baseline-dir", str(tmp_path / "nowhere"), "-k", "a and"]) == 2
    assert main(["history", "--baseline-dir", str(stored), "--tolerance", "ten"]) == 2


def test_every_reference_benchmark_has_an_energy_and_time_band(capsys):
    """What issue 18 asks: the committed baselines/ give each reference benchmark's history and band."""
    root = Path(__file__).resolve().parents[2]
    folder = root / "baselines"
    if not any(folder.glob("benchmarks__*.json")):
        pytest.skip("no committed reference baselines")
    stored = BaselineStore(folder).load_all()
    found = trends(stored)
    for nodeid in stored:
        kinds = {t.metric.rsplit(".", 1)[-1] for t in found if t.nodeid == nodeid and t.band is not None}
        if any(m.rsplit(".", 1)[-1] == "energy_j" for m in stored[nodeid].metrics):
            assert kinds == {"energy_j", "duration_s"}, nodeid
    lines = terminal_lines(found)
    assert len([line for line in lines if line.startswith("benchmarks/")]) == len(found)
    assert os.path.isdir(folder)


def _limits_hold(e: BaselineEntry, name: str, band, *, current_probe=None, exponent=0, pooled=None) -> None:
    """Just inside the band neither verdict; just outside, the gate's REGRESSION or IMPROVED."""
    history = e.history_for(name, PROBE_ID if current_probe else None)

    def verdict(x: float) -> VerdictKind:
        m = e.metrics[name]
        return compare_metric(m, Metric(name, m.unit, better=m.better, samples=[x]), 0.08, history=history,
                              current_probe=current_probe, exponent=exponent, pooled=pooled).verdict

    lower_better = e.metrics[name].better == "lower"
    above, below = (VerdictKind.REGRESSION, VerdictKind.IMPROVED) if lower_better else \
        (VerdictKind.IMPROVED, VerdictKind.REGRESSION)
    assert verdict(band.high * 1.001) == above and verdict(band.low * 0.999) == below
    assert verdict(band.high * 0.999) not in (above, below) and verdict(band.low * 1.001) not in (above, below)


def test_band_of_a_higher_is_better_metric_and_of_a_probed_wall_clock_metric():
    from pytest_energy.gate.history import probe_exponent

    e = entry("test_c.py::test_rate", [10.0, 10.4, 9.8, 10.1], [2.0, 2.1, 1.9, 2.05])
    e.metrics["examples_per_s"] = Metric("examples_per_s", "examples/s", better="higher", samples=[50.0])
    e.history["examples_per_s"] = [RunSummary(x, 0.0, 1, f"r{i}") for i, x in enumerate([50.0, 52.0, 49.0, 50.0])]
    t = metric_trend(e, "examples_per_s")
    assert t.band.regression_limit == t.band.low and t.band.improvement_limit == t.band.high
    _limits_hold(e, "examples_per_s", t.band)

    # Probed runs: the band is the probe-normalised rule's, for a machine at the history's usual speed.
    for i, run in enumerate(e.runs.values()):
        run.update(probe_s=0.03 * (1.0 + 0.05 * (-1) ** i), probe_id=PROBE_ID)
    context = next(iter(history_contexts([e]).values()))
    assert context.probing
    t = metric_trend(e, "duration_s", context=context)
    assert "probe-normalised" in t.band.rule
    probes = [h.probe for h in e.history_for("duration_s", PROBE_ID)]
    usual = (probes[0] * probes[1] * probes[2] * probes[3]) ** 0.25
    _limits_hold(e, "duration_s", t.band, current_probe=usual, exponent=probe_exponent("s"),
                 pooled=context.pooled_for("s", "duration_s"))
