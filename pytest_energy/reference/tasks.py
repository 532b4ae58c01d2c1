"""Data for the reference benchmarks: HULK's three tasks plus a generated offline default.

- `sst2`: SST-2 sentiment, accuracy, cut-off 0.90 (HULK)
- `mnli`: MultiNLI, accuracy averaged over dev matched and mismatched, cut-off 0.85 (HULK)
- `conll2003`: CoNLL-2003 NER, entity-level F1, cut-off 0.91 (HULK)
- `synthetic`: templated sentiment sentences generated here from a seed; needs no download

Real tasks load from a local folder (`data_dir` argument, else $PYTEST_ENERGY_DATA_DIR) holding
`SST-2/`, `MNLI/` or `CoNLL-2003/` (or another usual spelling) in GLUE / CoNLL format under the names users
have (LAYOUTS: CoNLL-2003's original eng.train/eng.testa too), else through `datasets.load_dataset` (the
local cache offline; the hub only when it answers). Failure is one DataError saying what was tried and how to
provide the data.
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
    layout: str = ""  # the line format of its files, for error messages


TASKS: dict[str, TaskSpec] = {
    "synthetic": TaskSpec("synthetic", "synthetic sentiment (generated)", "sequence", "accuracy", 0.90,
                          ("negative", "positive")),
    "sst2": TaskSpec("sst2", "SST-2", "sequence", "accuracy", 0.90, ("negative", "positive"), "SST-2",
                     (("nyu-mll/glue", "sst2"), ("glue", "sst2")),
                     "tab-separated, header 'sentence<TAB>label'"),
    "mnli": TaskSpec("mnli", "MNLI", "sequence", "accuracy", 0.85, ("entailment", "neutral", "contradiction"),
                     "MNLI", (("nyu-mll/glue", "mnli"), ("glue", "mnli")),
                     "tab-separated, a header naming sentence1, sentence2 and gold_label"),
    "conll2003": TaskSpec("conll2003", "CoNLL-2003", "token", "entity_f1", 0.91, CONLL_TAGS, "CoNLL-2003",
                          (("eriktks/conll2003", None), ("conll2003", None)),
                          "one 'word POS chunk NER' line per word, blank lines "
                          "between sentences, IOB1 or IOB2 tags"),
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

# Movie-review English (no nonce words). Most forms are compositional: the sentiment words alone mislead or
# tie, and the structure decides (negation, "but" / "although" in both orders, counterfactuals, "not ...
# enough", "overall" after a list of the opposite). With 5 % of training labels flipped, MiniLM needs several
# evaluations to reach 0.90 (a curve, not one point), as on real SST-2; docs/protocols.md has the figures.
_SUBJECTS = ("the movie", "the film", "the story", "the acting", "the plot", "the ending", "the cast",
             "the script", "the dialogue", "the soundtrack", "the pacing", "the direction", "the sequel",
             "the lead performance", "the cinematography", "the humour", "the screenplay", "the finale",
             "the editing", "the score", "the second half", "the opening", "the villain", "the premise",
             "the visual effects", "the supporting cast", "the romance", "the final act")
_POSITIVE = ("wonderful", "brilliant", "delightful", "moving", "charming", "superb", "gripping", "clever",
             "beautiful", "memorable", "funny", "heartfelt", "stunning", "engaging", "fresh", "touching",
             "masterful", "excellent", "enjoyable", "inspiring", "witty", "powerful",
             "luminous", "riveting", "poignant", "exhilarating", "sublime", "deft", "assured", "incisive",
             "understated", "elegant", "playful", "haunting", "tender", "absorbing", "lively", "graceful")
_NEGATIVE = ("dull", "boring", "awful", "tedious", "clumsy", "bland", "painful", "forgettable", "shallow",
             "predictable", "messy", "lifeless", "terrible", "annoying", "confusing", "weak", "lazy",
             "tiresome", "dreadful", "pointless", "flat", "cheap",
             "turgid", "leaden", "plodding", "hackneyed", "insipid", "mawkish", "overwrought", "inert",
             "derivative", "ponderous", "trite", "cloying", "sluggish", "muddled", "stilted", "grating")
_LIKE = ("loved", "enjoyed", "adored", "admired", "savoured", "was won over by")
_DISLIKE = ("hated", "disliked", "resented", "could not stand", "was bored by", "was annoyed by")
_INTENSIFIERS = ("", "", "", "really ", "truly ", "rather ", "quite ", "utterly ", "surprisingly ",
                 "genuinely ", "oddly ")
_NOUNS = ("movie", "film", "story", "experience", "evening", "two hours", "premise", "picture", "debut")
_CONTEXT = ("i saw it on a rainy tuesday", "we watched it at home", "my sister picked it",
            "it opened last friday", "the theatre was half empty", "it runs just under two hours",
            "i went in knowing nothing", "it is based on a novel", "the trailer gave little away",
            "i watched it with friends", "it was shot in three countries", "the director is a newcomer")
# Relative frequency of each form: 10/23 "easy" (the adjectives decide), 13/23 structural. With half as many
# easy forms MiniLM sat at chance for 30 steps and then jumped; this mix climbs gradually, like SST-2.
SYNTHETIC_FORMS = {"plain": 2, "and": 2, "like": 2, "what_a": 2, "context": 2,
                   "negated": 2, "but": 2, "although_first": 1, "although_last": 2, "could_have": 2,
                   "not_enough": 1, "overall": 2, "negated_verb": 1}
SYNTHETIC_TRAIN_NOISE = 0.05  # share of training labels flipped (dev labels are clean)


def _synthetic_sentence(rng: random.Random, label: int, form: str) -> str:
    """One sentence of `form` whose sentiment is `label` (1 positive)."""
    good, bad = (_POSITIVE, _NEGATIVE) if label else (_NEGATIVE, _POSITIVE)
    subj, subj2 = rng.sample(_SUBJECTS, 2)
    adv = rng.choice(_INTENSIFIERS)
    g, b = rng.choice(good), rng.choice(bad)
    if form == "plain":
        return f"{subj} was {adv}{g} ."
    if form == "and":
        return f"{subj} was {adv}{g} and {subj2} was {rng.choice(good)} ."
    if form == "like":
        return f"i {rng.choice(_LIKE if label else _DISLIKE)} {subj} ."
    if form == "what_a":
        return f"what a {adv}{g} {rng.choice(_NOUNS)} ."
    if form == "context":
        return f"{rng.choice(_CONTEXT)} , and {subj} was {adv}{g} ."
    if form == "negated":  # "was not dull" is positive
        neg = rng.choice(("was not", "was never", "was hardly", "was far from", "is not", "was anything but"))
        return f"{subj} {neg} {b} ."
    if form == "but":  # the clause after "but" decides
        return f"{subj} was {adv}{b} , but {subj2} was {g} ."
    if form == "although_first":  # main clause last
        return f"although {subj} was {b} , {subj2} was {adv}{g} ."
    if form == "although_last":  # main clause first: the words of "but", in the opposite order
        return f"{subj} was {adv}{g} , although {subj2} was {b} ."
    if form == "could_have":
        if label:  # "could have been tedious in lesser hands" is praise
            return f"{subj} could have been {b} in lesser hands , yet it is {g} ."
        verb = rng.choice(("could have been", "should have been", "wanted to be", "tries to be"))
        return f"{subj} {verb} {rng.choice(_POSITIVE)} ."
    if form == "not_enough":
        if label:
            return (f"{subj} was {rng.choice(_NEGATIVE)} , but not enough to spoil a {rng.choice(_POSITIVE)} "
                    f"{rng.choice(_NOUNS)} .")
        return f"{subj} was {rng.choice(_POSITIVE)} , but not {rng.choice(_POSITIVE)} enough to save it ."
    if form == "overall":  # two of the opposite, then the verdict
        s1, s2 = rng.sample(_SUBJECTS, 2)
        return f"{s1} was {b} and {s2} was {rng.choice(bad)} , but overall it was {adv}{g} ."
    if form == "negated_verb":  # "i did not hate it" leans positive, "i did not enjoy it" is negative
        verbs = ("hate", "dislike", "regret watching", "mind") if label else ("enjoy", "like", "love", "care for")
        return f"i did not {rng.choice(verbs)} {subj} ."
    raise UsageError(f"unknown synthetic sentence form {form!r}; known: {', '.join(SYNTHETIC_FORMS)}")


def synthetic_task(seed: int = 0, n_train: int = 4000, n_dev: int = 500, *,
                   train_noise: float = SYNTHETIC_TRAIN_NOISE) -> TaskData:
    """Generate the offline default task: balanced, deterministic for a seed, dev disjoint from train.

    `train_noise`: share of training labels flipped, as many of each class (labels stay balanced), as real
    annotations are noisy; dev labels are clean, so 0.90 stays reachable.
    """
    if n_train < 2 or n_dev < 2:
        raise UsageError(f"synthetic task needs n_train and n_dev >= 2, got {n_train}, {n_dev}")
    if not 0 <= train_noise < 0.5:
        raise UsageError(f"train_noise must be in [0, 0.5), got {train_noise!r}")
    rng = random.Random(seed)
    forms = sorted(SYNTHETIC_FORMS)
    weights = [SYNTHETIC_FORMS[f] for f in forms]
    seen: set[str] = set()

    def draw(n: int) -> list[TextExample]:
        out: list[TextExample] = []
        while len(out) < n:
            label = len(out) % 2
            text = _synthetic_sentence(rng, label, rng.choices(forms, weights)[0])
            if text not in seen:  # a dev sentence never appears in train
                seen.add(text)
                out.append(TextExample(text, label))
        rng.shuffle(out)
        return out

    train = draw(n_train)
    dev = draw(n_dev)
    k = round(train_noise * n_train) // 2
    flips = (rng.sample([i for i, e in enumerate(train) if e.label == 1], k)
             + rng.sample([i for i, e in enumerate(train) if e.label == 0], k))
    for i in flips:
        train[i] = TextExample(train[i].text, 1 - train[i].label)
    return TaskData(TASKS["synthetic"], list(train), {"dev": list(dev)}, f"generated (seed {seed})",
                    {"seed": seed, "n_train": n_train, "n_dev": n_dev, "train_noise": train_noise})


# ---- folder loading ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    """One way a task's files are named in a folder: a training file and the dev file of each dev split."""

    train: str
    dev: tuple[tuple[str, str], ...]  # (split, file name)
    about: str = ""  # where this naming comes from, for error messages

    @property
    def names(self) -> str:
        return " + ".join([self.train, *(name for _, name in self.dev)])


# In order of preference; the first layout whose dev files are all present wins. The test set (test.txt,
# eng.testb) is never used as dev: HULK measures on dev.
LAYOUTS: dict[str, tuple[Layout, ...]] = {
    "sst2": (Layout("train.tsv", (("dev", "dev.tsv"),), "GLUE"),),
    "mnli": (Layout("train.tsv", (("dev_matched", "dev_matched.tsv"), ("dev_mismatched", "dev_mismatched.tsv")),
                    "GLUE"),),
    "conll2003": (
        Layout("train.txt", (("dev", "valid.txt"),), "the Hugging Face / deepai conll2003.zip copy, IOB2"),
        Layout("train.txt", (("dev", "dev.txt"),), "flair-style naming"),
        Layout("eng.train", (("dev", "eng.testa"),),
               "the original shared-task files, IOB1; eng.testb is the test set and is not used"),
        Layout("conllpp_train.txt", (("dev", "conllpp_dev.txt"),), "CoNLL++"),
    ),
}
# Sub-folder names accepted besides TaskSpec.folder, compared lowercased without '-', '_' and spaces:
# CoNLL-2003, conll2003, CONLL2003, conll-2003, conll_2003, CoNLL03 and flair's conll_03 all match.
FOLDER_KEYS: dict[str, tuple[str, ...]] = {"sst2": ("sst2",), "mnli": ("mnli", "multinli"),
                                           "conll2003": ("conll2003", "conll03")}
_TRUE = ("1", "ON", "YES", "TRUE")
OFFLINE_ENV = ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE")


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


def to_iob2(tags: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """IOB1 tags (the original CoNLL-2003 files: I-X opens an entity) as IOB2 (every entity opens with B-X).

    Lossless (the same entities, see bio_entities) and a no-op on IOB2, so training labels follow the Hugging
    Face convention whichever copy of the data was loaded.
    """
    out = []
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and (previous == "O" or previous[2:] != tag[2:]):
            out.append("B-" + tag[2:])
        else:
            out.append(tag)
        previous = tag
    return tuple(out)


def _load_conll_txt(path: Path) -> list[Example]:
    known = set(CONLL_TAGS)
    out: list[Example] = []
    words: list[str] = []
    tags: list[str] = []

    def flush() -> None:
        if words:
            out.append(TaggedExample(tuple(words), to_iob2(tags)))
            words.clear()
            tags.clear()

    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.split()  # also strips Windows line ends and trailing spaces
            if not parts:
                flush()
                continue
            if parts[0] == "-DOCSTART-":  # "-DOCSTART- -X- -X- O" or "-DOCSTART- -X- O O": first token only
                flush()
                continue
            if parts[-1] not in known:
                raise DataError(f"{path}:{n}: unknown NER tag {parts[-1]!r}; expected one of {CONLL_TAGS}")
            words.append(parts[0])
            tags.append(parts[-1])
    flush()
    return out


_READERS = {"sst2": _load_sst2_tsv, "mnli": _load_mnli_tsv, "conll2003": _load_conll_txt}


def _folder_key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "").replace(" ", "")


def candidate_folders(spec: TaskSpec, root: Path) -> list[Path]:
    """Where the task's files may be, in order: <root>/<TaskSpec.folder>, then sub-folders spelt otherwise
    (FOLDER_KEYS, sorted), then <root> itself."""
    folders = [root / spec.folder]
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir())
    except OSError:
        children = []
    folders += [p for p in children if _folder_key(p.name) in FOLDER_KEYS[spec.name] and p.name != spec.folder]
    return [*folders, root]


def _load_folder(spec: TaskSpec, folder: Path) -> TaskData | str:
    """The task from `folder`, or why the folder does not hold it (for the error listing every folder tried)."""
    if not folder.is_dir():
        return "does not exist"
    for layout in LAYOUTS[spec.name]:
        if not all((folder / name).is_file() for _, name in layout.dev):
            continue
        reader = _READERS[spec.name]
        dev = {split: reader(folder / name) for split, name in layout.dev}
        train_path = folder / layout.train
        if train_path.is_file():
            return TaskData(spec, reader(train_path), dev, f"{folder} ({layout.names})", {"layout": layout.about})
        # Dev files alone serve inference; fine-tuning asks for the training file (reference.plugin).
        return TaskData(spec, [], dev, f"{folder} ({' + '.join(n for _, n in layout.dev)}; no {layout.train})",
                        {"layout": layout.about, "train_missing": str(train_path)})
    present = sorted(p.name for p in folder.iterdir() if p.is_file())
    dev_names = sorted({name for layout in LAYOUTS[spec.name] for _, name in layout.dev})
    looked = f"no dev file (looked for {', '.join(dev_names)})"
    if not present:
        return f"is empty: {looked}"
    return f"has {', '.join(present[:8])}{' ...' if len(present) > 8 else ''} but {looked}"


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


def offline_env() -> str | None:
    """The environment variable that puts the Hugging Face libraries offline, when one does."""
    for name in OFFLINE_ENV:
        if os.environ.get(name, "").strip().upper() in _TRUE:
            return f"{name}={os.environ[name]}"
    return None


def hub_unreachable(timeout_s: float = 3.0) -> str | None:
    """Why the Hugging Face hub cannot be reached (a TCP connection to $HF_ENDPOINT), or None when it can.

    Asked once, before `datasets.load_dataset`, which otherwise retries an unreachable hub for ~50 s.
    """
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host = parts.hostname or "huggingface.co"
    port = parts.port or (80 if parts.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except OSError as exc:
        return f"{host}:{port} cannot be reached ({type(exc).__name__}: {exc})"


def _subset(examples: list[Example], limit: int | None, rng: random.Random) -> list[Example]:
    """A seeded sample of `limit` examples in their original order (all of them when limit is None)."""
    if limit is None or limit >= len(examples):
        return examples
    keep = sorted(rng.sample(range(len(examples)), limit))
    return [examples[i] for i in keep]


def load_task(name: str, data_dir: str | os.PathLike[str] | None = None, *, seed: int = 0,
              max_train: int | None = None, max_dev: int | None = None) -> TaskData:
    """Load task `name`; `max_train` / `max_dev` (per dev split) take a seeded sample for short runs.

    With a folder (`data_dir`, else $PYTEST_ENERGY_DATA_DIR) the task is read from it and nowhere else (see
    `candidate_folders` and LAYOUTS; dev files alone give a task with no training examples). Without one,
    through `datasets.load_dataset` (the local cache when HF_DATASETS_OFFLINE / HF_HUB_OFFLINE is set; the
    hub is asked only when it can be reached). `synthetic` is generated and needs neither.
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


def _load_call(path: str, config: str | None) -> str:
    """The `datasets.load_dataset(...)` call for a hub dataset, as a user would type it."""
    return f"datasets.load_dataset({path!r}" + (f", {config!r})" if config else ")")


def _how_to_provide(spec: TaskSpec) -> str:
    layouts = "\n".join(f"    {layout.names}" + (f"   ({layout.about})" if layout.about else "")
                        for layout in LAYOUTS[spec.name])
    call = _load_call(*spec.hub[0])
    return (f"Provide it as a folder: set ${DATA_DIR_ENV} (or --energy-data-dir / data_dir=) to a directory "
            f"holding {spec.folder}/ (other spellings such as {', '.join(k + '/' for k in FOLDER_KEYS[spec.name])} "
            f"are found too) with one of\n{layouts}\n  ({spec.layout}; the dev files alone serve inference "
            f"benchmarks, fine-tuning needs the training file too).\n"
            f"Or, without a data folder, through the datasets cache: run {call} once with internet access "
            "(cache under $HF_HOME), then run offline with HF_DATASETS_OFFLINE=1.")


def _load_real(spec: TaskSpec, data_dir: str | os.PathLike[str] | None) -> TaskData:
    tried: list[str] = []
    last: BaseException | None = None
    given = "data_dir argument" if data_dir is not None else f"${DATA_DIR_ENV}"
    root = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV) or None

    def fail() -> DataError:
        return DataError(f"cannot load task {spec.name!r} ({spec.title}). Tried:\n  - " + "\n  - ".join(tried)
                         + "\n" + _how_to_provide(spec))

    if root is not None:
        # A folder was named: the data is there or the user has to fix it. Never fall back to the hub, which
        # would spend a minute retrying and could load another copy than the one the user pointed at.
        for folder in candidate_folders(spec, Path(root).expanduser()):
            try:
                found = _load_folder(spec, folder)
            except (OSError, UnicodeDecodeError) as exc:
                raise DataError(f"cannot read {spec.title} from {folder}: {exc}") from exc
            if isinstance(found, TaskData):
                return found
            tried.append(f"folder {folder}: {found}")
        tried.append(f"datasets.load_dataset: not tried, because a data folder was given ({given})")
        raise fail()
    tried.append(f"local folder: none given (no data_dir argument, ${DATA_DIR_ENV} unset)")
    try:
        import datasets  # noqa: F401
    except ImportError as exc:
        tried.append(f"datasets.load_dataset: the 'datasets' package is not installed ({exc})")
        raise fail() from exc
    offline = offline_env()
    if offline is None:
        unreachable = hub_unreachable()
        if unreachable is not None:
            tried.append(f"datasets.load_dataset: not tried, the hub is unreachable: {unreachable}. With the data "
                         "set in your datasets cache, set HF_DATASETS_OFFLINE=1 to read it from there")
            raise fail()
    for path, config in spec.hub:
        call = _load_call(path, config)
        try:
            return _load_hub(spec, path, config)
        except Exception as exc:  # noqa: BLE001 - not cached, renamed...: report them all below
            first_line = (str(exc).strip().splitlines() or [""])[0][:300]
            where = f" ({offline}: the local cache only)" if offline else ""
            tried.append(f"{call}{where}: {type(exc).__name__}: {first_line}")
            last = exc
    raise fail() from last
