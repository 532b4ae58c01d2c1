from __future__ import annotations

import functools
import math

import pytest

from pytest_energy.errors import UsageError
from pytest_energy.measure import Measurer
from pytest_energy.meters.fake import stepping_meter
from pytest_energy.errors import Unsupported
from pytest_energy.protocols.inference import inference
from pytest_energy.protocols.sweeps import SweepPoint, complete_axes, sweep_point
from pytest_energy.reference.models import (
    HFPredictBuilder,
    encoder_depth,
    precision_problem,
    to_precision,
    truncate_encoder,
)
from pytest_energy.reference.tasks import TextExample

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "movie", "a", "short", "probe", "sentence"]


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tiny(torch, tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    vocab = tmp_path_factory.mktemp("tok") / "vocab.txt"
    vocab.write_text("\n".join(VOCAB), encoding="utf-8")
    tokenizer = transformers.BertTokenizer(str(vocab))
    config = transformers.BertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=4,
                                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=64,
                                     num_labels=2)
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config).eval()
    return model, tokenizer


def test_truncate_encoder_keeps_first_layers_on_a_copy(tiny, torch):
    model, tokenizer = tiny
    short = truncate_encoder(model, 2)
    assert encoder_depth(model) == 4 and model.config.num_hidden_layers == 4  # original untouched
    assert encoder_depth(short) == 2 and short.config.num_hidden_layers == 2
    for kept, orig in zip(short.bert.encoder.layer, model.bert.encoder.layer[:2]):
        for a, b in zip(kept.parameters(), orig.parameters()):
            assert torch.equal(a, b) and a.data_ptr() != b.data_ptr()
    enc = tokenizer(["good movie"], return_tensors="pt")
    with torch.inference_mode():
        assert short(**enc).logits.shape == (1, 2)
    # Full depth truncation is the same function as the original model.
    full = truncate_encoder(model, 4)
    with torch.inference_mode():
        assert torch.allclose(full(**enc).logits, model(**enc).logits)


@pytest.mark.parametrize("layers", [0, 5, 2.0, True])
def test_truncate_encoder_rejects_bad_depth(tiny, layers):
    with pytest.raises(UsageError, match="1..4"):
        truncate_encoder(tiny[0], layers)


def test_unknown_architecture_is_a_clear_error(torch):
    class NotBert(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.h = torch.nn.ModuleList([torch.nn.Linear(2, 2)])

    with pytest.raises(UsageError, match="does not know NotBert"):
        truncate_encoder(NotBert(), 1)


def test_precision_detection_runs_a_forward_pass(tiny, torch):
    model, tokenizer = tiny
    enc = tokenizer(["good movie"], return_tensors="pt")
    assert to_precision(model, "fp32") is model
    bf16 = to_precision(model, "bf16")
    assert next(bf16.parameters()).dtype == torch.bfloat16 and next(model.parameters()).dtype == torch.float32
    assert precision_problem(model, enc) is None

    class Broken(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float16))

        def forward(self, **inputs):
            raise RuntimeError('"addmm_impl_cpu_" not implemented for \'Half\'\nmore detail')

    reason = precision_problem(Broken(), enc)
    assert reason is not None and "torch.float16" in reason and "not implemented" in reason
    assert "more detail" not in reason

    class NaNs(Broken):
        def forward(self, **inputs):
            return (torch.full((1, 2), math.nan),)

    assert "non-finite" in precision_problem(NaNs(), enc)
    with pytest.raises(UsageError, match="unknown precision"):
        to_precision(model, "int3")


def test_tiny_sweep_with_fake_meter_records_every_point(tiny):
    model, tokenizer = tiny
    builder = HFPredictBuilder(model, tokenizer)
    examples = [TextExample(s, y) for s, y in [("good movie", 1), ("bad movie", 0), ("a good", 1),
                                                ("a bad short movie", 0)] * 3]
    labels = [e.label for e in examples]
    measurer = Measurer(stepping_meter(1.0, 2.0), sync=lambda: None)

    def refuse_fp16(settings):
        if settings["precision"] == "fp16":
            raise Unsupported("fp16 has no kernels here (test)")
        return builder(settings)

    # One axis at a time, the others at the base configuration: how benchmarks/test_sweeps.py sweeps.
    base = {"max_length": 16, "precision": "fp32", "depth": None, "batch_size": 1}
    run_inference = functools.partial(inference, measurer)
    points = [sweep_point(run_inference, refuse_fp16, axis, value, {**base, axis: value}, examples, labels=labels,
                          n=10, warmup=1)
              for axis, values in (("max_length", [8, 16]), ("precision", ["fp32", "fp16", "bf16"]),
                                   ("depth", [1, 4]), ("batch_size", [1, 4]))
              for value in values]
    assert [(p.axis, p.value) for p in points] == [
        ("max_length", 8), ("max_length", 16), ("precision", "fp32"), ("precision", "fp16"),
        ("precision", "bf16"), ("depth", 1), ("depth", 4), ("batch_size", 1), ("batch_size", 4)]
    skipped = [p for p in points if not p.measured]
    assert [(p.value, p.skipped_reason) for p in skipped] == [("fp16", "fp16 has no kernels here (test)")]
    for p in points:
        if p.measured:
            # One window = two reads = 2 J over 10 examples.
            assert p.j_per_example == pytest.approx(0.2)
            assert p.n_examples == 10 and p.method == "estimate"
            assert 0.0 <= p.accuracy <= 1.0
            assert p.ms_per_example > 0 and p.peak_memory_bytes > 0
    by = {(p.axis, p.value): p for p in points}
    assert by[("max_length", 8)].tokens == 80 and by[("max_length", 16)].tokens == 160  # padded to max_length
    assert SweepPoint.from_dict(by[("depth", 1)].to_dict()) == by[("depth", 1)]


def test_builder_reuses_one_model_variant_per_depth_and_precision(tiny):
    model, tokenizer = tiny
    builder = HFPredictBuilder(model, tokenizer, padding="longest")
    first = builder.variant(2, "fp32")
    assert builder.variant(2, "fp32") is first
    assert builder.variant(None, "fp32") is model
    out = builder({"max_length": 16, "precision": "fp32", "depth": 2, "batch_size": 2})(["good movie", "bad"])
    assert out.tokens == 2 * 4  # padded to the longest: [CLS] good movie [SEP]
    with pytest.raises(UsageError, match="exceeds the model's 64 position"):
        builder({"max_length": 128})
    with pytest.raises(UsageError, match="padding"):
        HFPredictBuilder(model, tokenizer, padding="nope")


def test_max_slowdown_skips_emulated_precisions_with_a_reason(tiny):
    model, tokenizer = tiny
    strict = HFPredictBuilder(model, tokenizer, max_slowdown=0.0)  # any cast model is "too slow"
    strict({"max_length": 16, "precision": "fp32"})  # fp32 is the reference: never probed
    with pytest.raises(Unsupported, match=r"bf16 forward pass is .*x slower than fp32 .*max_slowdown=0"):
        strict({"max_length": 16, "precision": "bf16"})
    HFPredictBuilder(model, tokenizer, max_slowdown=1e9)({"max_length": 16, "precision": "bf16"})


def test_complete_axes_adds_the_base_point_to_axes_that_lack_it():
    base = {"max_length": 128, "precision": "fp32", "depth": 6, "batch_size": 1}
    ref = SweepPoint("max_length", 128, dict(base), accuracy=0.9, j_per_example=1.0, ms_per_example=5.0,
                     method="estimate", n_examples=10)
    short = SweepPoint("max_length", 16, {**base, "max_length": 16}, accuracy=0.8, j_per_example=0.2,
                       ms_per_example=1.0, method="estimate", n_examples=10)
    bf16 = SweepPoint("precision", "bf16", {**base, "precision": "bf16"}, accuracy=0.9, j_per_example=0.5,
                      ms_per_example=2.0, method="estimate", n_examples=10)
    fp16 = SweepPoint("precision", "fp16", {**base, "precision": "fp16"}, skipped_reason="emulated")
    grid = SweepPoint("precision+max_length", "bf16/16", {**base, "precision": "bf16", "max_length": 16},
                      accuracy=0.8, j_per_example=0.1, ms_per_example=1.0, method="estimate", n_examples=10)
    done = complete_axes([ref, short, bf16, fp16, grid], base)
    assert [(p.axis, p.value) for p in done] == [
        ("max_length", 16), ("max_length", 128), ("precision", "fp32"), ("precision", "fp16"),
        ("precision", "bf16"), ("precision+max_length", "bf16/16")]
    copied = done[2]
    assert copied.j_per_example == 1.0 and copied.settings == base and ref.axis == "max_length"
    # No reference measured: nothing to add, only ordering.
    assert complete_axes([bf16, short], base) == [bf16, short]


@pytest.mark.parametrize("family", ["distilbert", "roberta", "electra"])
def test_truncation_knows_other_bert_family_layouts(torch, family):
    transformers = pytest.importorskip("transformers")
    small = dict(vocab_size=20, max_position_embeddings=40, num_labels=2)
    if family == "distilbert":
        config = transformers.DistilBertConfig(dim=16, n_layers=3, n_heads=2, hidden_dim=32, **small)
        model = transformers.DistilBertForSequenceClassification(config)
        count_attr = "n_layers"
    else:
        cfg_cls = transformers.RobertaConfig if family == "roberta" else transformers.ElectraConfig
        config = cfg_cls(hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32, **small)
        model = (transformers.RobertaForSequenceClassification if family == "roberta"
                 else transformers.ElectraForSequenceClassification)(config)
        count_attr = "num_hidden_layers"
    short = truncate_encoder(model.eval(), 1)
    assert encoder_depth(short) == 1 and getattr(short.config, count_attr) == 1
    with torch.inference_mode():
        assert short(input_ids=torch.tensor([[0, 5, 6, 2]])).logits.shape == (1, 2)
