"""Data for the reference benchmarks: HULK's three tasks plus a generated offline default.

- `sst2`: SST-2 sentiment, accuracy, cut-off 0.90 (HULK)
- `mnli`: MultiNLI, accuracy averaged over dev matched and mismatched, cut-off 0.85 (HULK)
- `conll2003`: CoNLL-2003 NER, entity-level F1, cut-off 0.91 (HULK)
- `synthetic`: templated sentiment sentences generated here from a seed; needs no download

Real tasks load from a local folder (`data_dir` argument, else $PYTEST_ENERGY_DATA_DIR) holding
`SST-2/`, `MNLI/` or `CoNLL-2003/` in GLUE / CoNLL format, else through `datasets.load_dataset`
(hub or local cache). Failure is a DataError saying what was tried and how to provide the data.
"""

from __future__ import annotations

import dataclasses
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from ..errors import DataError, UsageError

DATA_DIR_ENV = "PYTEST_ENERGY_DATA_DIR"

CONLL_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")  # HF order


@dataclass(frozen=True)
class TextExample:
    """A sentence (or sentence pair) with a class id."""

    text: str
    label: int
    text_pair: str | None = None


@dataclass(frozen=True)
class TaggedExample:
    """A sentence as words with one BIO tag per word."""

    words: tuple[str, ...]
    tags: tuple[str, ...]


Example = Union[TextExample, TaggedExample]


@dataclass(frozen=True)
class TaskSpec:
    name: str
    title: str
    kind: str  # "sequence" (one label per example) | "token" (one tag per word)
    metric: str  # "accuracy" | "entity_f1"
    cutoff: float  # HULK's dev-set cut-off
    label_names: tuple[str, ...]
    folder: str = ""  # sub-folder of the data dir
    hub: tuple[tuple[str, str | None], ...] = ()  # load_dataset(path, name) candidates, in order
    layout: str = ""  # the files expected in the folder, for error messages


TASKS: dict[str, TaskSpec] = {
    "synthetic": TaskSpec("synthetic", "synthetic sentiment (generated)", "sequence", "accuracy", 0.90,
                          ("negative", "positive")),
    "sst2": TaskSpec("sst2", "SST-2", "sequence", "accuracy", 0.90, ("negative", "positive"), "SST-2",
                     (("nyu-mll/glue", "sst2"), ("glue", "sst2")),
                     "SST-2/train.tsv and SST-2/dev.tsv, tab-separated with header 'sentence<TAB>label'"),
    "mnli": TaskSpec("mnli", "MNLI", "sequence", "accuracy", 0.85, ("entailment", "neutral", "contradiction"),
                     "MNLI", (("nyu-mll/glue", "mnli"), ("glue", "mnli")),
                     "MNLI/train.tsv, MNLI/dev_matched.tsv and MNLI/dev_mismatched.tsv, GLUE format "
                     "(tab-separated, header naming sentence1, sentence2 and gold_label)"),
    "conll2003": TaskSpec("conll2003", "CoNLL-2003", "token", "entity_f1", 0.91, CONLL_TAGS, "CoNLL-2003",
                          (("eriktks/conll2003", None), ("conll2003", None)),
                          "CoNLL-2003/train.txt and CoNLL-2003/valid.txt, one 'word POS chunk NER' line per "
                          "word, blank lines between sentences"),
}
_ALIASES = {"sst": "sst2", "conll": "conll2003", "embedded": "synthetic"}


@dataclass
class TaskData:
    spec: TaskSpec
    train: list[Example]
    dev: dict[str, list[Example]]  # split name -> examples; the score is the mean over splits
    source: str  # where the data came from, for reports
    extra: dict[str, object] = field(default_factory=dict)

    def score(self, predictions: dict[str, list]) -> float:
        """Mean over dev splits of the task metric; `predictions[split]` aligned with `dev[split]`."""
        return sum(score_split(self.spec, self.dev[s], predictions[s]) for s in self.dev) / len(self.dev)


def task_spec(name: str) -> TaskSpec:
    key = name.lower().replace("-", "").replace("_", "")
    key = _ALIASES.get(key, key)
    if key not in TASKS:
        raise UsageError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    return TASKS[key]


# ---- metrics -------------------------------------------------------------------------------------------

def bio_entities(tags: list[str] | tuple[str, ...]) -> set[tuple[str, int, int]]:
    """Entities as (type, start, end-exclusive) from BIO tags, the way conlleval reads them.

    An I-X that follows O or another type starts an entity, so IOB1 (the original CoNLL-2003 files)
    and IOB2 (the Hugging Face copy) both work.
    """
    found: set[tuple[str, int, int]] = set()
    current: str | None = None
    start = 0
    for i, tag in enumerate([*tags, "O"]):
        if tag == "O":
            prefix, kind = "O", None
        else:
            prefix, sep, kind = tag.partition("-")
            if not sep or prefix not in ("B", "I") or not kind:
                raise UsageError(f"not a BIO tag: {tag!r} (expected O, B-TYPE or I-TYPE)")
        if current is not None and (prefix != "I" or kind != current):
            found.add((current, start, i))
            current = None
        if prefix != "O" and current is None:
            current, start = kind, i
    return found


def entity_f1(gold: list[list[str]], predicted: list[list[str]]) -> float:
    """Micro-averaged entity-level F1: an entity counts only with exact type and span.

    1.0 when neither side has any entity (nothing to find, nothing wrongly found).
    """
    if len(gold) != len(predicted):
        raise UsageError(f"{len(gold)} gold sentences but {len(predicted)} predicted")
    n_gold = n_pred = n_hit = 0
    for g_tags, p_tags in zip(gold, predicted):
        if len(g_tags) != len(p_tags):
            raise UsageError(f"sentence with {len(g_tags)} gold tags but {len(p_tags)} predicted")
        g, p = bio_entities(g_tags), bio_entities(p_tags)
        n_gold += len(g)
        n_pred += len(p)
        n_hit += len(g & p)
    if n_gold == 0 and n_pred == 0:
        return 1.0
    if n_hit == 0:
        return 0.0
    precision, recall = n_hit / n_pred, n_hit / n_gold
    return 2 * precision * recall / (precision + recall)


def score_split(spec: TaskSpec, examples: list[Example], predictions: list) -> float:
    """The task metric on one split. Predictions: class ids (sequence tasks) or tag sequences (token tasks)."""
    if len(examples) != len(predictions):
        raise UsageError(f"{len(examples)} examples but {len(predictions)} predictions")
    if spec.metric == "entity_f1":
        return entity_f1([list(e.tags) for e in examples], [list(p) for p in predictions])
    return sum(1 for e, p in zip(examples, predictions) if e.label == p) / len(examples)


# ---- the generated default -----------------------------------------------------------------------------

_SUBJECTS = ("the movie", "the film", "the story", "the acting", "the plot", "the ending", "the cast",
             "the script", "the dialogue", "the soundtrack", "the pacing", "the direction", "the sequel",
             "the lead performance", "the cinematography", "the humour", "the screenplay", "the finale")
_POSITIVE = ("wonderful", "brilliant", "delightful", "moving", "charming", "superb", "gripping", "clever",
             "beautiful", "memorable", "funny", "heartfelt", "stunning", "engaging", "fresh", "touching",
             "masterful", "excellent", "enjoyable", "inspiring", "witty", "powerful")
_NEGATIVE = ("dull", "boring", "awful", "tedious", "clumsy", "bland", "painful", "forgettable", "shallow",
             "predictable", "messy", "lifeless", "terrible", "annoying", "confusing", "weak", "lazy",
             "tiresome", "dreadful", "pointless", "flat", "cheap")
_LIKE = ("loved", "enjoyed", "adored", "admired", "was impressed by", "would recommend")
_DISLIKE = ("hated", "disliked", "regretted watching", "could not stand", "was bored by", "would avoid")
_INTENSIFIERS = ("", "", "really ", "truly ", "rather ", "quite ", "utterly ", "surprisingly ")
_NOUNS = ("movie", "film", "story", "experience", "evening", "two hours", "premise")


def _synthetic_sentence(rng: random.Random, label: int) -> str:
    """One sentence whose sentiment is `label` (1 positive). Negation and contrast make it more than a lexicon."""
    good, bad = (_POSITIVE, _NEGATIVE) if label else (_NEGATIVE, _POSITIVE)
    subj, subj2 = rng.sample(_SUBJECTS, 2)
    adv = rng.choice(_INTENSIFIERS)
    form = rng.random()
    if form < 0.15:  # negated opposite adjective: "was not dull" is positive
        return f"{subj} was not {rng.choice(bad)} ."
    if form < 0.30:  # contrast: the clause after "but" decides
        return f"{subj} was {rng.choice(bad)} , but {subj2} was {adv}{rng.choice(good)} ."
    if form < 0.45:
        return f"{subj} was {adv}{rng.choice(good)} and {subj2} was {rng.choice(good)} ."
    if form < 0.60:
        return f"i {rng.choice(_LIKE if label else _DISLIKE)} {subj} ."
    if form < 0.75:
        return f"what a {adv}{rng.choice(good)} {rng.choice(_NOUNS)} ."
    if form < 0.85:
        return f"i thought {subj} was {adv}{rng.choice(good)} ."
    return f"{subj} was {adv}{rng.choice(good)} ."


def synthetic_task(seed: int = 0, n_train: int = 4000, n_dev: int = 500) -> TaskData:
    """Generate the offline default task: balanced, deterministic for a seed, dev disjoint from train."""
    if n_train < 2 or n_dev < 2:
        raise UsageError(f"synthetic task needs n_train and n_dev >= 2, got {n_train}, {n_dev}")
    rng = random.Random(seed)
    seen: set[str] = set()

    def draw(n: int) -> list[Example]:
        out: list[Example] = []
        while len(out) < n:
            label = len(out) % 2
            text = _synthetic_sentence(rng, label)
            if text not in seen:  # a dev sentence never appears in train
                seen.add(text)
                out.append(TextExample(text, label))
        rng.shuffle(out)
        return out

    train = draw(n_train)
    dev = draw(n_dev)
    return TaskData(TASKS["synthetic"], train, {"dev": dev}, f"generated (seed {seed})",
                    {"seed": seed, "n_train": n_train, "n_dev": n_dev})


# ---- folder loading ------------------------------------------------------------------------------------

def _read_tsv(path: Path) -> tuple[list[str], list[list[str]]]:
    # Plain split, no csv quoting: GLUE text contains unbalanced quotes that csv would join across lines.
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip("\n").rstrip("\r") for line in f]
    if not lines:
        raise DataError(f"{path} is empty")
    return lines[0].split("\t"), [line.split("\t") for line in lines[1:] if line.strip()]


def _columns(path: Path, header: list[str], wanted: tuple[str, ...]) -> list[int]:
    missing = [c for c in wanted if c not in header]
    if missing:
        raise DataError(f"{path}: header has no column(s) {missing}; found {header}")
    return [header.index(c) for c in wanted]


def _load_sst2_tsv(path: Path) -> list[Example]:
    header, rows = _read_tsv(path)
    i_text, i_label = _columns(path, header, ("sentence", "label"))
    try:
        return [TextExample(r[i_text], int(r[i_label])) for r in rows]
    except (IndexError, ValueError) as exc:
        raise DataError(f"{path}: malformed row ({exc})") from exc


def _load_mnli_tsv(path: Path) -> list[Example]:
    header, rows = _read_tsv(path)
    i_a, i_b, i_label = _columns(path, header, ("sentence1", "sentence2", "gold_label"))
    ids = {name: i for i, name in enumerate(TASKS["mnli"].label_names)}
    out: list[Example] = []
    for r in rows:
        try:
            label = r[i_label]
            if label in ids:  # "-" marks pairs without annotator consensus: not scored in GLUE either
                out.append(TextExample(r[i_a], ids[label], r[i_b]))
        except IndexError as exc:
            raise DataError(f"{path}: malformed row ({exc})") from exc
    return out


def _load_conll_txt(path: Path) -> list[Example]:
    known = set(CONLL_TAGS)
    out: list[Example] = []
    words: list[str] = []
    tags: list[str] = []

    def flush() -> None:
        if words:
            out.append(TaggedExample(tuple(words), tuple(tags)))
            words.clear()
            tags.clear()

    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                flush()
                continue
            if parts[0] == "-DOCSTART-":
                flush()
                continue
            if parts[-1] not in known:
                raise DataError(f"{path}:{n}: unknown NER tag {parts[-1]!r}; expected one of {CONLL_TAGS}")
            words.append(parts[0])
            tags.append(parts[-1])
    flush()
    return out


def _load_folder(spec: TaskSpec, folder: Path) -> TaskData:
    if spec.name == "sst2":
        files = {"train": "train.tsv", "dev": "dev.tsv"}
        reader = _load_sst2_tsv
    elif spec.name == "mnli":
        files = {"train": "train.tsv", "dev_matched": "dev_matched.tsv", "dev_mismatched": "dev_mismatched.tsv"}
        reader = _load_mnli_tsv
    else:
        files = {"train": "train.txt", "dev": "valid.txt"}
        reader = _load_conll_txt
    missing = [name for name in files.values() if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"no {', '.join(missing)} in {folder}")
    splits = {split: reader(folder / name) for split, name in files.items()}
    train = splits.pop("train")
    return TaskData(spec, train, splits, str(folder))


def _load_hub(spec: TaskSpec, path: str, name: str | None) -> TaskData:
    import datasets

    ds = datasets.load_dataset(path, name)
    if spec.name == "conll2003":
        names = ds["train"].features["ner_tags"].feature.names

        def tagged(split: str) -> list[Example]:
            return [TaggedExample(tuple(r["tokens"]), tuple(names[t] for t in r["ner_tags"])) for r in ds[split]]

        return TaskData(spec, tagged("train"), {"dev": tagged("validation")}, f"datasets:{path}")
    if spec.name == "mnli":
        def pairs(split: str) -> list[Example]:
            return [TextExample(r["premise"], int(r["label"]), r["hypothesis"]) for r in ds[split] if r["label"] >= 0]

        return TaskData(spec, pairs("train"), {"dev_matched": pairs("validation_matched"),
                                               "dev_mismatched": pairs("validation_mismatched")},
                        f"datasets:{path}/{name}")
    return TaskData(spec, [TextExample(r["sentence"], int(r["label"])) for r in ds["train"]],
                    {"dev": [TextExample(r["sentence"], int(r["label"])) for r in ds["validation"]]},
                    f"datasets:{path}/{name}")


def _subset(examples: list[Example], limit: int | None, rng: random.Random) -> list[Example]:
    """A seeded sample of `limit` examples in their original order (all of them when limit is None)."""
    if limit is None or limit >= len(examples):
        return examples
    keep = sorted(rng.sample(range(len(examples)), limit))
    return [examples[i] for i in keep]


def load_task(name: str, data_dir: str | os.PathLike[str] | None = None, *, seed: int = 0,
              max_train: int | None = None, max_dev: int | None = None) -> TaskData:
    """Load task `name`; `max_train` / `max_dev` (per dev split) take a seeded sample for short runs.

    Looks in `data_dir` (or $PYTEST_ENERGY_DATA_DIR): `<dir>/<Folder>/` or `<dir>` itself when it holds
    the task's files; then `datasets.load_dataset`. `synthetic` is generated and needs neither.
    """
    spec = task_spec(name)
    for label, value in (("max_train", max_train), ("max_dev", max_dev)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise UsageError(f"{label} must be an int >= 1 or None, got {value!r}")
    data = synthetic_task(seed) if spec.name == "synthetic" else _load_real(spec, data_dir)
    return subsample(data, max_train=max_train, max_dev=max_dev, seed=seed)


def subsample(data: TaskData, *, max_train: int | None = None, max_dev: int | None = None,
              seed: int = 0) -> TaskData:
    """A copy with seeded samples of at most `max_train` training and `max_dev` examples per dev split."""
    rng = random.Random(seed)
    return dataclasses.replace(data, train=_subset(data.train, max_train, rng),
                               dev={split: _subset(ex, max_dev, rng) for split, ex in data.dev.items()})


def _load_real(spec: TaskSpec, data_dir: str | os.PathLike[str] | None) -> TaskData:
    tried: list[str] = []
    last: BaseException | None = None
    root = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV) or None
    if root is not None:
        root = Path(root).expanduser()
        for folder in (root / spec.folder, root):
            try:
                return _load_folder(spec, folder)
            except FileNotFoundError as exc:
                tried.append(f"folder {folder}: {exc}")
                last = exc
            except (OSError, UnicodeDecodeError) as exc:
                raise DataError(f"cannot read {spec.title} from {folder}: {exc}") from exc
    else:
        tried.append(f"local folder: none given (no data_dir argument, ${DATA_DIR_ENV} unset)")
    try:
        import datasets  # noqa: F401
    except ImportError as exc:
        tried.append(f"datasets.load_dataset: the 'datasets' package is not installed ({exc})")
        last = exc
    else:
        for path, config in spec.hub:
            call = f"datasets.load_dataset({path!r}" + (f", {config!r})" if config else ")")
            try:
                return _load_hub(spec, path, config)
            except Exception as exc:  # noqa: BLE001 - offline, not cached, renamed...: report them all below
                first_line = (str(exc).strip().splitlines() or [""])[0][:300]
                tried.append(f"{call}: {type(exc).__name__}: {first_line}")
                last = exc
    hub = spec.hub[0]
    raise DataError(
        f"cannot load task {spec.name!r} ({spec.title}). Tried:\n  - " + "\n  - ".join(tried) + "\n"
        f"Provide it either as a folder: set ${DATA_DIR_ENV} (or --energy-data-dir / data_dir=) to a directory "
        f"holding {spec.layout}; or through the datasets cache: run datasets.load_dataset({hub[0]!r}"
        + (f", {hub[1]!r}" if hub[1] else "") + ") once with internet access (cache under $HF_HOME), "
        "then run offline with HF_DATASETS_OFFLINE=1."
    ) from last
