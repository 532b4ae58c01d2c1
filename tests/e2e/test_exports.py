"""`--energy-bmf` and `--energy-github-benchmark` in a real pytest run: the dashboards' files, valid against
the formats' published schemas (tests/specs), beside the other reports; a path that cannot be written stops
the run at start-up."""

from __future__ import annotations

import schema_check as check  # tests/specs, on the tests' pythonpath (pyproject.toml)

TESTS = '''
import time

def test_sleep(energy):
    energy(time.sleep, 0.01)

def test_with_score(energy):
    energy(time.sleep, 0.01)
    energy.record_metric("accuracy", "", [0.9], better="higher", kind="deterministic")
'''


def test_a_run_writes_both_exports_and_says_what_was_left_out(pytester):
    pytester.makepyfile(test_exports=TESTS)
    result = pytester.runpytest("--energy", "--energy-meter", "estimate", "--energy-rounds", "3",
                                "--energy-min-round-s", "0", "--energy-bmf", "out/bmf.json",
                                "--energy-github-benchmark", "out/gab.json", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    bmf = check.strict_loads((pytester.path / "out" / "bmf.json").read_text(encoding="utf-8"))
    assert check.errors(bmf, check.load("bmf.schema.json")) == []
    assert set(bmf) == {"test_exports.py::test_sleep", "test_exports.py::test_with_score"}
    assert bmf["test_exports.py::test_sleep"]["energy_j (J)"]["value"] > 0
    assert "accuracy" in bmf["test_exports.py::test_with_score"]  # BMF has no direction: kept as measured
    gab = check.strict_loads((pytester.path / "out" / "gab.json").read_text(encoding="utf-8"))
    assert check.errors(gab, check.load("github-benchmark.schema.json")) == []
    assert not any("accuracy" in entry["name"] for entry in gab)  # higher is better: left out of SmallerIsBetter
    result.stdout.fnmatch_lines(["*--energy-github-benchmark*accuracy*", "wrote *bmf.json", "wrote *gab.json"])


def test_an_export_path_that_is_a_folder_stops_the_run_before_anything_is_measured(pytester):
    pytester.makepyfile(test_exports=TESTS)
    (pytester.path / "adir").mkdir()
    result = pytester.runpytest("--energy", "--energy-meter", "estimate", "--energy-bmf", "adir",
                                "-p", "no:cacheprovider")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--energy-bmf adir is a folder*"])
