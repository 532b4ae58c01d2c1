"""pytest-energy: meter the energy of ML training and inference, and gate CI on it.

The public names are exported here; everything else is an implementation detail. Importing this package
imports nothing heavy (no torch, pynvml, transformers).
"""

__version__ = "0.1.0"  # before the imports: modules imported below read it

from .errors import (BaselineError, DataError, EnergyError, EnergyWarning, MeasurementError, MeterUnavailable,
                     ReportError, ShortWindowWarning, UsageError)
from .fixture import EnergyFixture
from .records import Method, Metric, TestRecord, VerdictKind, Window

__all__ = [
    "BaselineError", "DataError", "EnergyError", "EnergyFixture", "EnergyWarning", "MeasurementError", "Method",
    "MeterUnavailable", "Metric", "ReportError", "ShortWindowWarning", "TestRecord", "UsageError", "VerdictKind",
    "Window", "__version__",
]
