"""The regression gate: stats, history (the run-history rule and the pool), compare, judge, baselines.

The defaults the configuration shows for the gate are defined here, in the layer that owns them, so that
`config` (and every pytest run, which imports it) reads them without loading the gate's statistics.
"""

from __future__ import annotations

# 8 %, a factor of 1.08 either way: wide enough that within-run noise alone rarely crosses it, narrow enough
# that a 15 % regression does (tools/gate_statistics.py measures both; docs/statistics.md).
DEFAULT_TOLERANCE = 0.08
HISTORY_LENGTH = 10  # runs kept per metric in a baseline's history (--energy-history)
# Confirm on suspicion (gate/confirm.py): re-runs of a suspected test at the end of the session, each judged at
# p < 0.01. 3, from the bursty simulation (1000 suite runs): a third re-run at 0.01 fails as few unchanged
# suite runs as the earlier 2 re-runs at 0.001 (docs/statistics.md, "The re-runs' level, and suspicion").
DEFAULT_RERUNS = 3
# The same-job A/B (gate/sequential.py): at least MIN_PAIRS pairs (df = 2), at most MAX_PAIRS by default.
MIN_PAIRS = 3
MAX_PAIRS = 10
