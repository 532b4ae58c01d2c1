"""Benchmark protocols: fine-tune to a quality cut-off (HULK/DAWNBench/MLPerf) and per-example inference.

Nothing here imports pytest; torch and transformers are imported only inside the functions that need them.
The inference function is `pytest_energy.protocols.inference.inference`; it is not re-exported here, where
its name would shadow the `inference` submodule.
"""

from __future__ import annotations

from .finetune import CurvePoint, FinetuneResult, finetune_to_cutoff, make_trainer_callback
from .inference import InferenceResult, PredictOutput

__all__ = [
    "CurvePoint",
    "FinetuneResult",
    "InferenceResult",
    "PredictOutput",
    "finetune_to_cutoff",
    "make_trainer_callback",
]
