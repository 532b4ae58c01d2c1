"""The object behind the `energy` fixture. It gets a Measurer and a TestRecord, never the session."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from .errors import UsageError
from .measure import Measurer
from .results import TestRecord, Window
from .settings import TestSettings


class EnergyFixture:
    """Meter code inside a test.

    - ``with energy.measure("train") as w: ...`` meters a block; ``w.energy_j``, ``w.duration_s``,
      ``w.devices`` and ``w.method`` are filled when it exits. Each label is a metric of its own
      (``train.energy_j``); repeating a label adds samples.
    - ``energy(fn, *args, **kwargs)`` runs ``fn`` ``warmup`` times unmetered, then ``rounds`` times
      metered, keeps every round, and returns fn's last result.
    - ``energy.finetune_to_cutoff(...)`` and ``energy.inference(...)`` run the HULK protocols.
    """

    def __init__(self, measurer: Measurer, record: TestRecord, settings: TestSettings) -> None:
        self.measurer = measurer
        self.record = record
        self.settings = settings
        self.extra_info: dict[str, Any] = record.extra_info
        self._called = False

    # -- windows -----------------------------------------------------------------------------
    def _keep(self, window: Window, prefix: str) -> None:
        self.record.windows.append(window)
        self.record.metric(f"{prefix}duration_s", "s").add(window.duration_s)
        self.record.metric(f"{prefix}energy_j", "J", method=window.method).add(window.energy_j)

    @contextlib.contextmanager
    def measure(self, label: str = "default") -> Iterator[Window]:
        if not label or not isinstance(label, str):
            raise UsageError(f"energy.measure() needs a non-empty string label, got {label!r}")
        with self.measurer.measure(label) as window:
            yield window
        self._keep(window, f"{label}.")

    def __call__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self.pedantic(fn, args=args, kwargs=kwargs)

    def pedantic(self, fn: Callable[..., Any], args: tuple = (), kwargs: dict | None = None, *,
                 rounds: int | None = None, warmup: int | None = None) -> Any:
        """Like ``energy(fn, ...)`` with explicit rounds/warmup for this call."""
        if self._called:
            # One rounds-series per test keeps "energy_j" one unambiguous metric in baselines.
            raise UsageError("energy(fn) can be called once per test; use energy.measure(label) "
                             "for further windows")
        self._called = True
        result, windows = self.measurer.run(
            fn, args, kwargs,
            rounds=self.settings.rounds if rounds is None else rounds,
            warmup=self.settings.warmup if warmup is None else warmup)
        for w in windows:
            self._keep(w, "")
        return result

    # -- protocols ---------------------------------------------------------------------------
    def _keep_protocol(self, result: Any) -> Any:
        for metric in result.metrics():
            kept = self.record.metric(metric.name, metric.unit, better=metric.better, kind=metric.kind,
                                      method=metric.method)
            kept.samples.extend(metric.samples)
        self.record.protocols.append(result.to_dict())
        return result

    def finetune_to_cutoff(self, train_step: Callable[[int], Any], evaluate: Callable[[], float], *,
                           cutoff: float, eval_every: int, max_steps: int, higher_is_better: bool = True,
                           **kwargs: Any) -> Any:
        """HULK's fine-tuning protocol; see pytest_energy.protocols.finetune.finetune_to_cutoff."""
        from .protocols.finetune import finetune_to_cutoff

        return self._keep_protocol(finetune_to_cutoff(
            self.measurer, train_step, evaluate, cutoff=cutoff, eval_every=eval_every,
            max_steps=max_steps, higher_is_better=higher_is_better, **kwargs))

    def inference(self, predict: Callable[[list], Any], examples: Any, **kwargs: Any) -> Any:
        """HULK's inference protocol; see pytest_energy.protocols.inference.inference."""
        from .protocols.inference import inference

        return self._keep_protocol(inference(self.measurer, predict, examples, **kwargs))
