"""pytest-energy: meter the energy of ML training and inference, and gate CI on it.

The public names are exported here; everything else is an implementation detail. Importing this package
imports nothing heavy (no torch, pynvml, transformers).
"""

__version__ = "0.1.0"  # before the imports: modules imported below read it

from .errors import (BaselineError, DataError, EnergyError, EnergyWarning, MeasurementError, MeterUnavailable,
                     ReportError, ShortWindowWarning, UsageError)
from .records import Method, Metric, TestRecord, VerdictKind, Window


def __getattr__(name: str):
    # EnergyFixture brings the measurement layer and the option table: imported on first use, so that pytest
    # loading the plugin (which imports this package) pays nothing for it in a run without --energy.
    if name == "EnergyFixture":
        from .fixture import EnergyFixture

        return EnergyFixture
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BaselineError", "DataError", "EnergyError", "EnergyFixture", "EnergyWarning", "MeasurementError", "Method",
    "MeterUnavailable", "Metric", "ReportError", "ShortWindowWarning", "TestRecord", "UsageError", "VerdictKind",
    "Window", "__version__",
]
