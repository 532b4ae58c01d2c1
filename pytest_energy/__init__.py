"""pytest-energy: meter the energy of ML training and inference, and gate CI on it.

The public names are exported here; everything else is an implementation detail. Importing this package
imports nothing: every pytest run imports it (the plugin is one of its modules), so each public name is
loaded on first use (PEP 562), and nothing heavy (torch, pynvml, transformers) ever is.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    **dict.fromkeys(("BaselineError", "DataError", "EnergyError", "EnergyWarning", "MeasurementError",
                     "MeterUnavailable", "ReportError", "ShortWindowWarning", "UsageError"), "errors"),
    "EnergyFixture": "fixture",
    **dict.fromkeys(("Method", "Metric", "TestRecord", "VerdictKind", "Window"), "records"),
}

__all__ = [  # _EXPORTS' names (tests/test_package_root.py keeps the two equal)
    "BaselineError", "DataError", "EnergyError", "EnergyFixture", "EnergyWarning", "MeasurementError", "Method",
    "MeterUnavailable", "Metric", "ReportError", "ShortWindowWarning", "TestRecord", "UsageError", "VerdictKind",
    "Window", "__version__",
]

if TYPE_CHECKING:
    from .errors import (BaselineError, DataError, EnergyError, EnergyWarning, MeasurementError,
                         MeterUnavailable, ReportError, ShortWindowWarning, UsageError)
    from .fixture import EnergyFixture
    from .records import Method, Metric, TestRecord, VerdictKind, Window


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f".{module}", __name__), name)
        globals()[name] = value  # once: later lookups do not come here
        return value
    try:  # `pytest_energy.records` after a bare `import pytest_energy`, as before the names were lazy
        return importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
