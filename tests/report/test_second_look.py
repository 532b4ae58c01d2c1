"""Every report shows the second look in the same job (issue 16): a confirmed regression, a transient that was
not confirmed, the A/B's REGRESSION, SAME and UNKNOWN with ratio and interval, and no base to compare. The runs
are built by hand (tests/report/conftest.py: `second_look_run`, `unflagged_run`)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import schema_check as check  # tests/specs, on the tests' pythonpath (pyproject.toml)

from pytest_energy.config import SessionConfig
from pytest_energy.records import Better, Kind, Recheck, RuleKind, RunResult, Verdict, VerdictKind
from pytest_energy.report.format import ab_line, failure_message, verdict_line
from pytest_energy.report.html import render_html_report
from pytest_energy.report.json import build_report, json_text
from pytest_energy.report.markdown import run_markdown
from pytest_energy.report.outputs import complete_run
from pytest_energy.report.terminal import second_look_section, terminal_lines

SCHEMA = check.load("energy-report.schema.json")


def _outcome(run: RunResult, name: str):
    [b] = [b for b in run.benchmarks if b.record.name == name]
    return b.outcome


def _verdict(run: RunResult, name: str, metric: str) -> Verdict:
    [v] = [v for v in _outcome(run, name).verdicts if v.metric == metric]
    return v


# --- failure messages and verdict lines (report/format.py) ------------------------------------------------------

def test_a_confirmed_regression_says_how_it_was_confirmed_under_its_verdict_line(second_look_run):
    lines = failure_message(_outcome(second_look_run, "test_confirmed")).splitlines()
    assert lines[0] == "energy regression against baselines/test_confirmed.json:"
    assert lines[1].startswith("  energy_j: expected 10 J -> 13.1 J (+31.0 %")
    assert lines[2] == "    confirmed by 2 re-runs: +31 %, +28 %, +33 %"


def test_a_transient_fails_nothing(second_look_run):
    outcome = _outcome(second_look_run, "test_transient")
    assert not outcome.failed
    assert failure_message(outcome) == ""


def test_an_ab_verdict_line_shows_base_head_ratio_and_interval_not_an_expected_value(second_look_run):
    v = _verdict(second_look_run, "test_ab_slower", "duration_s")
    assert verdict_line(v) == ("duration_s: base 10.2 s -> head 13.37 s (ratio 1.31 [1.24, 1.39], +31.0 %, "
                               "tolerance 8 %, A/B against 1a2b3c4 in this job, 6 pairs) REGRESSION")
    lines = failure_message(_outcome(second_look_run, "test_ab_slower")).splitlines()
    assert lines[0] == "energy regression against 1a2b3c4, measured alternately in this job:"
    assert lines[1] == "  " + verdict_line(v)
    assert lines[2] == "    the screen before it: history: INCONCLUSIVE +12 %"
    assert not any("expected" in line for line in lines)


def test_a_regression_by_history_and_one_by_ab_are_said_against_what_each_compared_with(second_look_run):
    stored = _verdict(second_look_run, "test_confirmed", "energy_j")
    ab = _verdict(second_look_run, "test_ab_slower", "energy_j")
    outcome = dataclasses.replace(_outcome(second_look_run, "test_ab_slower"), verdicts=[stored, ab])
    headings = [line for line in failure_message(outcome).splitlines() if not line.startswith(" ")]
    assert headings == ["energy regression against baselines/test_ab_slower.json:",
                        "energy regression against 1a2b3c4, measured alternately in this job:"]


def test_an_ab_without_interval_shows_its_ratio_alone():
    v = Verdict("energy_j", "J", Kind.MEASURED, Better.LOWER, VerdictKind.INCONCLUSIVE, 10.0, 10.5, 5.0, None, 0.08,
                2, 2, rule="A/B against 1a2b3c4 in this job, 2 pairs: ratio 1.05", rule_kind=RuleKind.AB)
    assert ab_line(v) == "UNKNOWN, ratio 1.05, base 10 J -> head 10.5 J, passes"


@pytest.mark.parametrize("name, line", [
    ("test_ab_same", "SAME, ratio 1.00 [0.97, 1.03], base 10.17 s -> head 10.2 s"),
    ("test_ab_unknown", "UNKNOWN, ratio 1.07 [0.98, 1.17], base 10.18 s -> head 10.95 s, passes"),
    ("test_no_base", "no base: A/B against 1a2b3c4: no base to compare "
                     "(benchmarks/test_t.py::test_no_base does not exist at the base)"),
])
def test_each_ab_decision_has_its_name(second_look_run, name, line):
    assert ab_line(_verdict(second_look_run, name, "duration_s")) == line


def test_no_base_to_compare_is_neither_a_pass_nor_a_regression(second_look_run):
    outcome = _outcome(second_look_run, "test_no_base")
    [v] = outcome.verdicts
    assert not outcome.failed and v.verdict == VerdictKind.NO_BASELINE
    assert verdict_line(v) == ("duration_s: 1 s (A/B against 1a2b3c4: no base to compare (benchmarks/test_t.py::"
                               "test_no_base does not exist at the base)) NO_BASELINE")


# --- the terminal (report/terminal.py) --------------------------------------------------------------------------

def test_the_terminal_lists_each_rechecked_test_and_what_the_second_look_cost(second_look_run):
    assert second_look_section(second_look_run) == [
        "",
        "second look in this job",
        "  test_confirmed: confirmed by 2 re-runs",
        "    energy_j: confirmed by 2 re-runs: +31 %, +28 %, +33 %: REGRESSION",
        "  test_transient: not confirmed: a transient",
        "    energy_j: not confirmed: a transient (+31 %, then +2 %, +4 % in 2 re-runs): PASS",
        "  test_ab_slower: A/B against 1a2b3c4: 6 pairs, REGRESSION",
        "    duration_s: REGRESSION, ratio 1.31 [1.24, 1.39], base 10.2 s -> head 13.37 s "
        "(screen: history: INCONCLUSIVE +12 %)",
        "    energy_j: REGRESSION, ratio 1.31 [1.24, 1.39], base 102 J -> head 133.7 J "
        "(screen: history: INCONCLUSIVE +12 %)",
        "    1 other metric SAME",
        "  test_ab_same: A/B against 1a2b3c4: 3 pairs, SAME",
        "    duration_s: SAME, ratio 1.00 [0.97, 1.03], base 10.17 s -> head 10.2 s (screen: no baseline)",
        "  test_ab_unknown: A/B against 1a2b3c4: 10 pairs, UNKNOWN",
        "    duration_s: UNKNOWN, ratio 1.07 [0.98, 1.17], base 10.18 s -> head 10.95 s, passes "
        "(screen: history: INCONCLUSIVE +12 %)",
        "  test_no_base: no base to compare: benchmarks/test_t.py::test_no_base does not exist at the base",
        "confirmation cost 41.3 s: 2 tests re-run (4 runs)",
        "A/B against 1a2b3c4 cost 246 s: 4 tests (1 with no base to compare), up to 10 pairs each",
        "1 A/B verdict(s) UNKNOWN: the A/B ran out of pairs before deciding (INCONCLUSIVE, the test passes); "
        "more pairs (--energy-max-pairs) would decide them.",
    ]
    lines = terminal_lines(second_look_run)
    table_row = next(i for i, line in enumerate(lines) if line.startswith("test_ab_unknown  duration_s"))
    assert lines.index("second look in this job") > table_row  # below the verdict table
    verdict_cells = [line.rsplit("  ", 1)[-1].strip() for line in lines if line.startswith("test_")]
    assert {"REGRESSION (confirmed)", "PASS (not confirmed)", "REGRESSION (A/B)", "INCONCLUSIVE (A/B)",
            "NO_BASELINE (A/B)"} <= set(verdict_cells)


def test_an_unknown_says_it_fails_under_fail_on_inconclusive(second_look_run):
    strict = RunResult(second_look_run.meter, SessionConfig(rootdir="/r", fail_on_inconclusive=True),
                       second_look_run.benchmarks)
    assert second_look_section(strict)[-1].startswith(
        "1 A/B verdict(s) UNKNOWN: the A/B ran out of pairs before deciding (INCONCLUSIVE, fails with "
        "--energy-fail-on-inconclusive)")


def test_the_cost_of_confirmation_alone_is_one_line(second_look_run):
    confirm_only = RunResult(second_look_run.meter, second_look_run.config, second_look_run.benchmarks[:1])
    assert second_look_section(confirm_only)[-1] == "confirmation cost 27.5 s: 1 test re-run (2 runs)"


def test_an_unflagged_run_prints_nothing_new(unflagged_run):
    assert second_look_section(unflagged_run) == []
    text = "\n".join(terminal_lines(unflagged_run))
    assert "second look" not in text and "A/B" not in text and "confirm" not in text


ARMED_LINE = ("A/B against 1a2b3c4: the history screen flagged no test, so nothing was measured against the base "
              "(no cost)")


def test_an_armed_ab_that_flagged_nothing_says_so_in_every_report(unflagged_run):
    armed = complete_run(dataclasses.replace(unflagged_run, ab_base="1a2b3c4"))
    assert second_look_section(armed) == ["", "second look in this job", ARMED_LINE]
    assert ARMED_LINE in run_markdown(armed)
    assert ARMED_LINE in render_html_report(armed, plots=False)
    report = _report(armed)
    assert report["energy"]["ab_base"] == "1a2b3c4"
    assert RunResult.from_report(report).ab_base == "1a2b3c4"  # the merged and re-rendered reports say it too
    assert "ab_base" not in _report(complete_run(unflagged_run))["energy"]


def test_an_armed_ab_says_nothing_of_its_own_when_it_measured_tests_or_the_run_saved(second_look_run, unflagged_run):
    measured = dataclasses.replace(second_look_run, ab_base="1a2b3c4")
    assert ARMED_LINE not in second_look_section(measured)  # its cost line says what it measured
    saving = dataclasses.replace(unflagged_run, ab_base="1a2b3c4", benchmarks=[
        dataclasses.replace(b, outcome=dataclasses.replace(b.outcome, gating=False)) for b in unflagged_run.benchmarks])
    assert second_look_section(saving) == []


# --- the JSON report (report/json.py) and its schema (tests/specs/energy-report.schema.json) ---------------------

def _report(run: RunResult) -> dict:
    return check.strict_loads(json_text(build_report(run)))


def test_the_json_report_keeps_the_rule_pairs_interval_confirmation_screen_and_recheck(second_look_run):
    benchmarks = {b["name"]: b["energy"] for b in _report(second_look_run)["benchmarks"]}
    [confirmed] = [v for v in benchmarks["test_confirmed"]["comparison"] if v["metric"] == "energy_j"]
    assert confirmed["confirmation"] == "confirmed by 2 re-runs: +31 %, +28 %, +33 %"
    assert confirmed["reruns"] == [{"current_value": 12.8, "change_pct": 28.0, "p_value": 0.004},
                                   {"current_value": 13.3, "change_pct": 33.0, "p_value": 0.002}]
    assert benchmarks["test_confirmed"]["recheck"] == {"how": "confirm", "text": "confirmed by 2 re-runs",
                                                       "cost_s": 27.5, "runs": 2, "base_ref": "", "orders": [],
                                                       "no_base": ""}
    [slower] = [v for v in benchmarks["test_ab_slower"]["comparison"] if v["metric"] == "duration_s"]
    assert slower["rule"] == "A/B against 1a2b3c4 in this job, 6 pairs: ratio 1.31 [1.24, 1.39]"
    assert slower["pairs"][0] == [10.0, 13.1] and len(slower["pairs"]) == 6
    assert slower["ratio_interval"] == [1.24, 1.39]
    assert slower["screen"] == "history: INCONCLUSIVE +12 %"
    assert benchmarks["test_ab_slower"]["recheck"]["orders"] == ["AB", "BA", "BA", "AB", "AB", "BA"]
    assert benchmarks["test_no_base"]["recheck"]["no_base"].endswith("does not exist at the base")


def test_the_report_of_an_unflagged_run_has_none_of_the_new_keys(unflagged_run):
    for b in _report(unflagged_run)["benchmarks"]:
        assert "recheck" not in b["energy"]
        for v in b["energy"]["comparison"]:
            assert not {"confirmation", "reruns", "screen", "pairs", "ratio_interval"} & set(v)


def test_the_reports_validate_against_the_schema_the_older_golden_one_too(second_look_run, unflagged_run):
    assert check.errors(_report(second_look_run), SCHEMA) == []
    assert check.errors(_report(unflagged_run), SCHEMA) == []
    golden = json.loads((check.HERE.parent / "golden" / "report.json").read_text(encoding="utf-8"))
    assert check.errors(golden, SCHEMA) == []


def test_the_schema_refuses_a_malformed_second_look(second_look_run):
    report = _report(second_look_run)
    energy = next(b["energy"] for b in report["benchmarks"] if b["name"] == "test_ab_slower")
    energy["comparison"][0]["pairs"][0].append(1.0)
    energy["comparison"][0]["ratio_interval"] = None
    energy["comparison"][0]["ab_ratio"] = 1.31
    energy["recheck"]["orders"][0] = "AA"
    energy["recheck"]["how"] = "rerun"
    confirmed = next(b["energy"] for b in report["benchmarks"] if b["name"] == "test_confirmed")
    [rerun, _] = next(v for v in confirmed["comparison"] if v["metric"] == "energy_j")["reruns"]
    rerun["p_value"] = "0.004"
    problems = check.errors(report, SCHEMA)
    assert len(problems) == 6, problems
    assert any("p_value" in p and "expected" in p for p in problems)
    assert any("more than 2 items" in p for p in problems)
    assert any("'ab_ratio'" in p and "not allowed" in p for p in problems)
    assert any("'AA' is not one of" in p for p in problems)
    assert any("'rerun' is not one of" in p for p in problems)
    assert any("ratio_interval" in p and "expected array" in p for p in problems)


def test_the_verdicts_read_back_from_the_json_report_as_they_were(second_look_run):
    back = RunResult.from_report(_report(second_look_run))
    for before, after in zip(second_look_run.benchmarks, back.benchmarks):
        assert after.outcome.verdicts == before.outcome.verdicts
    assert _verdict(back, "test_ab_slower", "duration_s").by_ab
    assert _verdict(back, "test_no_base", "duration_s").by_ab


def test_the_recheck_reads_back_from_the_json_report(second_look_run):
    back = RunResult.from_report(_report(second_look_run))
    assert [b.outcome.recheck for b in back.benchmarks] == [b.outcome.recheck for b in second_look_run.benchmarks]


# --- markdown (report/markdown.py) ------------------------------------------------------------------------------

def test_markdown_shows_confirmations_ab_ratios_and_the_second_look(second_look_run):
    text = run_markdown(second_look_run)
    assert ("- `test_confirmed` energy_j: **+31.0 %** (10 J → 13.1 J, p=0.001; tolerance 8 %); confirmed by 2 "
            "re-runs: +31 %, +28 %, +33 %") in text
    assert ("- `test_ab_slower` duration_s: **+31.0 %** (10.2 s → 13.37 s, ratio 1.31 [1.24, 1.39], A/B against "
            "1a2b3c4 in this job, 6 pairs; tolerance 8 %)") in text
    assert "(an A/B line: against the base revision, measured alternately in this job):" in text
    assert "### Second look in this job" in text
    assert text.count("confirmed by 2 re-runs: +31 %") == 1  # in the headline, not again below it
    assert "- `test_ab_slower`: A/B against 1a2b3c4: 6 pairs, REGRESSION\n  - 1 other metric SAME\n" in text
    assert "An A/B verdict compares this revision with the base revision, measured alternately in this job" in text
    assert "  - energy_j: not confirmed: a transient (+31 %, then +2 %, +4 % in 2 re-runs): PASS" in text
    assert "- `test_no_base`: no base to compare: benchmarks/test_t.py::test_no_base does not exist at the base" in text
    assert "A/B against 1a2b3c4 cost 246 s: 4 tests (1 with no base to compare), up to 10 pairs each  " in text
    for row in ("| test_confirmed | energy_j | 10 J | 13.1 J | +31.0 % | 0.001 | **REGRESSION** (confirmed) |",
                "| test_transient | energy_j | 10 J | 13.1 J | +31.0 % | 0.001 | PASS (not confirmed) |",
                "| test_ab_same | duration_s | 10.17 s | 10.2 s | +0.0 % | - | PASS (A/B) |"):
        assert row in text


def test_markdown_of_an_unflagged_run_has_no_second_look(unflagged_run):
    text = run_markdown(unflagged_run)
    assert "Second look" not in text and "A/B" not in text and "confirmed" not in text


def test_markdown_of_a_whole_suite_under_ab_fits_a_pull_request_comment(second_look_run):
    # The reference suite (17 tests), every one suspected, a dozen A/B metrics each, some of them not SAME.
    [slower] = [b for b in second_look_run.benchmarks if b.record.name == "test_ab_slower"]
    metrics = [dataclasses.replace(v, metric=f"inference.metric_{i}_{v.metric}")
               for i in range(4) for v in slower.outcome.verdicts]
    suite = [dataclasses.replace(slower, record=dataclasses.replace(slower.record, nodeid=f"t.py::test_{i}",
                                                                    name=f"test_{i}"),
                                 outcome=dataclasses.replace(slower.outcome, verdicts=metrics)) for i in range(17)]
    text = run_markdown(RunResult(second_look_run.meter, second_look_run.config, suite))
    assert text.count("Against the base revision, measured alternately in this job:") == 1
    assert len(text) < 65536


# --- HTML (report/html.py) --------------------------------------------------------------------------------------

def test_html_shows_the_second_look_and_each_ab_metric_s_pairs(second_look_run):
    page = render_html_report(second_look_run, plots=False)
    assert "<h2>Second look in this job</h2>" in page and "<script" not in page
    assert "<h3>test_transient: not confirmed: a transient</h3>" in page
    assert "<li>energy_j: confirmed by 2 re-runs: +31 %, +28 %, +33 %: REGRESSION</li>" in page
    # each confirmed or unconfirmed metric's runs: the first, then the re-runs, with value, change and p
    assert ('<details open><summary>energy_j: confirmed by 2 re-runs: +31 %, +28 %, +33 %: REGRESSION</summary>'
            "<table><thead><tr><th>run</th><th>value</th><th>change</th><th>p (one-sided)</th></tr></thead><tbody>"
            '<tr><td>first</td><td class="num">13.1 J</td><td class="num">+31.0 %</td><td class="num">0.001</td></tr>'
            '<tr><td>re-run 1</td><td class="num">12.8 J</td><td class="num">+28.0 %</td><td class="num">0.004</td>'
            "</tr>") in page
    transient = page[page.index("<summary>energy_j: not confirmed: a transient"):]
    assert transient.startswith("<summary>energy_j: not confirmed: a transient (+31 %, then +2 %, +4 % in 2 "
                                "re-runs): PASS</summary>")
    # a re-run that lost the metric is a marked gap, not a zero
    assert ('<tr><td>re-run 2</td><td class="num">n/a</td><td class="num">n/a</td><td class="num">n/a</td></tr>'
            in transient)
    assert page.count("<th>p (one-sided)</th>") == 2
    assert ('<details open><summary>duration_s: REGRESSION, ratio 1.31 [1.24, 1.39], base 10.2 s -&gt; head 13.37 s '
            "(6 pairs)</summary><table><thead><tr><th>pair</th><th>order</th><th>base</th><th>head</th>"
            "<th>ratio head/base</th></tr></thead><tbody><tr><td class=\"num\">1</td><td>AB</td>"
            '<td class="num">10 s</td><td class="num">13.1 s</td><td class="num">1.310</td></tr>'
            '<tr><td class="num">2</td><td>BA</td>') in page
    # A SAME is folded, an UNKNOWN too; each has its pairs.
    assert "<details><summary>duration_s: SAME, ratio 1.00 [0.97, 1.03]" in page
    assert "<details><summary>duration_s: UNKNOWN, ratio 1.07 [0.98, 1.17]" in page
    assert page.count("<th>ratio head/base</th>") == 5  # 3 metrics of test_ab_slower, 1 SAME, 1 UNKNOWN
    assert '<td class="verdict verdict-regression">REGRESSION (confirmed)</td>' in page
    assert '<td class="verdict verdict-pass">PASS (not confirmed)</td>' in page
    assert '<td class="verdict verdict-regression">REGRESSION (A/B)</td>' in page
    assert "A/B against 1a2b3c4 cost 246 s: 4 tests (1 with no base to compare), up to 10 pairs each" in page
    assert "An A/B verdict compares this revision with the base revision" in page


def test_html_of_an_unflagged_run_has_no_second_look(unflagged_run):
    page = render_html_report(unflagged_run, plots=False)
    assert "Second look" not in page and "ratio head/base" not in page and "A/B" not in page


def test_html_escapes_the_second_look_s_text(second_look_run):
    [b] = [b for b in second_look_run.benchmarks if b.record.name == "test_no_base"]
    b.outcome.recheck = Recheck("a/b", "no base to compare: <b>boom</b>", base_ref="1a2b3c4", no_base="<b>boom</b>")
    page = render_html_report(second_look_run, plots=False)
    assert "<b>boom</b>" not in page and "no base to compare: &lt;b&gt;boom&lt;/b&gt;" in page
