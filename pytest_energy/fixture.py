"""The object behind the `energy` fixture. It is handed a Measurer and a TestRecord, never the session."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .config import TestSettings
from .errors import UsageError
from .measure import Measurer, calibrate
from .records import Better, Kind, TestRecord, Window


RESERVED_LABELS = ("inference", "finetune")  # the protocols' metric prefixes


class EnergyFixture:
    """Meter code inside a test.

    - ``with energy.measure("train") as w: ...`` meters a block; ``w.energy_j``, ``w.duration_s``,
      ``w.devices`` and ``w.method`` are filled when it exits. Each label is a metric of its own
      (``train.energy_j``); repeating a label adds samples.
    - ``energy(fn, *args, **kwargs)`` calibrates like pytest-benchmark: enough calls per round that a
      round lasts ``--energy-min-round-s`` (default ten update periods of the meter), then ``warmup``
      unmetered rounds and ``rounds`` metered ones. Time and energy are reported per call; the calls per
      round are in ``extra_info["calls_per_round"]``. Returns fn's last result.
    - ``energy.finetune_to_cutoff(...)``, ``energy.trainer_callback(...)`` and ``energy.inference(...)``
      run the HULK protocols; ``energy.record_metric(...)`` records a figure of your own.
    """

    def __init__(self, measurer: Measurer, record: TestRecord, settings: TestSettings, *,
                 disabled: bool = False) -> None:
        self._measurer = measurer
        self._record = record
        self._settings = settings
        self._called = False
        # --energy-disable: a smoke run. fn runs once, windows are unmetered (energy NaN), nothing is kept.
        self.disabled = disabled
        self._probe_due = False  # a window closed since the last probe: `close` takes one more

    def _probe(self) -> None:
        """The calibration probe (pytest_energy.measure.probe) before each round and after the last one: the gate
        divides this test's wall-clock metrics by their geometric mean. Nothing when the session does not
        probe."""
        self._probe_due = False
        if self._measurer.probing and not self.disabled:
            seconds = self._measurer.take_probe()
            if seconds is not None:
                self._record.probe_s.append(seconds)

    def close(self) -> None:
        """The test body has finished: take the probe that follows its last window."""
        if self._probe_due:
            self._probe()

    @property
    def extra_info(self) -> dict[str, Any]:
        """Free-form facts about the benchmark, stored with its results (JSON-serialisable values)."""
        return self._record.extra_info

    @property
    def meter_name(self) -> str:
        """The meter this session uses: "nvml", "rapl" or "estimate"."""
        return self._measurer.meter.name

    # -- windows -----------------------------------------------------------------------------
    def _keep(self, window: Window, prefix: str) -> None:
        self._record.windows.append(window)
        self._record.metric(f"{prefix}duration_s", "s").add(window.duration_s)
        self._record.metric(f"{prefix}energy_j", "J", method=window.method).add(window.energy_j)

    @contextlib.contextmanager
    def measure(self, label: str = "default", *, record: bool = True) -> Iterator[Window]:
        """Meter the block. With ``record=False`` the window is only returned, not kept as metrics
        (e.g. a calibration loop whose length changes from run to run)."""
        if not label or not isinstance(label, str):
            raise UsageError(f"energy.measure() needs a non-empty string label, got {label!r}")
        if label in RESERVED_LABELS:
            # Its metrics would be named like the protocol's and their samples merged with them.
            raise UsageError(f"energy.measure({label!r}): the label is reserved for energy.{label}(...)'s "
                             "metrics; choose another label")
        if record and not self._record.windows and not self._probe_due:
            self._probe()  # before the test's first window; `close` probes after its last
        with self._measurer.measure(label) as window:
            yield window
        if record:
            self._keep(window, f"{label}.")
            self._probe_due = True

    def __call__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self.pedantic(fn, args=args, kwargs=kwargs, iterations=None)

    def pedantic(self, fn: Callable[..., Any], args: tuple = (), kwargs: dict | None = None, *,
                 rounds: int | None = None, warmup: int | None = None, iterations: int | None = 1) -> Any:
        """``energy(fn, ...)`` with explicit rounds, warmup rounds and calls per round (`iterations`, as in
        pytest-benchmark's pedantic: 1 by default, exactly `warmup + rounds` calls; None calibrates)."""
        if self._called:
            # One rounds-series per test keeps "energy_j" one unambiguous metric in baselines.
            raise UsageError("energy(fn) can be called once per test; use energy.measure(label) "
                             "for further windows")
        if iterations is not None and (isinstance(iterations, bool) or not isinstance(iterations, int)
                                       or iterations < 1):
            raise UsageError(f"energy.pedantic(): iterations must be an integer >= 1 or None, got {iterations!r}")
        self._called = True
        calls = iterations
        if self.disabled:  # a smoke run: fn once
            rounds, warmup, calls = 1, 0, 1
        if calls is None:
            min_round_s = self._settings.min_round_s
            if min_round_s is None:
                min_round_s = self._measurer.min_round_s()
            calls = calibrate(fn, args, kwargs, min_round_s=min_round_s)
        result, windows = self._measurer.run(
            fn, args, kwargs,
            rounds=self._settings.rounds if rounds is None else rounds,
            warmup=self._settings.warmup if warmup is None else warmup, calls=calls, between=self._probe)
        for w in windows:
            self._keep(w, "")
        self._record.extra_info["calls_per_round"] = calls
        return result

    # -- figures of your own -----------------------------------------------------------------
    def record_metric(self, name: str, unit: str, samples: float | Sequence[float], *, better: str = "lower",
                      kind: str = "measured", method: str | None = None) -> None:
        """Record a figure of your own, compared with its baseline like the built-in ones.

        `better` is "lower" or "higher"; `kind` is "measured" (noisy: compared with statistics) or
        "deterministic" (compared with a plain tolerance). Samples must be finite numbers; calling again
        with the same name adds samples.
        """
        if not name or not isinstance(name, str):
            raise UsageError(f"record_metric() needs a non-empty string name, got {name!r}")
        if name.split(".", 1)[0] in RESERVED_LABELS:
            raise UsageError(f"record_metric({name!r}): names starting with "
                             f"{' or '.join(p + '.' for p in RESERVED_LABELS)} are the protocols' own")
        try:
            better_, kind_ = Better(better), Kind(kind)
        except ValueError:
            raise UsageError(f"record_metric({name!r}): better must be 'lower' or 'higher' and kind 'measured' or "
                             f"'deterministic', got better={better!r}, kind={kind!r}") from None
        values = [samples] if isinstance(samples, (int, float)) else list(samples)
        bad = [v for v in values if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)]
        if not values or bad:
            raise UsageError(f"record_metric({name!r}): samples must be finite numbers, got {samples!r}")
        metric = self._record.metric(name, unit, better=better_, kind=kind_, method=method)
        if (metric.unit, metric.better, metric.kind) != (unit, better_, kind_):
            raise UsageError(f"record_metric({name!r}): already recorded with unit {metric.unit!r}, better "
                             f"{metric.better!r}, kind {metric.kind!r}")
        for v in values:
            metric.add(v)

    # -- protocols ---------------------------------------------------------------------------
    def _keep_protocol(self, result: Any) -> Any:
        for metric in result.metrics():
            kept = self._record.metric(metric.name, metric.unit, better=metric.better, kind=metric.kind,
                                       method=metric.method)
            kept.samples.extend(metric.samples)
        self._record.protocols.append(result)
        return result

    def finetune_to_cutoff(self, train_step: Callable[[int], Any], evaluate: Callable[[], float], *,
                           cutoff: float, eval_every: int, max_steps: int, higher_is_better: bool = True,
                           **kwargs: Any) -> Any:
        """HULK's fine-tuning protocol; see pytest_energy.protocols.finetune.finetune_to_cutoff.

        One call is one run, and `--energy-rounds` does not repeat it: a second run needs a fresh model
        (the protocol does not own how the model is built, `train_step` closes over it) and costs a whole
        fine-tune. Replicates are whole runs: call this again with a fresh model and train_step, and the
        samples accumulate. Run to run, the baseline's history gives the spread (docs/statistics.md), so one
        run per CI run is enough once three baseline runs are saved.
        """
        from .protocols.finetune import finetune_to_cutoff

        self._probe()
        result = finetune_to_cutoff(self._measurer, train_step, evaluate, cutoff=cutoff, eval_every=eval_every,
                                    max_steps=max_steps, higher_is_better=higher_is_better, **kwargs)
        self._probe()
        return self._keep_protocol(result)

    def trainer_callback(self, *, cutoff: float, metric_name: str = "eval_accuracy", higher_is_better: bool = True,
                         flops_per_step: int | None = None) -> Any:
        """A `transformers.TrainerCallback` for HULK's fine-tuning protocol on a Hugging Face `Trainer`.

        Training stops at the first evaluation whose `metric_name` reaches `cutoff`; when `train()` returns,
        the result is recorded exactly like `finetune_to_cutoff`'s (row, JSON, baseline, gate) and is also
        the callback's `.result`. See pytest_energy.protocols.finetune.make_trainer_callback.
        """
        from .protocols.finetune import make_trainer_callback

        self._probe()
        self._probe_due = True  # training runs after this returns: `close` probes when the test ends
        return make_trainer_callback(self._measurer, cutoff, metric_name=metric_name,
                                     higher_is_better=higher_is_better, flops_per_step=flops_per_step,
                                     on_result=self._keep_protocol)

    def inference(self, predict: Callable[[list], Any], examples: Any, *, rounds: int | None = None,
                  **kwargs: Any) -> Any:
        """HULK's inference protocol; see pytest_energy.protocols.inference.inference.

        The pass over the examples is repeated `rounds` times (default: the marker's ``rounds=``, else
        ``--energy-rounds``); each pass is one sample of every metric, the warmup calls run once before the
        first pass.
        """
        from .protocols.inference import inference

        rounds = 1 if self.disabled else self._settings.rounds if rounds is None else rounds
        return self._keep_protocol(inference(self._measurer, predict, examples, rounds=rounds,
                                             between=self._probe, **kwargs))
