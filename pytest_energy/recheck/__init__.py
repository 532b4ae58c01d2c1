"""The second look in the same job (issue 16): confirm a suspected test, or measure it against a base revision.

The history rule (gate/history.py) is a screen: it compares a run with stored runs, and drift between runs
comes in bursts as large as the regressions worth catching. A test the screen suspects is looked at again
before it can fail CI, where drift cancels:

- `--energy-confirm N` (default 3): the test runs N more times at the end of the session, on the same process
  (the same xdist worker, the same GPU), and fails only when every re-run repeats the suspicion (gate/confirm.py);
- `--energy-against REV`: the suspected tests are measured alternately at REV (a temporary git worktree,
  `git.py`) and here, in fresh processes (`children.py`), in random A-B / B-A order, and decided by a
  sequential test on the paired log ratios (`ab.py`, gate/sequential.py). Only an A/B REGRESSION fails.

`plugin.py` is the pytest side (deferring a suspected test's report until its second look is done); the rest
imports no pytest.
"""
