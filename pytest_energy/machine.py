"""Machine fingerprint and commit info recorded with every result.

Stable facts only in the fingerprint proper (GPU names, CPU model, meter); library versions are
recorded too but never decide whether two machines match (see gate.baselines.MATCH_KEYS).
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from importlib import metadata
from typing import TYPE_CHECKING, Any

from .records import combine_methods

if TYPE_CHECKING:
    from .meters.base import Meter


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def fingerprint(meter: Meter) -> dict[str, Any]:
    info: dict[str, Any] = {
        "meter": meter.name,
        "method": combine_methods(d.method for d in meter.devices()),
        "gpus": [],
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        # From package metadata, so recording them never imports torch or transformers.
        "torch": _version("torch"),
        "transformers": _version("transformers"),
        "pytest_energy": _version("pytest-energy"),
    }
    info.update(meter.fingerprint())
    return info


def machine_info(meter: Meter) -> dict[str, Any]:
    """pytest-benchmark's `machine_info` keys plus our fingerprint."""
    uname = platform.uname()
    info = {
        "node": uname.node,
        "processor": uname.processor,
        "machine": uname.machine,
        "python_compiler": platform.python_compiler(),
        "python_implementation": platform.python_implementation(),
        "python_implementation_version": platform.python_version(),
        "python_version": platform.python_version(),
        "python_build": list(platform.python_build()),
        "release": uname.release,
        "system": uname.system,
        "cpu": {"brand_raw": cpu_model(), "count": os.cpu_count()},
    }
    info.update(fingerprint(meter))
    return info


def git_output(args: list[str], cwd: str | os.PathLike) -> str | None:
    """`git <args>`'s stripped output in `cwd`, None when git fails, is missing or hangs (5 s)."""
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def commit_info(cwd: str) -> dict[str, Any]:
    """pytest-benchmark's `commit_info` keys; values are None outside a git checkout."""
    commit_id = git_output(["rev-parse", "HEAD"], cwd)
    status = git_output(["status", "--porcelain", "--untracked-files=no"], cwd)
    top = git_output(["rev-parse", "--show-toplevel"], cwd)
    return {
        "id": commit_id,
        "time": git_output(["log", "-1", "--format=%cI"], cwd) if commit_id else None,
        "author_time": git_output(["log", "-1", "--format=%aI"], cwd) if commit_id else None,
        "dirty": bool(status) if status is not None else None,
        "project": os.path.basename(top) if top else None,
        "branch": git_output(["rev-parse", "--abbrev-ref", "HEAD"], cwd) if commit_id else None,
    }


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat()
