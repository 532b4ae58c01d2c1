from __future__ import annotations

import pytest

from pytest_energy.errors import UsageError
from pytest_energy.analysis.hulk import normalise
from pytest_energy.report.tables import format_hulk_table

# HULK (Zhou et al.) Table 3: fine-tuning time (s) to cut-off on an RTX 2080 Ti; reference BERT-large.
TABLE3_TIME_S = {
    "BERT-base": {"CoNLL 2003": 43.43, "SST-2": 207.15, "MNLI": None},
    "BERT-large": {"CoNLL 2003": 90.26, "SST-2": 92.45, "MNLI": 9106.72},
    "XLNet-base": {"CoNLL 2003": 67.14, "SST-2": 102.45, "MNLI": 7704.71},
    "XLNet-large": {"CoNLL 2003": 243.00, "SST-2": 367.11, "MNLI": 939.62},
    "RoBERTa-base": {"CoNLL 2003": 70.57, "SST-2": 38.45, "MNLI": 274.87},
    "RoBERTa-large": {"CoNLL 2003": 155.43, "SST-2": 57.65, "MNLI": 397.12},
    "ALBERT-base": {"CoNLL 2003": 340.64, "SST-2": 2767.90, "MNLI": None},
    "ALBERT-large": {"CoNLL 2003": 844.85, "SST-2": 3708.49, "MNLI": None},
}
# (per-task scores, overall) as printed; N/A is printed as 0.00.
TABLE3_SCORES = {
    "BERT-base": ((2.08, 0.45, 0.00), 2.53),
    "BERT-large": ((1.00, 1.00, 1.00), 3.00),
    "XLNet-base": ((1.34, 0.90, 1.18), 3.42),
    "XLNet-large": ((0.37, 0.25, 9.69), 10.31),
    # The paper prints 7.14 / 10.82 here, but 9106.72 / 274.87 = 33.13: its own time column disagrees with
    # its score (a typo in one of the two). We check the arithmetic on the printed times.
    "RoBERTa-base": ((1.28, 2.40, 33.13), 36.81),
    "RoBERTa-large": ((0.58, 1.60, 22.93), 25.11),
    "ALBERT-base": ((0.26, 0.03, 0.00), 0.29),
    "ALBERT-large": ((0.11, 0.02, 0.00), 0.13),
}


@pytest.mark.parametrize("model", sorted(TABLE3_TIME_S))
def test_reproduces_hulk_table3(model):
    scores, overall = normalise(TABLE3_TIME_S[model], TABLE3_TIME_S["BERT-large"])
    expected_scores, expected_overall = TABLE3_SCORES[model]
    printed = [0.0 if s is None else round(s, 2) for s in scores.values()]
    assert printed == list(expected_scores)
    # The paper sums the rounded task scores; we sum the exact ones, so allow the rounding of three terms.
    assert overall == pytest.approx(expected_overall, abs=0.015)


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


def test_format_hulk_table_plain_and_unknown_reference():
    text = format_hulk_table({"m": {"t": 2.0}, "ref": {"t": 1.0}}, "ref", tablefmt="plain")
    assert "|" not in text and "0.50" in text
    with pytest.raises(UsageError, match="'nope'"):
        format_hulk_table({"m": {"t": 2.0}}, "nope")
