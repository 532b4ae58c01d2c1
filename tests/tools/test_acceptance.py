"""tools/acceptance_gate.py, tools/acceptance_ab.py and tools/acceptance_common.py without a model run: the
planted slowdowns (same results, more calls; a commit touching only the planted function), reading a run's
output and report, and the summaries the integrator reads."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

TOOLS = Path(__file__).resolve().parents[2] / "tools"


@pytest.fixture
def tools(monkeypatch):
    monkeypatch.syspath_prepend(str(TOOLS))
    import acceptance_ab
    import acceptance_common
    import acceptance_gate

    return SimpleNamespace(common=acceptance_common, gate=acceptance_gate, ab=acceptance_ab)


# --- the planted slowdowns -----------------------------------------------------------------------------------

def helper(tools, source_name: str, name: str):
    namespace: dict = {}
    exec(compile(getattr(tools.common, source_name), "<helper>", "exec"), namespace)
    return namespace[name]


@pytest.mark.parametrize(("factor", "calls"), [(2.0, 20), (1.5, 15), (1.25, 12)])
def test_the_predict_plant_calls_factor_times_and_returns_the_real_output(tools, factor, calls):
    seen = []

    def predict(batch):
        seen.append(batch)
        return f"out{len(seen)}"

    slower = helper(tools, "PREDICT_HELPER", "_planted_slower_predict")(predict, factor)
    outs = [slower(i) for i in range(10)]
    assert len(seen) == calls
    assert outs[0] == "out1" and all(o.startswith("out") for o in outs)
    assert sorted(set(seen)) == list(range(10))  # extra passes reuse the same batches, none other


def test_the_training_plant_repeats_forward_and_backward_without_changing_the_model(tools):
    torch = pytest.importorskip("torch")

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 2)
            self.dropout = torch.nn.Dropout(0.5)
            self.forwards = 0

        def forward(self, input_ids, labels):
            self.forwards += 1
            logits = self.linear(self.dropout(input_ids))
            return SimpleNamespace(loss=torch.nn.functional.cross_entropy(logits, labels))

    def train(factor):
        torch.manual_seed(0)
        model = Tiny()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        data = torch.randn(8, 4), torch.tensor([0, 1] * 4)

        def train_step(step):
            model.train()
            model(input_ids=data[0], labels=data[1]).loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            return 32

        step = train_step if factor == 1.0 else helper(tools, "TRAIN_STEP_HELPER", "_planted_slower_train_step")(
            model, train_step, factor)
        tokens = [step(i) for i in range(6)]
        return model, tokens, torch.rand(1)  # the RNG after training: dropout draws it

    plain, plain_tokens, plain_rng = train(1.0)
    slower, slower_tokens, slower_rng = train(2.0)
    assert plain.forwards == 6 and slower.forwards == 12
    assert slower_tokens == plain_tokens
    for a, b in zip(plain.parameters(), slower.parameters()):
        assert torch.equal(a, b) and b.grad is None
    assert torch.equal(plain_rng, slower_rng)


def test_the_generated_conftest_keeps_the_suite_conftest_and_adds_both_knobs(tools, tmp_path):
    for suite, expected in (("protocols", {"test_finetune.py", "test_inference.py"}),
                            ("overhead", {"test_overhead.py"}),
                            ("whole", {p.name for p in (TOOLS.parent / "benchmarks").glob("test_*.py")})):
        workdir = tmp_path / suite
        workdir.mkdir()
        selection = tools.gate.prepare(workdir, suite)
        assert {p.name for p in workdir.glob("test_*.py")} == expected
        assert selection == (["."] if suite == "whole" else sorted(expected))
        text = (workdir / "conftest.py").read_text()
        ast.parse(text)
        assert text.startswith((TOOLS.parent / "benchmarks" / "conftest.py").read_text().rstrip("\n"))
        assert all(var in text for var in tools.common.SLOWDOWN_ENV.values())
    with pytest.raises(ValueError, match="suite must be"):
        tools.gate.prepare(tmp_path, "some")


@pytest.mark.parametrize("plant", ["inference", "training"])
def test_plant_source_wraps_only_the_planted_function(tools, plant):
    source = (TOOLS.parent / tools.common.MODELS_PATH).read_text()
    planted = tools.common.plant_source(source, plant, 1.3)
    name = tools.common.PLANTED_FUNCTION[plant]
    func = next(n for n in ast.parse(planted).body if isinstance(n, ast.FunctionDef) and n.name == name)
    assert isinstance(func.body[-1], ast.Return) and "1.3" in ast.unparse(func.body[-1])
    import difflib

    diff = "".join(difflib.unified_diff(source.splitlines(True), planted.splitlines(True), n=0))
    assert tools.common.hunks_outside(diff, source, planted, name) == []
    other = "make_evaluate"  # the check is not vacuous: the same diff lies outside another function
    assert tools.common.hunks_outside(diff, source, planted, other)
    with pytest.raises(ValueError, match="factor"):
        tools.common.plant_source(source, plant, 1.0)
    with pytest.raises(ValueError, match="plant must be"):
        tools.common.plant_source(source, "eval", 2.0)


def test_changed_ranges_reads_git_hunk_headers(tools):
    diff = "@@ -212 +212,3 @@ def f\n+x\n@@ -300,2 +302,0 @@\n-y\n"
    assert tools.common.changed_ranges(diff) == [((212, 1), (212, 3)), ((300, 2), (302, 0))]


@pytest.mark.parametrize("plant", ["none", "inference", "training"])
def test_the_plant_commit_in_a_clone_touches_one_file_inside_the_function(tools, tmp_path, plant):
    clone = tmp_path / "clone"
    sha = tools.ab.clone_head(tools.ab.REPO, clone)
    assert tools.ab.git(clone, "rev-parse", "HEAD").strip() == sha
    info = tools.ab.plant_commit(clone, plant, 1.3)
    assert info["files"] == ([] if plant == "none" else [tools.common.MODELS_PATH])
    assert tools.ab.git(clone, "rev-parse", "HEAD~1").strip() == sha
    stat = tools.ab.git(clone, "diff", "HEAD~1", "--stat")
    assert stat.count("|") == (0 if plant == "none" else 1)
    assert not tools.ab.git(clone, "status", "--porcelain")
    assert tools.ab.imported_from(clone) == (clone / "pytest_energy" / "__init__.py").resolve()
    if plant != "none":
        assert f"_planted_slower_{'predict' if plant == 'inference' else 'train_step'}" in tools.ab.git(
            clone, "show", f"HEAD:{tools.common.MODELS_PATH}")


def test_check_plant_refuses_a_commit_outside_the_function_or_in_another_file(tools, tmp_path):
    clone = tmp_path / "clone"
    tools.ab.clone_head(tools.ab.REPO, clone)
    models = clone / tools.common.MODELS_PATH
    models.write_text(models.read_text() + "\nPLANTED = True\n")
    tools.ab.git(clone, *tools.ab.GIT_ID, "commit", "-q", "-am", "outside")
    with pytest.raises(RuntimeError, match="outside make_predict"):
        tools.ab.check_plant(clone, "inference")
    (clone / "README.md").write_text("changed\n")
    tools.ab.git(clone, *tools.ab.GIT_ID, "commit", "-q", "-am", "another file")
    with pytest.raises(RuntimeError, match="changes"):
        tools.ab.check_plant(clone, "inference")
    with pytest.raises(RuntimeError, match="changes"):
        tools.ab.check_plant(clone, "none")


# --- reading a run -------------------------------------------------------------------------------------------

SAMPLE = """\
.FF                                                                      [100%]
=================================== FAILURES ===================================
______________________________ test_inference[1] _______________________________
energy regression against baselines/test_inference.json:
  inference.duration_s: 7.849 s -> 10.26 s (+30.7 %, p<0.001, tolerance 8 %, A/B against 1a2b3c4 in this job, \
6 pairs: ratio 1.31 [1.24, 1.39]) REGRESSION
    history: INCONCLUSIVE +12 %
  inference.energy_j: 78.15 J -> 101.2 J (+29.5 %, p=0.003, tolerance 8 %, history: 3 runs) REGRESSION
    confirmed by 2 re-runs: +31 %, +28 %, +33 %
----------------------------- Captured stdout call -----------------------------
[synthetic / embedded] 500 examples at batch 1: 0.3224 J/example
==================================== energy ====================================
test_finetune_to_cutoff  0.9        yes        40       0.91     69.36 s       525.6 J         12.86 s      15.6 %
test_inference[1]   500         1        0.3224 J     34.51 ms        32.75 ms  58.86 ms  29.17 /s  0.914 accuracy
test_inference[32]  500         32       0.1328 J     13.69 ms        13.41 ms  17.19 ms  73.26 /s  0.914 accuracy
test_inference[32]  inference.energy_j  34.21 J  36.9 J  +7.9 %  history: 3 runs  PASS (not confirmed: a transient, \
re-runs +1 %, -2 %)
second look: A/B of 2 tests against 1a2b3c4 cost 184.2 s (12 pairs)
confirmation took 95.0 s (2 re-runs of 1 test)
HULK scores against a stored reference
footprint of one round of each benchmark: 0.000164 kWh, 0.071 g CO2e
=========================== short test summary info ============================
FAILED test_inference.py::test_inference[1] - energy regression
2 failed, 1 passed in 120.98s (0:02:00)
"""


def test_parse_output_finds_failures_verdicts_second_looks_and_costs(tools):
    p = tools.common.parse_output(SAMPLE)
    assert p["failed"] == ["test_inference.py::test_inference[1]"]
    assert len(p["regression_lines"]) == 2 and all(ln.endswith("REGRESSION") for ln in p["regression_lines"])
    assert p["ab"] == [{"base": "1a2b3c4", "pairs": 6, "ratio": 1.31, "interval": [1.24, 1.39]}]
    assert any(ln.startswith("confirmed by 2 re-runs") for ln in p["recheck_lines"])
    assert any("not confirmed: a transient" in ln for ln in p["recheck_lines"])
    assert p["screens"] == ["history: INCONCLUSIVE"]
    assert p["cost_lines"] == ["second look: A/B of 2 tests against 1a2b3c4 cost 184.2 s (12 pairs)",
                               "confirmation took 95.0 s (2 re-runs of 1 test)"]
    assert p["finetune"] == {"test_finetune_to_cutoff": {"reached": True, "steps": 40, "score": "0.91"}}
    assert p["inference"] == {"test_inference[1]": {"examples": 500, "accuracy": "0.914"},
                              "test_inference[32]": {"examples": 500, "accuracy": "0.914"}}
    assert p["session"] == "2 failed, 1 passed"


def test_parse_output_of_a_quiet_run_finds_nothing_to_report(tools):
    p = tools.common.parse_output("...\n3 passed in 60.1s (0:01:00)\n")
    assert p["failed"] == [] and p["recheck_lines"] == [] and p["ab"] == [] and p["cost_lines"] == []
    assert p["session"] == "3 passed"


def _ab_run_result():
    """A run whose test_inference[1] an A/B convicted after the history screen said INCONCLUSIVE, as pytest-energy
    itself records it: what the tools read is what the plugin writes, not a hand-made sample of it."""
    from pytest_energy.config import SessionConfig, TestSettings
    from pytest_energy.records import (BenchmarkResult, Better, DeviceInfo, Kind, MeterInfo, Method, Metric, Outcome,
                                       Recheck, RuleKind, RunResult, TestRecord, Verdict, VerdictKind)

    ab = Verdict("inference.energy_j", "J", Kind.MEASURED, Better.LOWER, VerdictKind.REGRESSION, 66.0, 85.7, 29.8, None,
                 0.08, 7, 7, rule="A/B against 1a2b3c4 in this job, 7 pairs: ratio 1.30 [1.05, 1.61]",
                 rule_kind=RuleKind.AB, screen="history: 3 runs, pooled: INCONCLUSIVE +21 %",
                 pairs=((66.0, 85.0),) * 7, ratio_interval=(1.05, 1.61))
    same = Verdict("inference.duration_s", "s", Kind.MEASURED, Better.LOWER, VerdictKind.PASS, 6.6, 6.7, 1.5, 0.4,
                   0.08, 3, 3, rule="history: 3 runs, pooled", rule_kind=RuleKind.HISTORY)
    benchmarks = []
    for name, verdicts, recheck in (
            ("test_inference[1]", [ab, same], Recheck("a/b", "A/B against 1a2b3c4, 7 pairs: REGRESSION", 388.0, 7,
                                                      "1a2b3c4", ("AB", "BA") * 3 + ("AB",))),
            ("test_finetune_to_cutoff", [], None)):
        record = TestRecord(f"benchmarks/test_x.py::{name}", name)
        record.metrics["energy_j"] = Metric("energy_j", "J", samples=[1.0, 1.0, 1.0], method="rapl")
        record.metrics["duration_s"] = Metric("duration_s", "s", samples=[1.0, 1.0, 1.0])
        benchmarks.append(BenchmarkResult(record, TestSettings(), Outcome(verdicts=verdicts, recheck=recheck)))
    meter = MeterInfo("rapl", (DeviceInfo("cpu-package-0", "Xeon", Method.RAPL),))
    return RunResult(meter, SessionConfig(rootdir="/r", baseline_dir="/r/baselines"), benchmarks)


def test_read_report_reads_what_the_plugin_writes_and_tolerates_what_is_missing(tools, tmp_path):
    from pytest_energy.report.json import build_report, json_text

    path = tmp_path / "r.json"
    path.write_text(json_text(build_report(_ab_run_result())))
    tests = tools.common.read_report(path)
    inf = tests["benchmarks/test_x.py::test_inference[1]"]
    assert inf["regressions"] == ["inference.energy_j"]
    assert inf["screen"] == ["history: 3 runs, pooled: INCONCLUSIVE +21 %"]
    assert inf["rules"] == ["A/B against 1a2b3c4 in this job, 7 pairs: ratio 1.30 [1.05, 1.61]"]
    assert inf["recheck"]["cost_s"] == 388.0 and inf["ratio_interval"] == {"inference.energy_j": [1.05, 1.61]}
    assert tests["benchmarks/test_x.py::test_finetune_to_cutoff"]["regressions"] == []
    assert tools.common.read_report(tmp_path / "missing.json") == {}
    # and the A/B summary counts it as detected where the history screen said INCONCLUSIVE
    assert tools.ab.history_inconclusive({"report": tests, "screens": []}, "test_inference")


def test_parse_output_reads_the_screen_from_the_failure_message_the_plugin_writes(tools):
    from pytest_energy.report.format import failure_message

    [inference, _] = _ab_run_result().benchmarks
    text = failure_message(inference.outcome)
    p = tools.common.parse_output(text)
    assert p["screens"] == ["history: 3 runs, pooled: INCONCLUSIVE"]
    # a verdict table row or a history verdict line names the rule too, but is no screen
    rows = ("test_inference[1]  inference.energy_j  73.21 J  150.4 J  +105.4 %  0.00023  history: 3 runs, pooled"
            "      REGRESSION (confirmed)\n  inference.energy_j: 78.15 J -> 101.2 J (+29.5 %, p=0.003, tolerance 8 %, "
            "history: 3 runs) REGRESSION\n")
    assert tools.common.parse_output(rows)["screens"] == []


# --- plans and summaries -------------------------------------------------------------------------------------

def run(index, kind, *, exit=0, failed=(), beside=False, finetune=None, lines=()):
    return {"index": index, "kind": kind, "exit": exit, "failed": list(failed), "neighbour": beside,
            "factor": 2.0, "regression_lines": list(lines), "finetune": finetune or {}, "inference": {}}


def test_gate_plan_puts_the_neighbour_beside_the_last_runs_of_each_kind(tools):
    plan = tools.gate.make_plan(2, 4, 3, 2)
    assert [k for k, _, _, _ in plan] == ["save"] * 2 + ["unchanged"] * 4 + ["planted"] * 3
    assert [b for _, _, b, _ in plan] == [False] * 2 + [False, False, True, True] + [False, True, True]
    assert [s for _, s, _, _ in plan] == [True] * 2 + [False] * 7
    assert [p for _, _, _, p in plan] == ["none"] * 6 + ["inference"] * 3


def test_gate_plan_lets_two_plants_take_turns_with_their_own_neighbour_count(tools):
    plan = tools.gate.make_plan(0, 2, 3, 1, ("inference", "training"), planted_neighbour_runs=2)
    assert [(k, b, p) for k, _, b, p in plan] == [
        ("unchanged", False, "none"), ("unchanged", True, "none"),
        ("planted", False, "inference"), ("planted", False, "training"),
        ("planted", True, "inference"), ("planted", True, "training"),
        ("planted", True, "inference"), ("planted", True, "training")]


def test_gate_summary_counts_each_plant_apart(tools):
    runs = [run(1, "unchanged"),
            dict(run(2, "planted", exit=1, failed=["t.py::test_inference[1]"]), plant="inference"),
            dict(run(3, "planted", exit=1, failed=["t.py::test_inference[1]"]), plant="training"),
            dict(run(4, "planted", exit=1, failed=["t.py::test_finetune_to_cutoff"], beside=True), plant="training")]
    s = tools.gate.summarize(runs, "inference,training", saves=0)
    assert s["by_plant"]["inference"]["all"] == {"runs": 1, "detected": 1}
    assert s["by_plant"]["training"]["all"] == {"runs": 2, "detected": 1}
    assert s["by_plant"]["training"]["neighbour"] == {"runs": 1, "detected": 1}
    assert s["planted_all"] == {"runs": 3, "detected": 2}
    assert [p for p in s["problems"] if "run 3" in p] and not [p for p in s["problems"] if "run 4" in p]


def test_gate_summary_counts_false_alarms_and_detections_with_and_without_the_neighbour(tools):
    steps = {"test_finetune_to_cutoff": {"reached": True, "steps": 40, "score": "0.91"}}
    history_line = "finetune.duration_s: 46 s -> 92 s (+100 %, p=0.001, tolerance 8 %, history: 3 runs) REGRESSION"
    runs = [run(1, "save", finetune=steps), run(2, "unchanged", finetune=steps),
            run(3, "unchanged", exit=1, failed=["t.py::test_inference[1]"], beside=True),
            run(4, "planted", exit=1, failed=["t.py::test_finetune_to_cutoff"], finetune=steps, lines=[history_line]),
            run(5, "planted", exit=0, beside=True, finetune=steps)]
    s = tools.gate.summarize(runs, "training", saves=3)
    assert s["unchanged_all"] == {"runs": 2, "failing": 1, "tests": {"t.py::test_inference[1]": 1}}
    assert s["unchanged_neighbour"]["failing"] == 1 and s["unchanged_quiet"]["failing"] == 0
    assert s["planted_all"] == {"runs": 2, "detected": 1}
    assert s["planted_quiet"]["detected"] == 1 and s["planted_neighbour"]["detected"] == 0
    assert len(s["problems"]) == 2  # the false alarm and the missed planted run
    s = tools.gate.summarize(runs[:2] + runs[3:4], "training", saves=3, max_false_alarms=1)
    assert s["problems"] == []
    changed = dict(runs[3], finetune={"test_finetune_to_cutoff": {"reached": True, "steps": 41, "score": "0.91"}})
    s = tools.gate.summarize(runs[:2] + [changed], "training", saves=3)
    assert any("differ" in p for p in s["problems"])
    s = tools.gate.summarize(runs[:2] + [dict(runs[3], regression_lines=[])], "training", saves=3)
    assert any("history rule" in p for p in s["problems"])


def test_gate_summary_of_planted_runs_alone_does_not_claim_their_results_changed(tools, capsys):
    # --saves 0 --unchanged 0 (continuing a history) has no unplanted run of its own to compare results with
    steps = {"test_finetune_to_cutoff": {"reached": True, "steps": 40, "score": "0.91"}}
    planted = [dict(run(1, "planted", exit=1, failed=["t.py::test_finetune_to_cutoff"], finetune=steps),
                    plant="training")]
    tools.gate.print_summary(tools.gate.summarize(planted, "training", saves=0), 2.0)
    out = capsys.readouterr().out
    assert "no unplanted run in this invocation to compare" in out and "NO" not in out
    tools.gate.print_summary(tools.gate.summarize([run(2, "save", finetune=steps)] + planted, "training", saves=0), 2.0)
    assert "unchanged by the plant: yes" in capsys.readouterr().out


def test_gate_cli_refuses_bad_settings(tools, tmp_path):
    # --saves 0 continues a scenario only where its saved runs are: an empty workdir has no history to judge by.
    for argv in (["--saves", "0"], ["--saves", "0", "--workdir", str(tmp_path)], ["--factor", "1.0"],
                 ["--neighbour-runs", "-1"], ["--planted-neighbour-runs", "-1"], ["--plant", "eval"],
                 ["--plant", "inference,inference"], ["--plant", "inference,eval"]):
        with pytest.raises(SystemExit):
            tools.gate.main(argv)


def test_ab_plan_and_summary(tools):
    assert tools.ab.make_plan(4, 1, 2) == [(True, False), (False, False), (False, True), (False, True)]

    def ab_run(index, *, exit=0, failed=(), empty=False, beside=False, detected=False, inconclusive=False):
        return {"index": index, "exit": exit, "failed": list(failed), "empty_baselines": empty, "neighbour": beside,
                "detected": detected, "history_inconclusive": inconclusive}

    unchanged = [ab_run(1, empty=True), ab_run(2), ab_run(3, beside=True, exit=1, failed=["x::test_inference[1]"])]
    s = tools.ab.summarize(unchanged, "none")
    assert s["groups"]["no baselines"] == {"runs": 1, "failing": 0, "detected": 0, "tests": {}}
    assert s["groups"]["neighbour"]["tests"] == {"x::test_inference[1]": 1}
    assert len(s["problems"]) == 1
    planted = [ab_run(1, exit=1, detected=True, inconclusive=True), ab_run(2, exit=1, detected=True), ab_run(3)]
    s = tools.ab.summarize(planted, "inference")
    assert s["detected"] == 2 and s["detected_where_history_inconclusive"] == 1 and len(s["problems"]) == 1
    assert tools.ab.summarize(planted, "inference", min_detected=2)["problems"] == []


def test_ab_history_screen_is_read_from_the_report_first(tools):
    r = {"report": {"b/test_inference.py::test_inference[1]": {"screen": ["history: INCONCLUSIVE +12 %"]}},
         "screens": []}
    assert tools.ab.history_inconclusive(r, "test_inference")
    assert not tools.ab.history_inconclusive(r, "test_finetune_to_cutoff")
    assert tools.ab.history_inconclusive({"report": {}, "screens": ["history: INCONCLUSIVE"]}, "test_inference")


def test_ab_command_runs_the_protocol_tests_against_the_base_with_the_clone_on_the_path(tools, tmp_path):
    cmd = tools.ab.pytest_cmd(against="HEAD~1", baseline_dir=tmp_path, save=False, report=tmp_path / "r.json",
                              extra_args=["--energy-confirm", "2"])
    assert cmd[1:3] == ["-m", "pytest"] and list(tools.ab.PROTOCOL_TESTS) == cmd[3:5]
    assert cmd[cmd.index("--energy-against") + 1] == "HEAD~1" and cmd[-2:] == ["--energy-confirm", "2"]
    assert "--energy-save-baseline" not in cmd
    assert tools.ab.clone_env(tmp_path)["PYTHONPATH"] == str(tmp_path)


# --- the noisy neighbour -------------------------------------------------------------------------------------

def alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_gone(pid: int, timeout_s: float = 5.0) -> bool:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_the_neighbour_runs_inside_the_block_and_not_after(tools):
    import noisy_neighbour

    with noisy_neighbour.neighbour(cores=2) as procs:
        assert len(procs) == 2 and all(p.poll() is None for p in procs)
        pids = [p.pid for p in procs]
    assert all(p.returncode is not None for p in procs) and not any(alive(pid) for pid in pids)
    with pytest.raises(ValueError):
        with noisy_neighbour.neighbour(cores=0):
            pass
    assert noisy_neighbour.spin(seconds=0.05) > 0


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_the_neighbour_dies_with_a_killed_parent(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(f"import sys, time\nsys.path.insert(0, {str(TOOLS)!r})\nfrom noisy_neighbour import neighbour\n"
                      "with neighbour(cores=1) as procs:\n    print(procs[0].pid, flush=True)\n    time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        assert alive(child)
    finally:
        parent.kill()  # no cleanup code of the parent runs: only the child's own watch can end it
        parent.wait()
        parent.stdout.close()
    assert wait_gone(child), "the neighbour outlived its killed parent"


def test_ab_cli_refuses_a_baseline_folder_that_holds_nothing_or_comes_with_saves(tools, tmp_path):
    (tmp_path / "saved").mkdir()
    for argv in (["--baselines", str(tmp_path / "saved")], ["--baselines", str(tmp_path / "absent")]):
        with pytest.raises(SystemExit):
            tools.ab.main(argv)
    (tmp_path / "saved" / "benchmarks__test_inference.json").write_text("{}")
    with pytest.raises(SystemExit):
        tools.ab.main(["--baselines", str(tmp_path / "saved"), "--saves", "1"])
