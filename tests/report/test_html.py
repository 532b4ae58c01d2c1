from __future__ import annotations

import base64
import re

import pytest

from pytest_energy.report.html import render_html_report, write_html_report

EVIL = '<script>alert("x")</script>&'


def _metric(name, unit, samples, method=None):
    return {"name": name, "unit": unit, "kind": "measured", "better": "lower", "samples": samples, "method": method}


def _verdict(metric, verdict, change_pct, **fields):
    return {"metric": metric, "unit": "J", "kind": "measured", "better": "lower", "verdict": verdict,
            "baseline_value": None, "current_value": 1.0, "change_pct": change_pct, "p_value": None,
            "tolerance": 0.08, "n_baseline": 5, "n_current": 5, **fields}


def json_report():
    """The --energy-json layout (pytest_energy.report.json.build_report), read into a RunResult to render."""
    curve = [{"step": s, "train_duration_s": s + 1.0, "train_energy_j": 10.0 * (s + 1), "wall_s": s + 2.0,
              "wall_energy_j": 12.0 * (s + 1), "score": 0.6 + s / 20} for s in range(6)]
    return {
        "datetime": "2025-01-01T00:00:00",
        "machine_info": {"node": EVIL, "cpu": "x86_64", "nested": {"skip": 1}},
        "commit_info": {"id": "abc123", "dirty": False},
        "energy": {"meter": "estimate", "devices": []},
        "benchmarks": [
            {"name": f"test_a[{EVIL}]", "fullname": "benchmarks/test_a.py::test_a", "group": None,
             "stats": {"mean": 0.5, "stddev": 0.01, "rounds": 5},
             "energy": {"unit": "J", "method": "estimate", "stats": {"mean": 5.0, "stddev": 0.2}, "power_w": 10.0,
                        "metrics": {  # 5 rounds: time 0.5 +- 0.01 s, energy 5 +- 0.2 J
                            "duration_s": _metric("duration_s", "s", [0.49, 0.51, 0.49, 0.51, 0.5]),
                            "energy_j": _metric("energy_j", "J", [4.8, 5.2, 4.8, 5.2, 5.0], "estimate"),
                            "inference.j_per_example": _metric("inference.j_per_example", "J/example", [0.1, 0.3],
                                                               "estimate")},
                        "protocols": [],
                        "comparison": [_verdict("energy_j", "REGRESSION", 12.0),
                                       _verdict(EVIL, "INCONCLUSIVE", None)]},
             "extra_info": {"sweep_point": sweep_points()[0]}},
            {"name": "test_ft", "fullname": "benchmarks/test_ft.py::test_ft", "stats": None,
             "energy": {"method": "rapl", "stats": None, "power_w": None, "metrics": {},
                        "protocols": [{"protocol": "finetune", "cutoff": 0.8, "method": "rapl", "reached": True,
                                       "higher_is_better": True, "curve": curve}]},
             "extra_info": {}},
        ],
    }


def sweep_points():
    return [
        {"axis": "max_length", "value": 16, "accuracy": 0.7, "j_per_example": 0.01, "j_per_correct": 0.014,
         "ms_per_example": 2.0, "peak_memory_bytes": 300 * 2**20, "method": "estimate", "n_examples": 200,
         "skipped_reason": None},
        {"axis": "max_length", "value": 128, "accuracy": 0.9, "j_per_example": 0.05, "j_per_correct": 0.055,
         "ms_per_example": 9.0, "peak_memory_bytes": 310 * 2**20, "method": "estimate", "n_examples": 200,
         "skipped_reason": None},
        {"axis": "precision", "value": "fp16", "accuracy": None, "j_per_example": float("nan"),
         "j_per_correct": None, "ms_per_example": float("nan"), "peak_memory_bytes": None, "method": "none",
         "n_examples": 0, "skipped_reason": f"fp16 fails: {EVIL}"},
    ]


@pytest.fixture(scope="module")
def page():
    pytest.importorskip("matplotlib")
    return render_html_report(json_report(), sweep_points=sweep_points(), about={"model": EVIL},
                              images={"extra figure": b"\x89PNG\r\n\x1a\nfake"}, title=f"Report {EVIL}")


def test_self_contained_no_external_references(page):
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "<script" not in page.lower()
    assert "<link" not in page.lower()
    assert "@import" not in page and "url(" not in page


def test_all_text_escaped(page):
    assert EVIL not in page
    assert html_escaped(EVIL) in page


def html_escaped(text):
    import html

    return html.escape(text, quote=True)


def test_images_embedded_as_valid_png_data_uris(page):
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    # frontier for max_length (precision has no measured point), fine-tuning curve, extra image
    assert len(uris) == 3
    for uri in uris:
        assert base64.b64decode(uri)[:8] == b"\x89PNG\r\n\x1a\n"


def test_tables_show_figures_methods_and_verdicts(page):
    assert "0.5 \u00b1 0.01" in page  # time
    assert "5 \u00b1 0.2" in page  # energy
    assert ">10<" in page  # power = 5 J / 0.5 s
    assert "rapl" in page and "estimate" in page
    assert 'class="verdict verdict-regression"' in page and "verdict-inconclusive" in page
    assert "inference.j_per_example" in page and ">0.2<" in page  # metric mean
    assert 'class="front"' in page and 'class="skipped"' in page
    assert "Fine-tuning curves" in page
    assert "1 benchmark(s) ran only protocols" in page  # test_ft has no rounds
    assert "<details>" in page
    assert "About this run" in page


def test_defaults_come_from_the_json_report():
    page = render_html_report(json_report(), plots=False)
    assert "Baseline verdicts" in page and "verdict-regression" in page  # from energy.comparison
    assert "max sequence length" in page and "verdict-inconclusive" in page  # sweep point from extra_info
    assert "Energy session" in page


def test_without_plots_and_without_inputs(tmp_path):
    bare = render_html_report()
    assert "<table" not in bare and "<img" not in bare
    no_plots = render_html_report(json_report(), sweep_points=sweep_points(), plots=False)
    assert "<img" not in no_plots and "Benchmarks" in no_plots
    path = write_html_report(tmp_path / "out" / "r.html", json_report(), sweep_points=sweep_points(), plots=False)
    assert path.read_text(encoding="utf-8") == no_plots


def test_report_sweep_points_get_the_base_point_on_every_axis():
    from pytest_energy.report.html import sweep_points_from_report

    base = {"max_length": 128, "precision": "fp32", "depth": 6, "batch_size": 1}

    def bench(axis, value, j):
        settings = {**base, axis: value}
        point = {"axis": axis, "value": value, "settings": settings, "accuracy": 0.9, "j_per_example": j,
                 "ms_per_example": 1.0, "method": "estimate", "n_examples": 10}
        return {"name": f"test_sweep[{axis}-{value}]", "fullname": f"t.py::test_sweep[{axis}-{value}]",
                "energy": {"metrics": {}}, "extra_info": {"sweep_point": point, "sweep_base": base}}

    report = {"benchmarks": [bench("max_length", 64, 0.2), bench("max_length", 128, 0.4),
                             bench("precision", "bf16", 0.15)]}
    points = sweep_points_from_report(report)
    assert [(p["axis"], p["value"]) for p in points] == [
        ("max_length", 64), ("max_length", 128), ("precision", "fp32"), ("precision", "bf16")]
    assert next(p for p in points if p["value"] == "fp32")["j_per_example"] == 0.4


HINT = "spread too large to decide: run more rounds"


def report_with_baseline():
    report = json_report()
    bench = report["benchmarks"][0]
    bench["stats"]["data"] = [0.5, 0.51, 0.49]
    bench["energy"]["data"] = [5.0, 5.2, 4.8]
    bench["energy"]["metrics"]["duration_s"]["samples"] = [0.5, 0.51, 0.49]
    bench["energy"]["metrics"]["energy_j"]["samples"] = [5.0, 5.2, 4.8]
    bench["energy"]["series"] = "rounds"
    bench["energy"]["baseline"] = {"datetime": "2025-01-01T00:00:00", "commit": "abc",
                                   "duration_s": {"mean": 0.4, "stddev": 0.01, "n": 3, "samples": [0.4, 0.41, 0.39]},
                                   "energy_j": {"mean": 4.0, "stddev": 0.1, "n": 3, "samples": [4.0, 4.1, 3.9]}}
    bench["energy"]["comparison"] = [
        {"metric": "energy_j", "unit": "J", "kind": "measured", "better": "lower", "verdict": "INCONCLUSIVE",
         "baseline_value": 4.0,
         "current_value": 5.0, "change_pct": 25.0, "p_value": 0.07, "tolerance": 0.08, "n_baseline": 3,
         "n_current": 3, "hint": HINT, "rule": "within-run Welch"},
        {"metric": "duration_s", "unit": "s", "kind": "measured", "better": "lower", "verdict": "INCONCLUSIVE",
         "baseline_value": 0.4,
         "current_value": 0.5, "change_pct": 25.0, "p_value": 0.06, "tolerance": 0.08, "n_baseline": 3,
         "n_current": 3, "hint": HINT, "rule": "within-run Welch"}]
    return report


def test_verdict_table_has_human_columns_and_each_hint_once_as_a_footnote():
    page = render_html_report(report_with_baseline(), plots=False)
    table = page[page.index("<h2>Baseline verdicts</h2>"):page.index("<h2>Benchmarks</h2>")]
    for heading in ("Test", "Metric", "Baseline", "Current", "Change", "p", "Tolerance", "Verdict"):
        assert f"<th>{heading}</th>" in table
    assert "baseline_value" not in table and "change_pct" not in table
    assert ">4 J<" in table and ">5 J<" in table and ">+25.0 %<" in table and ">8 %<" in table and ">3/3<" in table
    assert table.count(HINT) == 1  # the footnote, once, though two verdicts (shown twice each) carry it
    assert table.count('href="#hint-1"') == 4 and '<li id="hint-1">' in table


def test_a_baseline_vs_current_chart_per_compared_benchmark():
    pytest.importorskip("matplotlib")
    with_baseline = render_html_report(report_with_baseline(), sweep_points=[])
    without = render_html_report(json_report(), sweep_points=[])
    assert "<h2>Baseline vs current</h2>" in with_baseline and "Baseline vs current" not in without
    section = with_baseline[with_baseline.index("<h2>Baseline vs current</h2>"):]
    assert len(re.findall(r'<img src="data:image/png;base64,', section)) == 1
    assert html_escaped(f"test_a[{EVIL}] (rounds): baseline of 2025-01-01 00:00:00") in section


def test_a_run_result_renders_as_its_json_report_does_with_the_shared_verdict_rows():
    from pytest_energy.records import RunResult
    from pytest_energy.report.tables import verdict_cells

    run = RunResult.from_report(report_with_baseline())
    assert render_html_report(run, plots=False) == render_html_report(report_with_baseline(), plots=False)
    page = render_html_report(run, plots=False, sweep_points=[])
    b = run.benchmarks[0]
    for v in b.outcome.verdicts:  # the cells terminal and markdown print, escaped
        cells = verdict_cells(b.record.name, v)
        assert f'<td class="num">{html_escaped(cells["change"])}</td>' in page
        assert f"<td>{html_escaped(cells['test'])}</td>" in page


def test_a_compared_baseline_with_a_run_history_gets_its_history_chart_beside_the_comparison():
    pytest.importorskip("matplotlib")
    from pytest_energy.gate.baselines import BaselineEntry
    from pytest_energy.gate.history import RunSummary
    from pytest_energy.records import Metric, RunResult

    run = RunResult.from_report(report_with_baseline())
    b = run.benchmarks[0]
    runs = {f"r{i}": {"datetime": f"2026-11-1{i}T12:00:00+00:00", "commit": f"{i:040x}", "probe_s": None,
                      "probe_id": None} for i in range(4)}
    history = {name: [RunSummary(x, 0.01, 3, f"r{i}") for i, x in enumerate(values)]
               for name, values in (("energy_j", [4.0, 4.1, 3.9, 4.0]), ("duration_s", [0.4, 0.41, 0.39, 0.4]))}
    entry = BaselineEntry(nodeid=b.record.nodeid, machine={"method": "estimate"}, commit={"id": "f" * 40},
                          datetime=runs["r3"]["datetime"], method="estimate",
                          metrics={"energy_j": Metric("energy_j", "J", samples=[4.0, 4.1, 3.9]),
                                   "duration_s": Metric("duration_s", "s", samples=[0.4, 0.41, 0.39])},
                          history=history, runs=runs)
    without_history = render_html_report(run, sweep_points=[])
    run.baselines[b.record.nodeid] = entry
    page = render_html_report(run, sweep_points=[])
    section = page[page.index("<h2>Baseline vs current</h2>"):]
    assert len(re.findall(r'<img src="data:image/png;base64,', section)) == 2
    assert "stored history of energy_j" in section and "stored history" not in without_history
