"""Count the floating-point operations of a callable with torch's FlopCounterMode.

FlopCounterMode counts the operations it has formulas for (matrix multiplies, convolutions, attention),
which dominate transformer cost; element-wise work is not counted. A count we cannot make is None with
a reason, never a guessed number.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FlopCount:
    flops: int | None  # None when the count could not be made
    reason: str | None = None  # why flops is None
    result: Any = None  # what the callable returned


def count_flops(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> FlopCount:
    """Run `fn(*args, **kwargs)` once under FlopCounterMode and return its FLOPs.

    The call really runs: a training step counted this way also updates the weights, so count on a
    throw-away step or a copy. For a training step, do forward and backward inside `fn` (backward FLOPs
    are about twice the forward ones and are counted too).
    """
    try:
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError as exc:
        return _none(f"torch with torch.utils.flop_counter is not available ({exc})")
    try:
        with FlopCounterMode(display=False) as counter:
            result = fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - a FLOP count is optional information; say why it is missing
        return _none(f"the callable failed under FlopCounterMode: {type(exc).__name__}: {exc}")
    total = int(counter.get_total_flops())
    if total <= 0:
        return _none("no countable operations ran (FlopCounterMode counts matmul, convolution and attention "
                     "only; is the model running outside torch, e.g. a compiled runtime?)", result)
    return FlopCount(total, None, result)


def _none(reason: str, result: Any = None) -> FlopCount:
    log.info("FLOPs not counted: %s", reason)
    return FlopCount(None, reason, result)
