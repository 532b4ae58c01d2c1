"""Which GPUs a process may use: CUDA_VISIBLE_DEVICES resolved as CUDA resolves it, against what NVML lists.

One place for this, because three parts of pytest-energy need the same answer: the NVML meter (meter only
the GPUs this process may use), the pytest-xdist split (hand each worker its own GPUs) and torchrun (each
rank meters its local GPUs). Nothing here initialises CUDA; `list_gpus` asks the NVIDIA driver (NVML).

**Indices are ambiguous.** NVML numbers GPUs in PCI bus order. CUDA numbers them fastest first unless
CUDA_DEVICE_ORDER=PCI_BUS_ID. The two orders agree on machines with one GPU model (ties are broken by PCI
bus id) and can differ on machines that mix models, where `CUDA_VISIBLE_DEVICES=1` may be one GPU for
torch and another for NVML. A UUID is the one selector both agree on: the xdist split writes UUIDs, and
`index_order_warning` says when an index selector could be misread.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import MeterUnavailable

ENV = "CUDA_VISIBLE_DEVICES"
ORDER_ENV = "CUDA_DEVICE_ORDER"


@dataclass(frozen=True)
class Gpu:
    """A physical GPU as NVML lists it."""

    index: int  # NVML index (PCI bus order)
    uuid: str  # "GPU-8f3a..."
    name: str = ""


@dataclass(frozen=True)
class VisibleGpu:
    """A GPU this process may use, and the CUDA_VISIBLE_DEVICES entry that selects it."""

    selector: str  # exactly what goes into a child's CUDA_VISIBLE_DEVICES
    index: int | None  # NVML index; None when NVML cannot tell (no driver, or a MIG instance)
    uuid: str | None
    name: str = ""

    def label(self) -> str:
        """'GPU 1 (GPU-8f3a...)' for people; the selector when NVML could not resolve it."""
        if self.index is None:
            return f"GPU {self.selector}"
        return f"GPU {self.index} ({self.uuid})" if self.uuid else f"GPU {self.index}"

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "uuid": self.uuid, "name": self.name, "selector": self.selector}


def visible_gpu_selectors(env: str | None) -> list[str] | None:
    """Parse CUDA_VISIBLE_DEVICES the way the CUDA runtime does.

    None: variable unset, every GPU is visible. Otherwise a list of indices or UUID prefixes
    ("GPU-...", "MIG-..."); like CUDA we stop at the first entry that is neither, and "-1" hides all.
    """
    if env is None:
        return None
    selectors = []
    for raw in env.split(","):
        item = raw.strip()
        if item.isdigit() or item.upper().startswith(("GPU-", "MIG-")):
            selectors.append(item)
        else:
            break  # CUDA ignores this entry and everything after it (e.g. "-1", "")
    return selectors


def resolve_visible(env: str | None, gpus: Sequence[Gpu] | None) -> tuple[list[VisibleGpu], list[str]]:
    """The GPUs a process with CUDA_VISIBLE_DEVICES=`env` may use, in CUDA's order, and warnings.

    `gpus` is what NVML lists; None when NVML is unavailable, in which case the entries are taken on
    trust (they cannot be checked). Like CUDA, resolution stops at the first entry that matches no GPU
    or is ambiguous; a repeated GPU is dropped. A MIG instance passes through with index None: NVML's
    energy counter belongs to the whole physical GPU, which other instances may be using.
    """
    selectors = visible_gpu_selectors(env)
    warnings: list[str] = []
    if gpus is None:
        if selectors is None:
            return [], ["NVML lists no GPU and CUDA_VISIBLE_DEVICES is unset: the GPUs cannot be listed"]
        out: list[VisibleGpu] = []
        for s in dict.fromkeys(selectors):
            out.append(VisibleGpu(s, int(s) if s.isdigit() else None, None if s.isdigit() else s))
        if len(out) < len(selectors):
            warnings.append(f"{ENV}={env!r}: repeated entries ignored")
        return out, warnings
    if selectors is None:
        return [VisibleGpu(g.uuid or str(g.index), g.index, g.uuid or None, g.name)
                for g in sorted(gpus, key=lambda g: g.index)], warnings
    out = []
    chosen: set[int] = set()
    for s in selectors:
        if s.upper().startswith("MIG-"):
            warnings.append(f"{ENV} entry {s!r} is a MIG instance: NVML meters the whole physical GPU, which "
                            "other MIG instances may be using")
            out.append(VisibleGpu(s, None, s))
            continue
        match = [g for g in gpus if (g.index == int(s) if s.isdigit() else g.uuid.upper().startswith(s.upper()))]
        if len(match) != 1:
            why = "matches no GPU" if not match else f"is ambiguous ({len(match)} GPUs match)"
            warnings.append(f"{ENV}={env!r}: entry {s!r} {why}; like CUDA, it and every later entry are ignored")
            break
        gpu = match[0]
        if gpu.index in chosen:
            warnings.append(f"{ENV}={env!r}: GPU {gpu.index} is listed twice; the repeat is ignored")
            continue
        chosen.add(gpu.index)
        out.append(VisibleGpu(s, gpu.index, gpu.uuid, gpu.name))
    return out, warnings


def index_order_warning(selectors: Sequence[str] | None, gpus: Sequence[Gpu],
                        order: str | None = None) -> str | None:
    """A warning when an index in CUDA_VISIBLE_DEVICES may name one GPU for CUDA and another for NVML.

    That happens only with index selectors, on a machine with more than one GPU model, when CUDA numbers
    GPUs fastest first (its default) rather than in PCI bus order.
    """
    order = os.environ.get(ORDER_ENV) if order is None else order
    if not selectors or not any(s.isdigit() for s in selectors) or order == "PCI_BUS_ID":
        return None
    if len({g.name for g in gpus}) < 2:
        return None  # one model: CUDA breaks fastest-first ties by PCI bus id, the order NVML uses
    return (f"{ENV} uses indices ({','.join(selectors)}) on a machine with different GPU models "
            f"({', '.join(sorted({g.name for g in gpus}))}) and {ORDER_ENV} is "
            f"{order or 'unset (FASTEST_FIRST)'}: CUDA may number these GPUs differently from NVML, so the "
            f"GPU metered may not be the GPU used. Set {ORDER_ENV}=PCI_BUS_ID or select GPUs by UUID "
            "(nvidia-smi -L lists them)")


def list_gpus() -> list[Gpu]:
    """Every GPU the NVIDIA driver lists (NVML index, UUID, name). Never initialises CUDA.

    Raises MeterUnavailable with the reason when no driver answers.
    """
    try:
        import pynvml
    except ImportError as exc:  # pragma: no cover - nvidia-ml-py is a dependency
        raise MeterUnavailable("NVML: the nvidia-ml-py package is not installed") from exc
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        raise MeterUnavailable(f"NVML: no NVIDIA driver answered (nvmlInit: {exc})") from exc
    try:
        out = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            out.append(Gpu(i, text(pynvml.nvmlDeviceGetUUID(handle)), text(pynvml.nvmlDeviceGetName(handle))))
        return out
    except pynvml.NVMLError as exc:
        raise MeterUnavailable(f"NVML: the driver answered but the GPUs could not be listed: {exc}") from exc
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass


def text(value: Any) -> str:
    """Older NVML bindings return bytes, newer return str."""
    return value.decode() if isinstance(value, bytes) else str(value)
