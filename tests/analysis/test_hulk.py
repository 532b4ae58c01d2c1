from __future__ import annotations

import pytest

from pytest_energy.analysis.hulk import normalise
from pytest_energy.analysis.hulk_paper import paper_times
from pytest_energy.errors import UsageError
from pytest_energy.report.tables import format_hulk_table

# HULK (Zhou et al. 2021) Table 3 as printed: fine-tuning time (s) to cut-off on an RTX 2080 Ti.
TABLE3_TIME_S = paper_times("finetune", corrected=False)


def test_na_scores_none_and_counts_zero():
    scores, overall = normalise({"a": 2.0, "b": None}, {"a": 4.0, "b": 1.0})
    assert scores == {"a": 2.0, "b": None} and overall == 2.0
    scores, overall = normalise({"a": 8.0}, {"a": 4.0, "b": 1.0})  # a task the model did not run: N/A
    assert scores == {"a": 0.5, "b": None} and overall == 0.5


def test_reference_must_reach_every_cutoff():
    with pytest.raises(UsageError, match="'b' is N/A"):
        normalise({"a": 1.0, "b": 1.0}, {"a": 1.0, "b": None})
    with pytest.raises(UsageError, match="no cost for task.*'c'"):
        normalise({"a": 1.0, "c": 1.0}, {"a": 1.0})


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), "3", True])
def test_costs_must_be_positive_numbers(bad):
    with pytest.raises(UsageError):
        normalise({"a": bad}, {"a": 1.0})
    with pytest.raises(UsageError):
        normalise({"a": 1.0}, {"a": bad})


def test_format_hulk_table_markdown():
    models = {k: TABLE3_TIME_S[k] for k in ("BERT-base", "BERT-large")}
    text = format_hulk_table(models, "BERT-large", cost_label="Time (s)")
    lines = text.splitlines()
    assert [c.strip() for c in lines[0].strip("|").split("|")] == [
        "Model", "CoNLL 2003 Time (s)", "CoNLL 2003 Score", "SST-2 Time (s)", "SST-2 Score", "MNLI Time (s)",
        "MNLI Score", "Overall Score"]
    bert_base = [c.strip() for c in lines[2].strip("|").split("|")]
    assert bert_base == ["BERT-base", "43.43", "2.08", "207.15", "0.45", "n/a", "0.00", "2.52"]
    assert "9,106.72" in lines[3]


def test_format_hulk_table_tells_not_run_from_not_reached():
    text = format_hulk_table({"ref": {"a": 1.0, "b": 2.0}, "m": {"a": 0.5}, "n": {"a": 0.25, "b": None}}, "ref",
                             tablefmt="plain", tasks=["a", "b"])
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines()[1:]}
    assert rows["m"] == ["0.5", "2.00", "-", "0.00", "2.00"]  # b not run
    assert rows["n"] == ["0.25", "4.00", "n/a", "0.00", "4.00"]  # b run, cut-off not reached


def test_format_hulk_table_plain_and_unknown_reference():
    text = format_hulk_table({"m": {"t": 2.0}, "ref": {"t": 1.0}}, "ref", tablefmt="plain")
    assert "|" not in text and "0.50" in text
    with pytest.raises(UsageError, match="'nope'"):
        format_hulk_table({"m": {"t": 2.0}}, "nope")
