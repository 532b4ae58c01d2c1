"""tools/bench_second_look.py runs and prints its ratio (tiny sizes: this checks the tool, not the figure)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "bench_second_look.py"


@pytest.mark.slow
def test_the_tool_runs_and_prints_the_ratio():
    done = subprocess.run([sys.executable, str(TOOL), "--tests", "5", "--pairs", "1"], capture_output=True,
                          text=True, check=False, timeout=300)
    assert done.returncode in (0, 1), done.stdout + done.stderr
    assert "second look on (default) / off (--energy-confirm 0), 5 energy tests" in done.stdout, done.stdout
