"""save_weights / load_weights: the fine-tuned model an A/B side keeps for its later processes."""

from __future__ import annotations

import pytest

from pytest_energy.reference import models
from pytest_energy.reference.models import load_weights, save_weights

torch = pytest.importorskip("torch")


def _model(seed: int):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))


def test_weights_come_back_exactly_with_what_produced_them(tmp_path):
    trained, fresh = _model(1), _model(2)
    save_weights(trained, tmp_path / "m", {"finetuned_steps": 40, "finetuned_dev_score": 0.91})
    assert load_weights(fresh, tmp_path / "m") == {"finetuned_steps": 40, "finetuned_dev_score": 0.91}
    x = torch.randn(5, 4)
    assert torch.equal(fresh(x), trained(x))


def test_nothing_saved_is_none_and_leaves_the_model_alone(tmp_path):
    model = _model(3)
    before = [p.clone() for p in model.parameters()]
    assert load_weights(model, tmp_path / "absent") is None
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_a_second_save_keeps_the_first(tmp_path):
    save_weights(_model(1), tmp_path / "m", {"by": "first"})
    save_weights(_model(2), tmp_path / "m", {"by": "second"})
    assert load_weights(_model(3), tmp_path / "m") == {"by": "first"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no scratch folder left behind


def test_a_save_that_dies_leaves_nothing_to_load(tmp_path, monkeypatch):
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(models.json, "dumps", lambda *a, **k: full_disk())
    with pytest.raises(OSError, match="No space"):
        save_weights(_model(1), tmp_path / "m", {"by": "first"})
    assert list(tmp_path.iterdir()) == [] and load_weights(_model(2), tmp_path / "m") is None


def test_weights_of_another_architecture_are_an_error_not_a_partial_load(tmp_path):
    save_weights(_model(1), tmp_path / "m", {})
    with pytest.raises(RuntimeError, match="size mismatch|Missing key|Unexpected key"):
        load_weights(torch.nn.Sequential(torch.nn.Linear(4, 5)), tmp_path / "m")
