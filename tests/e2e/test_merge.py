"""`python -m pytest_energy merge`: shards' JSON reports from real pytester runs become one report, one exit
code and, when asked, one baseline update the plugin then gates against."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import schema_check as check  # tests/specs, on the tests' pythonpath (pyproject.toml)

from pytest_energy.cli import main
from pytest_energy.meters.fake import FakeGpu

SHARDS = {
    "test_shard_a": """
import time

def test_a1(energy):
    energy(time.sleep, 0.1)

def test_a2(energy):
    energy(time.sleep, 0.1)
""",
    "test_shard_b": """
import time

def test_b1(energy):
    energy(time.sleep, 0.1)
""",
}
# One call per round (no calibration to ~1 s rounds): the sleeps are the rounds.
RUN = ("--energy", "--energy-meter", "nvml", "--energy-rounds", "3", "--energy-warmup", "0",
       "--energy-min-round-s", "0", "-p", "no:cacheprovider")


@pytest.fixture
def shards(pytester, fake_nvml):
    """Run the two shards (one module each) on a fake 100 W GPU; returns (gpu, run(shard, *args))."""
    gpu = FakeGpu(power_w=100.0, counter_update_s=0.001)
    fake_nvml(gpu)
    pytester.makepyfile(**SHARDS)

    def run(shard: str, *args: str):
        return pytester.runpytest(f"{shard}.py", *RUN, "--energy-json", f"{shard}.json", *args)

    return gpu, run


def _merge(pytester, *args: str) -> int:
    return main(["merge", *(str(pytester.path / a) if a.endswith(".json") and "/" not in a else a for a in args)])


def test_each_merged_save_adds_a_run_to_the_history(pytester, shards, capsys):
    _, run = shards
    for _ in range(2):
        run("test_shard_b").assert_outcomes(passed=1)
        assert _merge(pytester, "test_shard_b.json", "--save-baseline", "--baseline-dir",
                      str(pytester.path / "baselines")) == 0
    stored = json.loads((pytester.path / "baselines" / "test_shard_b.json").read_text())
    entry = stored["entries"]["test_shard_b.py::test_b1"]
    assert [r["n"] for r in entry["metrics"]["energy_j"]["history"]] == [3, 3]
    assert len(entry["runs"]) == 2 and all(r["probe_s"] is None for r in entry["runs"].values())


def test_two_shards_merge_into_one_report_and_one_verdict(pytester, shards, capsys):
    _, run = shards
    run("test_shard_a").assert_outcomes(passed=2)
    run("test_shard_b").assert_outcomes(passed=1)
    assert _merge(pytester, "test_shard_a.json", "test_shard_b.json", "--json", "merged.json",
                  "--markdown", str(pytester.path / "merged.md")) == 0
    out = capsys.readouterr().out
    assert "3 result(s) from 2 shard(s) on 1 machine class(es): PASS" in out
    report = json.loads((pytester.path / "merged.json").read_text())
    assert {b["fullname"] for b in report["benchmarks"]} == {"test_shard_a.py::test_a1", "test_shard_a.py::test_a2",
                                                             "test_shard_b.py::test_b1"}
    assert {"machine_info", "commit_info", "benchmarks", "datetime", "version"} <= set(report)  # pytest-benchmark's
    (cls,) = report["energy"]["machine_classes"].values()
    assert cls["fingerprint"]["gpus"] == ["NVIDIA H100 80GB HBM3"] and cls["benchmarks"] == 3
    assert report["energy"]["verdict"]["exit_code"] == 0
    assert "shards merged: PASS" in (pytester.path / "merged.md").read_text()


def test_merged_baseline_is_what_the_plugin_gates_against_and_a_regression_fails_the_merge(pytester, shards, capsys):
    gpu, run = shards
    run("test_shard_a")
    run("test_shard_b")
    assert _merge(pytester, "test_shard_a.json", "test_shard_b.json", "--save-baseline", "--baseline-dir",
                  str(pytester.path / "baselines")) == 0
    assert "wrote" in capsys.readouterr().out
    stored = json.loads((pytester.path / "baselines" / "test_shard_a.json").read_text())["entries"]
    assert set(stored) == {"test_shard_a.py::test_a1", "test_shard_a.py::test_a2"}
    # The next run of each shard compares with the merged baseline (same machine class): unchanged passes ...
    run("test_shard_a").assert_outcomes(passed=2)
    for bench in json.loads((pytester.path / "test_shard_a.json").read_text())["benchmarks"]:
        verdicts = {v["metric"]: v["verdict"] for v in bench["energy"]["comparison"]}
        assert verdicts["energy_j"] in ("PASS", "INCONCLUSIVE")  # time.sleep on a busy runner: noisy, not worse
    # ... and a shard whose GPU now draws 50 % more regresses, which fails the merged verdict.
    gpu.power_w = 150.0
    run("test_shard_b").assert_outcomes(failed=1)
    assert _merge(pytester, "test_shard_a.json", "test_shard_b.json") == 1
    out = capsys.readouterr().out
    assert "REGRESSION test_shard_b.py::test_b1 [nvml-counter-1xNVIDIA-H100-80GB-HBM3-" in out
    assert re.search(r"test_shard_b.json\]: energy_j \+\d+\.\d %", out)
    assert "FAILED shard" in out and ": FAIL" in out


def test_machine_classes_are_kept_apart(pytester, shards, capsys):
    _, run = shards
    run("test_shard_a")
    doc = json.loads((pytester.path / "test_shard_a.json").read_text())
    for bench in doc["benchmarks"]:
        bench["energy"]["machine"]["gpus"] = ["NVIDIA A100-SXM4-40GB"]  # the same tests on another runner class
    (pytester.path / "other_class.json").write_text(json.dumps(doc))
    assert _merge(pytester, "test_shard_a.json", "other_class.json", "--json", "m.json") == 0
    report = json.loads((pytester.path / "m.json").read_text())
    assert len(report["energy"]["machine_classes"]) == 2 and len(report["benchmarks"]) == 4
    # One folder holds one entry per test: two classes need a folder each.
    assert _merge(pytester, "test_shard_a.json", "other_class.json", "--save-baseline") == 2
    assert "measured on two machine classes" in capsys.readouterr().out
    assert not (pytester.path / "baselines").exists()
    assert _merge(pytester, "test_shard_a.json", "other_class.json", "--save-baseline", "--class-dirs",
                  "--baseline-dir", str(pytester.path / "baselines")) == 0
    folders = sorted(p.name for p in (pytester.path / "baselines").iterdir())
    assert len(folders) == 2 and any("A100" in f for f in folders) and any("H100" in f for f in folders)


def test_overlapping_shards_mixed_commits_and_missing_shards_are_unusable(pytester, shards, capsys):
    _, run = shards
    run("test_shard_a")
    run("test_shard_b")
    a = json.loads((pytester.path / "test_shard_a.json").read_text())
    retried = dict(a, datetime="2999-01-01T00:00:00+00:00")
    (pytester.path / "retry.json").write_text(json.dumps(retried))
    assert _merge(pytester, "test_shard_a.json", "retry.json") == 2
    assert "ran in two shards of machine class" in capsys.readouterr().out
    assert _merge(pytester, "test_shard_a.json", "retry.json", "--duplicates", "last") == 0
    assert "retry.json replaces" in capsys.readouterr().out
    (pytester.path / "other_commit.json").write_text(json.dumps(dict(a, commit_info={"id": "f" * 40})))
    assert _merge(pytester, "test_shard_b.json", "other_commit.json") == 2
    assert "different commits" in capsys.readouterr().out
    assert _merge(pytester, "test_shard_a.json", "test_shard_b.json", "--expected-shards", "3") == 2
    assert "2 shard report(s) given but 3 expected" in capsys.readouterr().out


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    (json.dumps({"benchmarks": [], "machine_info": {}}), "has no 'energy' block"),
    (json.dumps([1, 2]), "not a pytest-energy JSON report"),
])
def test_unusable_input_exits_2_naming_the_file(pytester, capsys, content, message):
    (pytester.path / "bad.json").write_text(content)
    assert _merge(pytester, "bad.json") == 2
    out = capsys.readouterr().out
    assert "bad.json" in out and message in out
    assert _merge(pytester, "missing.json") == 2


def test_the_command_line(pytester, shards):
    _, run = shards
    run("test_shard_b")
    done = subprocess.run([sys.executable, "-m", "pytest_energy", "merge", "test_shard_b.json"],
                          cwd=pytester.path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "1 result(s) from 1 shard(s)" in done.stdout


def test_merge_writes_the_dashboard_exports_of_every_shard(pytester, shards, capsys):
    """`merge --bmf/--github-benchmark`: the merged, typed results of both shards, valid against the
    formats' published schemas (tests/specs)."""
    _, run = shards
    run("test_shard_a").assert_outcomes(passed=2)
    run("test_shard_b").assert_outcomes(passed=1)
    assert _merge(pytester, "test_shard_a.json", "test_shard_b.json", "--bmf", str(pytester.path / "bmf.json"),
                  "--github-benchmark", str(pytester.path / "gab.json")) == 0
    bmf = check.strict_loads((pytester.path / "bmf.json").read_text(encoding="utf-8"))
    assert check.errors(bmf, check.load("bmf.schema.json")) == []
    assert {name.split("::")[-1] for name in bmf} == {"test_a1", "test_a2", "test_b1"}
    assert all("energy_j (J)" in measures and measures["energy_j (J)"]["value"] > 0 for measures in bmf.values())
    gab = check.strict_loads((pytester.path / "gab.json").read_text(encoding="utf-8"))
    assert check.errors(gab, check.load("github-benchmark.schema.json")) == []
    assert {entry["name"].split(" › ")[0].split("::")[-1] for entry in gab} == {"test_a1", "test_a2", "test_b1"}
    out = capsys.readouterr().out
    assert "bmf.json" in out and "gab.json" in out


def test_merge_export_into_a_folder_is_unusable_input(pytester, shards, capsys):
    _, run = shards
    run("test_shard_b").assert_outcomes(passed=1)
    (pytester.path / "adir").mkdir()
    assert _merge(pytester, "test_shard_b.json", "--bmf", str(pytester.path / "adir")) == 2
    assert "--bmf" in capsys.readouterr().out
