"""`python -m pytest_energy merge-driver`: two versions of one baseline file merged as run histories.
The same in a real git repository with two branches that saved: tests/e2e/test_merge_driver_git.py."""

from __future__ import annotations

import json
import subprocess

import pytest

from pytest_energy.cli import main as cli_main
from pytest_energy.cli.merge_driver import install_lines, merge_driver
from pytest_energy.gate.baselines import BaselineEntry, BaselineStore, append_run, read_file
from pytest_energy.gate.history import RunSummary
from pytest_energy.records import Metric

NODE = "benchmarks/test_inference.py::test_x"
SHOWN = "baselines/benchmarks__test_inference.json"
MACHINE = {"method": "estimate", "gpus": [], "cpu_model": "Xeon", "estimate_watts_per_core": 10.0}


def run(run_id: str, hour: int, energy_j: float = 10.0, nodeid: str = NODE, machine=None) -> BaselineEntry:
    """One saving run of one test, started at `hour` o'clock."""
    when = f"2026-12-01T{hour:02d}:00:00+00:00"
    samples = [energy_j, energy_j + 1.0]
    return BaselineEntry(
        nodeid=nodeid, machine=dict(machine or MACHINE), commit={"id": run_id}, datetime=when, method="estimate",
        metrics={"energy_j": Metric("energy_j", "J", "lower", "measured", samples, "estimate"),
                 "steps": Metric("steps", "steps", "lower", "deterministic", [float(hour)])},
        history={"energy_j": [RunSummary.of(samples, run_id)]},
        runs={run_id: {"datetime": when, "commit": run_id, "probe_s": None, "probe_id": None}})


def history(*runs: BaselineEntry, keep: int = 10, restart_last: bool = False) -> BaselineEntry:
    entry = None
    for i, r in enumerate(runs):
        restart = {"energy_j"} if restart_last and i == len(runs) - 1 else set()
        entry = append_run(entry, r, keep=keep, restart=restart)
    return entry


def write(path, *entries: BaselineEntry) -> None:
    path.write_text(json.dumps({"schema_version": 2, "entries": {e.nodeid: e.to_dict() for e in entries}}))


def merge(tmp_path, base, ours, theirs, keep=10, shown=SHOWN):
    paths = [tmp_path / n for n in ("O", "A", "B")]
    for path, entries in zip(paths, (base, ours, theirs)):
        if isinstance(entries, str):
            path.write_text(entries)
        else:
            write(path, *entries)
    said: list[str] = []
    status = merge_driver(*paths, shown, keep, say=said.append)
    return status, paths[1], said


def ids(entry: BaselineEntry, metric: str = "energy_j") -> list[str]:
    return [h.run_id for h in entry.history[metric]]


def test_the_runs_of_both_sides_in_time_order_a_shared_run_once(tmp_path):
    r1, r2, r3 = run("r1", 1), run("r2", 2, 12.0), run("r3", 3, 13.0)
    status, ours, said = merge(tmp_path, [history(r1)], [history(r1, r3)], [history(r1, r2)])
    assert status == 0 and said == []
    _, entries = read_file(ours, name=None)
    merged = entries[NODE]
    assert ids(merged) == ["r1", "r2", "r3"]
    assert merged.metrics["energy_j"].samples == [13.0, 14.0]  # the latest run's, with its history
    assert merged.metrics["steps"].samples == [3.0] and merged.commit == {"id": "r3"}  # saved last: ours
    assert set(merged.runs) == {"r1", "r2", "r3"}
    text = ours.read_text()
    assert "<<<<<<<" not in text and text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"


def test_tests_added_on_either_side_are_kept_and_a_deletion_on_one_side_is_kept(tmp_path):
    gone, kept = "benchmarks/test_inference.py::test_gone", "benchmarks/test_inference.py::test_kept"
    base = [history(run("r1", 1)), run("r1", 1, nodeid=gone), run("r1", 1, nodeid=kept)]
    ours = [history(run("r1", 1), run("r2", 2)), run("r2", 2, nodeid="benchmarks/test_inference.py::test_a"),
            run("r1", 1, nodeid=kept)]
    theirs = [history(run("r1", 1), run("r3", 3)), run("r3", 3, nodeid="benchmarks/test_inference.py::test_b"),
              run("r1", 1, nodeid=gone), history(run("r1", 1, nodeid=kept), run("r3", 3, nodeid=kept))]
    status, path, said = merge(tmp_path, base, ours, theirs)
    assert status == 0
    entries = read_file(path, name=None)[1]
    assert sorted(entries) == sorted([NODE, kept, "benchmarks/test_inference.py::test_a",
                                      "benchmarks/test_inference.py::test_b"])
    assert ids(entries[kept]) == ["r1", "r3"]
    assert any(f"{gone}: deleted on ours" in line for line in said)


def test_a_restart_on_one_side_wins_for_that_metric_and_is_said(tmp_path):
    r1, r2 = run("r1", 1), run("r2", 2)
    base = history(r1, r2)
    ours = history(r1, r2, run("r4", 4, 10.5))  # later, but measured the old code
    theirs = history(r1, r2, run("r3", 3, 5.0), restart_last=True)  # an accepted 2x improvement
    assert ids(theirs) == ["r3"]
    status, path, said = merge(tmp_path, [base], [ours], [theirs])
    assert status == 0
    merged = read_file(path, name=None)[1][NODE]
    assert ids(merged) == ["r3"] and merged.metrics["energy_j"].samples == [5.0, 6.0]
    assert any("energy_j: history restarted on theirs" in line and "1 newer run(s) of the other side dropped" in line
               for line in said), said


def test_restarts_on_both_sides_the_later_wins(tmp_path):
    r1 = run("r1", 1)
    ours = history(r1, run("r5", 5), restart_last=True)
    theirs = history(r1, run("r3", 3), restart_last=True)
    status, path, said = merge(tmp_path, [history(r1)], [ours], [theirs])
    assert status == 0 and ids(read_file(path, name=None)[1][NODE]) == ["r5"]
    assert any("later restart (ours) wins" in line for line in said)


def test_the_history_length_limit_is_kept(tmp_path):
    base = history(run("r1", 1), run("r2", 2), keep=3)
    ours = history(run("r1", 1), run("r2", 2), run("r4", 4), keep=3)
    theirs = history(run("r1", 1), run("r2", 2), run("r3", 3), keep=3)
    status, path, _ = merge(tmp_path, [base], [ours], [theirs], keep=3)
    assert status == 0 and ids(read_file(path, name=None)[1][NODE]) == ["r2", "r3", "r4"]


def test_another_machine_class_on_one_side_takes_that_entry_whole(tmp_path):
    other = dict(MACHINE, cpu_model="EPYC")
    base = history(run("r1", 1))
    ours = history(run("r1", 1), run("r2", 2, machine=other))  # append_run restarts on a new machine class
    theirs = history(run("r1", 1), run("r3", 3))
    status, path, said = merge(tmp_path, [base], [ours], [theirs])
    merged = read_file(path, name=None)[1][NODE]
    assert status == 0 and ids(merged) == ["r2"] and merged.machine["cpu_model"] == "EPYC"
    assert any("another machine class on ours" in line for line in said)


def test_a_file_new_on_both_sides_merges_without_a_base(tmp_path):
    status, path, _ = merge(tmp_path, "", [history(run("r2", 2))], [history(run("r1", 1))])
    assert status == 0 and ids(read_file(path, name=None)[1][NODE]) == ["r1", "r2"]


@pytest.mark.parametrize("theirs, reason", [
    ("{", "theirs: baseline file .*not valid JSON"),
    (json.dumps({"schema_version": 1, "entries": {}}), "ours is schema 2, theirs schema 1"),
    (json.dumps({"schema_version": 2, "entries": {"other.py::t": {}}}), "belongs in other.json"),
])
def test_what_cannot_be_merged_is_left_to_gits_text_merge_and_exits_1(tmp_path, theirs, reason):
    import re

    status, path, said = merge(tmp_path, [history(run("r1", 1))], [history(run("r1", 1), run("r2", 2))], theirs)
    assert status == 1
    assert len(said) == 1 and re.search(reason, said[0]) and "left to git's text merge" in said[0], said
    expected = tmp_path / "expected"
    write(expected, history(run("r1", 1), run("r2", 2)))
    subprocess.run(["git", "merge-file", "-L", "ours", "-L", "base", "-L", "theirs", str(expected),
                    str(tmp_path / "O"), str(tmp_path / "B")], check=False)
    assert path.read_bytes() == expected.read_bytes()  # exactly what git would have left


def test_the_hulk_reference_beside_the_baselines_gets_gits_text_merge(tmp_path):
    base = '{"a": 1,\n"b": 2,\n"c": 3}\n'
    status, path, said = merge(tmp_path, base, base.replace("1", "10"), base.replace("3", "30"),
                               shown="baselines/hulk-reference.json")
    assert status == 0 and said == [] and path.read_text() == '{"a": 10,\n"b": 2,\n"c": 30}\n'


def test_install_prints_the_two_lines(capsys):
    assert cli_main(["merge-driver", "--install", "--baseline-dir", "perf/baselines"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == list(install_lines("perf/baselines"))
    assert lines[0] == "perf/baselines/*.json merge=pytest-energy"
    assert lines[1].startswith("git config merge.pytest-energy.driver '") and "merge-driver %O %A %B %P" in lines[1]


def test_install_apply_writes_the_attribute_once_and_configures_git(tmp_path, monkeypatch):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitattributes").write_text("*.png binary")
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        assert cli_main(["merge-driver", "--install", "--apply"]) == 0
    assert (tmp_path / ".gitattributes").read_text() == "*.png binary\nbaselines/*.json merge=pytest-energy\n"
    driver = subprocess.run(["git", "config", "merge.pytest-energy.driver"], capture_output=True, text=True,
                            check=True).stdout
    assert "-m pytest_energy merge-driver %O %A %B %P" in driver


def test_wrong_arguments_are_usage_errors(capsys):
    assert cli_main(["merge-driver", "a", "b"]) == 2
    assert "give %O %A %B" in capsys.readouterr().err


def test_a_merged_file_loads_in_a_store(tmp_path):
    status, path, _ = merge(tmp_path, [history(run("r1", 1))], [history(run("r1", 1), run("r2", 2))],
                            [history(run("r1", 1), run("r3", 3))])
    (tmp_path / "baselines").mkdir()
    path.rename(tmp_path / SHOWN)
    assert status == 0 and ids(BaselineStore(tmp_path / "baselines").load(NODE)) == ["r1", "r2", "r3"]
