"""HULK's published Tables 3 and 4 (Zhou et al. 2021) as a built-in reference.

`hulk_paper.json` (package data) holds the paper's fine-tuning times to the cut-off (Table 3, seconds) and
inference times per example (Table 4, milliseconds) for BERT-base to ALBERT-large on CoNLL 2003, SST-2 and
MNLI, measured on one RTX 2080 Ti, with the scores and overall scores as printed. The paper has no energy
and no cost figures, so a run placed beside it is compared on time only, and across hardware: such a score
says how this machine and model compare with BERT-large on the paper's GPU, nothing finer.

One cell is a known misprint, kept as printed and corrected explicitly (`ERRATA`, `paper_times(corrected=)`):
Table 3 prints RoBERTa-base's MNLI time as 274.87 s, but its score 7.14 (and its overall 10.82) imply
1,274.87 s (9,106.72 / 1,274.87 = 7.14, while 9,106.72 / 274.87 = 33.13).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from ..errors import UsageError

PAPER_FILE = Path(__file__).with_name("hulk_paper.json")
PROTOCOLS = ("finetune", "inference")


@functools.lru_cache(maxsize=1)
def paper() -> dict[str, Any]:
    """The whole transcription (read once; treat it as read-only)."""
    with open(PAPER_FILE, encoding="utf-8") as f:
        return json.load(f)


def _table(protocol: str) -> dict[str, Any]:
    if protocol not in PROTOCOLS:
        raise UsageError(f"HULK's tables are 'finetune' (Table 3) and 'inference' (Table 4), not {protocol!r}")
    return paper()[protocol]


def paper_task(task: str) -> str | None:
    """The paper's column for one of our task names ('sst2' -> 'SST-2'); None for a task HULK does not have."""
    tasks = paper()["tasks"]
    return tasks.get(task) or (task if task in tasks.values() else None)


def errata(protocol: str) -> list[dict[str, Any]]:
    return [e for e in paper()["errata"] if e["table"] == protocol]


def paper_times(protocol: str, *, corrected: bool = True) -> dict[str, dict[str, float | None]]:
    """{model: {paper task: time}} of Table 3 ("finetune", s) or Table 4 ("inference", ms); N/A is None.

    `corrected=True` replaces each misprinted cell listed in the errata by its corrected value;
    `corrected=False` gives the cells exactly as printed.
    """
    table = _table(protocol)
    times = {model: {task: cell["time"] for task, cell in cells.items()} for model, cells in table["models"].items()}
    if corrected:
        for e in errata(protocol):
            if times[e["model"]][e["task"]] != e["printed_time"]:
                raise ValueError(f"{PAPER_FILE}: erratum {e} does not match the printed cell")
            times[e["model"]][e["task"]] = e["time"]
    return times


def table_caption(protocol: str) -> str:
    """One line saying what a paper table is, for reports."""
    table = _table(protocol)
    doc = paper()
    return (f"HULK Table {table['table']} (Zhou et al. 2021): {table['what']}; {doc['hardware']}; "
            f"reference {doc['reference_model']}; {doc['measures']}")
