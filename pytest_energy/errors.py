"""Every error and warning pytest-energy raises on purpose, under one root so callers can catch them all."""


class EnergyError(Exception):
    """Root of every error pytest-energy raises deliberately."""


class UsageError(EnergyError, ValueError):
    """A bad option, marker argument or API argument supplied by the user."""


class MeterUnavailable(EnergyError):
    """A meter cannot be used on this machine; the message says why."""


class MeasurementError(EnergyError):
    """A meter that was working failed during a window (e.g. a GPU was lost).

    The window's energy is unknown; we never substitute 0 J.
    """


class BaselineError(EnergyError):
    """A baseline file is damaged, truncated, of the wrong schema, or cannot be written."""


class BaselineSaveError(BaselineError):
    """Some baselines could not be saved; `written` lists the files that were (each test is saved on its own)."""

    def __init__(self, message: str, written: list | None = None) -> None:
        super().__init__(message)
        self.written = list(written or [])


class ReportError(EnergyError):
    """A report file (JSON, markdown, HTML) cannot be written."""


class DataError(EnergyError):
    """A task, data set or model cannot be loaded; the message names it and how to provide it."""


class Unsupported(EnergyError):
    """This machine cannot run a sweep configuration; the message says why. The sweep records and skips it."""


class DistributedError(EnergyError):
    """Ranks under torchrun cannot exchange or combine results: the store is unreachable, a rank sent
    nothing in time, or ranks measured different windows. The message names the ranks."""


class PlotsUnavailable(EnergyError, ImportError):
    """matplotlib is not installed; the message says how to install it."""


class EnergyWarning(UserWarning):
    """Root of the warnings pytest-energy issues."""


class ShortWindowWarning(EnergyWarning):
    """A window was shorter than the sensor's update period; its energy is unreliable."""


class IntegrationWarning(EnergyWarning):
    """A tool pytest-energy plugs into (pytest-benchmark) did not behave as expected; figures were dropped."""


class SharedDeviceWarning(EnergyWarning):
    """Parallel workers share a metered device (a GPU, the CPU package): their figures include each other's load."""


class DeviceOrderWarning(EnergyWarning):
    """A CUDA_VISIBLE_DEVICES index may name a different GPU for CUDA than for NVML."""
