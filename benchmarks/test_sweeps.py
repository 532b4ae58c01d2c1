"""Energy-accuracy sweeps as energy benchmarks: max sequence length, precision, depth, batch size (the axes of the
energy-accuracy trade-off study of BERT-base on SST-2, see docs/protocols.md).

    pytest benchmarks/test_sweeps.py --energy                 # embedded default: ~1.5 min on 2 CPU cores
    pytest benchmarks/test_sweeps.py --energy --energy-task sst2 --energy-data-dir /data/glue

The task and model are the reference suite's (pytest_energy.reference.plugin: --energy-task, --energy-model,
--energy-data-dir), and so is the model: fine-tuned to the task's cut-off once per session, unmetered
(the `finetuned` fixture, shared with test_inference.py). Each configuration is one benchmark: the
inference protocol over the first --energy-sweep-n (default 200) dev examples, measured by
`pytest_energy.protocols.sweeps.sweep_point` through `energy.inference`, with its sweep point in
`energy.extra_info["sweep_point"]`. The base configuration (128 tokens, fp32, full depth, batch 1) is measured
once, on the max_length axis. At the end of the session the points, one frontier PNG per axis and an HTML page
are written to --energy-report-dir (default energy-report/)/<task>/. torch runs with --energy-torch-threads
(default 1: on a shared machine a preempted OpenMP thread leaves the other spinning at the barrier, inflating
time and CPU time alike; docs/protocols.md has the figures).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from pytest_energy.protocols.sweeps import SWEEP_BASE_KEY, SWEEP_POINT_KEY, SweepPoint, sweep_point
from pytest_energy.reference.plugin import about_run, choose, reference_settings
from pytest_energy.reference.sweep_report import write_sweep_report

WARMUP = 5
BASE_MAX_LENGTH = 128
# Depth as sixths of the full encoder, so the same ids fit MiniLM (6 layers: 1..5) and BERT-base (2..10).
DEPTH_SIXTHS = (1, 2, 3, 4, 5)
# fp32, full depth and batch 1 are the base configuration, measured on the max_length axis.
OTHER_AXES: dict[str, tuple] = {"precision": ("bf16", "fp16"), "depth": DEPTH_SIXTHS, "batch_size": (8, 32)}
# The trade-off study's lengths; generated sentences are up to 25 word pieces (14 at the median), so 8, 12
# and 16 show where truncation starts to cost accuracy.
MAX_LENGTHS = {"synthetic": (8, 12, 16, 32, 64, 128)}
DEFAULT_MAX_LENGTHS = (16, 32, 48, 64, 96, 128)
# CPUs without native fp16 kernels run it emulated (measurements in docs/protocols.md): skip such a
# precision with that reason rather than let it dominate the run. On a GPU every precision that runs is measured.
CPU_MAX_SLOWDOWN = 2.0


@dataclass
class Subject:
    """The fine-tuned classifier, its dev examples and the predict builder the sweep uses."""

    task: str  # names the report's sub-folder
    builder: Any
    examples: list
    labels: list
    full_depth: int
    about: dict[str, Any]
    points: list[SweepPoint] = field(default_factory=list)

    @property
    def base(self) -> dict[str, Any]:
        return {"max_length": BASE_MAX_LENGTH, "precision": "fp32", "depth": self.full_depth, "batch_size": 1}


@pytest.fixture(scope="session")
def sweep_subject(request, torch_threads, bench, full_task_data, finetuned) -> Iterator[Subject]:
    """The sweep's subject; when the session ends its points become the sweep report."""
    from pytest_energy.reference.models import HFPredictBuilder, encoder_depth

    if full_task_data.spec.kind != "sequence":
        pytest.skip(f"sweeps need a sequence classification task; {full_task_data.spec.title} tags tokens")
    model, tokenizer, trained = finetuned
    on_gpu = next(model.parameters()).device.type == "cuda"
    builder = HFPredictBuilder(model, tokenizer, max_slowdown=None if on_gpu else CPU_MAX_SLOWDOWN)
    split, examples = next(iter(full_task_data.dev.items()))
    settings = reference_settings(request.config)
    examples = examples[:settings.sweep_n]
    about = {**about_run(bench, full_task_data), **trained, "sweep split": split,
             "dev examples per point": len(examples), "warmup calls per point": WARMUP,
             "padding": "to max_length (cost follows the configured length, as in the trade-off study)",
             "torch threads": torch_threads}
    subject = Subject(bench.task, builder, examples, [e.label for e in examples], encoder_depth(model), about)
    yield subject
    if not subject.points:
        return
    paths = write_sweep_report(
        subject.points, settings.report_dir / subject.task, base=subject.base,
        title=f"Energy-accuracy sweeps: {about['model']} on {about['task']}", about=about)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        # Session teardown runs under output capture; the path is for the user's eyes.
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\nsweep report: {paths[-1]}")


def _params(task: str) -> list:
    axes = {"max_length": MAX_LENGTHS.get(task, DEFAULT_MAX_LENGTHS), **OTHER_AXES}
    out = []
    for axis, values in axes.items():
        for value in values:
            label = f"{value}of6" if axis == "depth" else value
            out.append(pytest.param(axis, value, id=f"{axis}-{label}",
                                    marks=pytest.mark.energy(group=f"sweep {task}: {axis}", rounds=1)))
    return out


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # The values depend on the task chosen on the command line, known only at collection.
    if metafunc.function is test_sweep:
        metafunc.parametrize(("axis", "value"), _params(choose(metafunc.config).task))


def test_sweep(energy, sweep_subject, axis, value):
    subject = sweep_subject
    if axis == "depth":
        value = max(1, round(value * subject.full_depth / 6))
    point = sweep_point(energy.inference, subject.builder, axis, value, {**subject.base, axis: value},
                        subject.examples, labels=subject.labels, n=len(subject.examples), warmup=WARMUP)
    subject.points.append(point)
    if point.skipped_reason is not None:
        pytest.skip(f"{axis}={value}: {point.skipped_reason}")
    energy.extra_info[SWEEP_POINT_KEY] = point.to_dict()
    energy.extra_info[SWEEP_BASE_KEY] = subject.base  # lets --energy-html put the base point on every axis
    energy.extra_info.update(subject.about)
    assert point.accuracy is not None and 0.0 <= point.accuracy <= 1.0
