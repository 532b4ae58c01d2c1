"""Report files are written like any file the user creates: atomically, with the umask's mode."""

from __future__ import annotations

import os
import stat

import pytest


def test_report_files_follow_the_umask(pytester, no_nvml):
    pytest.importorskip("matplotlib")
    pytester.makepyfile("import time\ndef test_x(energy):\n    energy(time.sleep, 0.02)\n")
    old = os.umask(0o022)
    try:
        result = pytester.runpytest("--energy", "--energy-rounds", "2", "--energy-json", "r/e.json",
                                    "--energy-markdown", "r/e.md", "--energy-html", "r/e.html",
                                    "-W", "ignore::pytest_energy.errors.ShortWindowWarning")
    finally:
        os.umask(old)
    result.assert_outcomes(passed=1)
    for name in ("e.json", "e.md", "e.html"):
        assert stat.S_IMODE((pytester.path / "r" / name).stat().st_mode) == 0o644, name
    assert sorted(p.name for p in (pytester.path / "r").iterdir()) == ["e.html", "e.json", "e.md"]  # no temp files
