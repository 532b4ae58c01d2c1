"""The second look of issue 16, end to end: confirm a suspicion by re-running the test, or A/B it against a base
revision in a tiny git repository; and every fault of the A/B path.

The tests burn CPU for a few tens of milliseconds per call (the 'estimate' meter turns CPU time into energy),
and a planted slowdown multiplies that time: deterministic enough to decide in a few rounds or pairs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

RUN = ["--energy", "--energy-meter", "estimate", "--energy-min-round-s", "0", "-p", "no:randomly"]

BUSY = '''
import time


def busy(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
'''

# SLOW: "" (unchanged), "always" (a regression that persists) or "first" (only the first run of the session is
# slow: a burst). Each call appends the xdist worker that ran it to calls.txt.
CONFIRM_TEST = '''
import os
import pathlib

import pytest

from busy import busy


@pytest.mark.energy(rounds=5, warmup=0)
def test_slow():
    calls = pathlib.Path("calls.txt")
    n = len(calls.read_text().split()) if calls.exists() else 0
    with calls.open("a") as f:
        f.write((os.environ.get("PYTEST_XDIST_WORKER") or "main") + "\\n")
    mode = os.environ.get("SLOW", "")
    if mode == "flaky" and n >= 5:
        raise AssertionError("flaky on its re-run")
    busy(0.01 * (25.0 if mode == "always" or (mode in ("first", "flaky") and n < 5) else 1.0))


@pytest.mark.energy(rounds=3, warmup=0)
def test_steady():
    busy(0.02)
'''


def _verdicts(report_path):
    doc = json.loads(report_path.read_text())
    out = {}
    for bench in doc["benchmarks"]:
        comparison = bench["energy"].get("comparison") or {}
        out[bench["name"]] = comparison
    return doc, out


def _saved(pytester, runs=3, *args):
    for _ in range(runs):
        result = pytester.runpytest_subprocess(*RUN, "--energy-save-baseline", *args)
        assert result.ret == 0, result.stdout.str()


def _outcome(doc, name):
    from pytest_energy.records import RunResult

    run = RunResult.from_report(doc)
    return next(b for b in run.benchmarks if b.record.name == name).outcome


@pytest.fixture
def confirm_suite(pytester, monkeypatch):
    pytester.makepyfile(busy=BUSY, test_confirm=CONFIRM_TEST)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(pytester.path), os.environ.get("PYTHONPATH"))
                                                     if p))
    monkeypatch.delenv("SLOW", raising=False)
    # Five saved runs, not three: with three the history's t has 2 df (critical 22 at alpha 0.001), and on a loaded
    # machine (a benchmark beside the suite) the spread of 10 ms busy loops made even the planted 25x INCONCLUSIVE.
    _saved(pytester, runs=5)
    (pytester.path / "calls.txt").unlink()
    return pytester


@pytest.mark.slow
def test_a_persistent_regression_is_confirmed_by_its_reruns_and_fails(confirm_suite, monkeypatch):
    monkeypatch.setenv("SLOW", "always")
    result = confirm_suite.runpytest_subprocess(*RUN, "--energy-json", "e.json")
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(["*confirmed by 3 re-runs: +*"])
    outcome = _outcome(json.loads((confirm_suite.path / "e.json").read_text()), "test_slow")
    assert outcome.recheck is not None and outcome.recheck.how == "confirm" and outcome.recheck.runs == 3
    assert outcome.recheck.cost_s > 0
    confirmed = [v for v in outcome.verdicts if v.confirmation.startswith("confirmed by 3 re-runs")]
    assert confirmed and all(v.verdict == "REGRESSION" for v in confirmed)
    # the JSON report keeps each re-run's figures, not only the text: 3 re-runs, each slower and significant
    for v in confirmed:
        assert len(v.reruns) == 3
        assert all(r.change_pct > 100 and r.p_value < 0.01 and r.current_value > v.baseline_value for r in v.reruns)
    # 5 rounds in the first run and in each of the 3 re-runs
    assert len((confirm_suite.path / "calls.txt").read_text().split()) == 20


@pytest.mark.slow
def test_a_burst_is_not_confirmed_and_passes_visibly(confirm_suite, monkeypatch):
    monkeypatch.setenv("SLOW", "first")
    result = confirm_suite.runpytest_subprocess(*RUN, "--energy-json", "e.json")
    assert result.ret == 0, result.stdout.str()
    outcome = _outcome(json.loads((confirm_suite.path / "e.json").read_text()), "test_slow")
    assert outcome.recheck is not None and outcome.recheck.text.startswith("not confirmed")
    transient = [v for v in outcome.verdicts if v.confirmation.startswith("not confirmed: a transient")]
    assert transient and all(v.verdict == "PASS" and len(v.reruns) == 1 for v in transient)
    assert outcome.recheck.runs == 1  # rule "all": the first re-run that is not convicted settles it
    result.stdout.fnmatch_lines(["*not confirmed: a transient*"])


@pytest.mark.slow
def test_confirm_0_fails_on_the_first_conviction_and_reruns_nothing(confirm_suite, monkeypatch):
    monkeypatch.setenv("SLOW", "always")
    result = confirm_suite.runpytest_subprocess(*RUN, "--energy-confirm", "0", "--energy-json", "e.json")
    assert result.ret == 1, result.stdout.str()
    outcome = _outcome(json.loads((confirm_suite.path / "e.json").read_text()), "test_slow")
    assert outcome.recheck is None
    assert len((confirm_suite.path / "calls.txt").read_text().split()) == 5


@pytest.mark.slow
def test_under_xdist_the_reruns_happen_on_the_worker_that_measured_the_test(confirm_suite, monkeypatch):
    monkeypatch.setenv("SLOW", "always")
    result = confirm_suite.runpytest_subprocess(*RUN, "-n", "2", "--energy-json", "e.json")
    assert result.ret == 1, result.stdout.str()
    workers = (confirm_suite.path / "calls.txt").read_text().split()
    assert len(workers) == 20 and len(set(workers)) == 1 and workers[0].startswith("gw"), workers
    result.stdout.fnmatch_lines(["*confirmed by 3 re-runs*"])


@pytest.mark.slow
@pytest.mark.parametrize("siblings", [0, 1])
def test_a_lone_test_using_the_energy_fixture_gets_every_rerun(pytester, monkeypatch, siblings):
    """One held test re-run twice in a row: its function-scoped `energy` fixture must be torn down and set up
    again between the re-runs (the next item pytest is told about must not be the test itself)."""
    others = "".join(f"\n\ndef test_other_{i}():\n    pass\n" for i in range(siblings))
    pytester.makepyfile(busy=BUSY, test_fixture_confirm='''
import os
import pathlib

import pytest

from busy import busy


@pytest.mark.energy(rounds=5, warmup=0)
def test_slow(energy):
    calls = pathlib.Path("calls.txt")
    n = len(calls.read_text().split()) if calls.exists() else 0
    with calls.open("a") as f:
        f.write("x\\n")
    slow = os.environ.get("SLOW") == "always"
    energy(lambda: busy(0.01 * (25.0 if slow else 1.0)))
''' + others)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(pytester.path), os.environ.get("PYTHONPATH"))
                                                     if p))
    monkeypatch.delenv("SLOW", raising=False)
    _saved(pytester)
    monkeypatch.setenv("SLOW", "always")
    result = pytester.runpytest_subprocess(*RUN, "--energy-json", "e.json")
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(["*confirmed by 3 re-runs: +*"])
    outcome = _outcome(json.loads((pytester.path / "e.json").read_text()), "test_slow")
    assert outcome.recheck.runs == 3


@pytest.mark.slow
def test_a_rerun_that_fails_fails_the_test_with_its_error(confirm_suite, monkeypatch):
    monkeypatch.setenv("SLOW", "flaky")
    result = confirm_suite.runpytest_subprocess(*RUN)
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(["*re-running the suspected test to confirm it failed*", "*flaky on its re-run*"])


def test_an_unsuspected_run_is_reported_as_before(pytester):
    """Nothing held, nothing re-run: the reports come in pytest's order, one per phase."""
    pytester.makepyfile(test_plain='''
import pytest

@pytest.mark.energy(rounds=1, warmup=0)
def test_one():
    pass

def test_two():
    pass
''')
    result = pytester.runpytest_subprocess(*RUN, "-v")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*test_one PASSED*", "*test_two PASSED*"])


# --- A/B against a base revision ----------------------------------------------------------------------------

WORK = '''
import os
import time

FACTOR = {factor}


def busy(seconds):
    log = os.environ.get("WORK_IMPORTS")
    if log:
        with open(log, "a") as f:
            f.write(__file__ + "\\n")
    end = time.perf_counter() + seconds * FACTOR
    while time.perf_counter() < end:
        pass
'''

AB_TEST = '''
import pytest

import work


@pytest.mark.energy(rounds=3, warmup=0)
def test_work():
    work.busy(0.04)
'''


def _git(path, *args):
    return subprocess.run(["git", *args], cwd=path, check=True, capture_output=True, text=True).stdout.strip()


def _worktrees(path):
    return [line for line in _git(path, "worktree", "list", "--porcelain").splitlines() if line.startswith("worktree ")]


@pytest.fixture
def repo(pytester, monkeypatch):
    """A git repository with a base commit; the test adds the head commit. The repository's folder leads the
    parent run's PYTHONPATH, as an editable install of the head would: the base must still import its own code."""
    pytester.makepyfile(work=WORK.format(factor=1.0), test_ab=AB_TEST)
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider\n")
    # pytester itself writes stdout, stderr and runpytest-current beside the repository files
    (pytester.path / ".gitignore").write_text("baselines/\n*.json\nimports.txt\nstdout\nstderr\nrunpytest-current\n")
    _git(pytester.path, "init", "-q")
    _git(pytester.path, "config", "user.email", "ci@example.com")
    _git(pytester.path, "config", "user.name", "ci")
    _git(pytester.path, "add", "-A")
    _git(pytester.path, "commit", "-qm", "base")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(pytester.path), os.environ.get("PYTHONPATH"))
                                                     if p))
    monkeypatch.setenv("WORK_IMPORTS", str(pytester.path / "imports.txt"))
    return pytester


def _commit(pytester, message, factor=None, files=None):
    if factor is not None:
        (pytester.path / "work.py").write_text(WORK.format(factor=factor))
    for name, text in (files or {}).items():
        (pytester.path / name).write_text(text)
    _git(pytester.path, "add", "-A")
    _git(pytester.path, "commit", "-qm", message)


AB = [*RUN, "--energy-against", "HEAD~1", "--energy-max-pairs", "6", "--energy-json", "e.json"]


@pytest.mark.slow
def test_ab_fails_a_planted_slowdown_with_the_base_code_from_the_worktree(repo):
    _commit(repo, "slower", factor=1.6)
    base = _git(repo.path, "rev-parse", "--short=7", "HEAD~1")
    result = repo.runpytest_subprocess(*AB)
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines([f"*A/B against {base} in this job, * pairs: ratio 1.* REGRESSION*"])
    outcome = _outcome(json.loads((repo.path / "e.json").read_text()), "test_work")
    ab = [v for v in outcome.verdicts if v.by_ab]
    assert ab and any(v.verdict == "REGRESSION" for v in ab)
    assert all(len(v.pairs) >= 3 for v in ab) and outcome.recheck.base_ref == base
    assert set(outcome.recheck.orders) <= {"AB", "BA"} and len(outcome.recheck.orders) == outcome.recheck.runs
    assert all(v.screen == "no baseline" for v in ab)
    # The base's processes imported work.py from the temporary worktree, the head's from the checkout.
    imports = set((repo.path / "imports.txt").read_text().split())
    assert str(repo.path / "work.py") in imports
    assert any("pytest-energy-base-" in p for p in imports), imports
    assert len(_worktrees(repo.path)) == 1
    assert _git(repo.path, "status", "--porcelain") == ""


@pytest.mark.slow
def test_ab_passes_unchanged_code_and_writes_nothing_into_the_checkout(repo):
    _commit(repo, "docs only", files={"README.md": "no code change\n"})
    result = repo.runpytest_subprocess(*AB)
    assert result.ret == 0, result.stdout.str()
    outcome = _outcome(json.loads((repo.path / "e.json").read_text()), "test_work")
    assert outcome.recheck is not None and outcome.recheck.how == "a/b"
    assert not [v for v in outcome.verdicts if v.verdict == "REGRESSION"]
    assert len(_worktrees(repo.path)) == 1
    assert _git(repo.path, "status", "--porcelain") == ""


@pytest.mark.slow
def test_an_unflagged_run_measures_nothing_at_the_base_and_says_so(repo):
    saved = repo.runpytest_subprocess(*RUN, "--energy-save-baseline")
    assert saved.ret == 0, saved.stdout.str()
    _commit(repo, "docs only", files={"README.md": "no code change\n"})
    base = _git(repo.path, "rev-parse", "--short=7", "HEAD~1")
    (repo.path / "imports.txt").unlink()
    # A tolerance no unchanged run exceeds: the screen (the within-run rule, one save) flags nothing.
    result = repo.runpytest_subprocess(*AB, "--energy-tolerance", "100%")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["second look in this job", f"A/B against {base}: the history screen flagged no test, "
                                 "so nothing was measured against the base (no cost)"])
    doc = json.loads((repo.path / "e.json").read_text())
    assert doc["energy"]["ab_base"] == base and _outcome(doc, "test_work").recheck is None
    # No child process ran: work.py was imported by this run alone, from the checkout; no worktree was made.
    assert set((repo.path / "imports.txt").read_text().split()) == {str(repo.path / "work.py")}
    assert len(_worktrees(repo.path)) == 1


@pytest.mark.slow
def test_a_test_missing_at_the_base_has_no_base_to_compare(repo):
    _commit(repo, "new test", files={"test_new.py": AB_TEST.replace("test_work", "test_new")})
    result = repo.runpytest_subprocess(*AB, "test_new.py")
    assert result.ret == 0, result.stdout.str()
    outcome = _outcome(json.loads((repo.path / "e.json").read_text()), "test_new")
    assert outcome.recheck.no_base and "no base to compare" in outcome.recheck.text
    assert {v.verdict for v in outcome.verdicts if v.by_ab} == {"NO_BASELINE"}


@pytest.mark.slow
def test_a_test_failing_at_the_base_has_no_base_to_compare(repo):
    failing = AB_TEST.replace("work.busy(0.04)", "raise AssertionError('broken at the base')")
    (repo.path / "test_ab.py").write_text(failing)
    _commit(repo, "broken test")
    _commit(repo, "fixed test", files={"test_ab.py": AB_TEST})
    result = repo.runpytest_subprocess(*AB)
    assert result.ret == 0, result.stdout.str()
    outcome = _outcome(json.loads((repo.path / "e.json").read_text()), "test_work")
    assert outcome.recheck.no_base and "failed" in outcome.recheck.no_base
    assert not [v for v in outcome.verdicts if v.verdict in ("REGRESSION", "PASS") and v.by_ab]


def test_a_revision_the_clone_lacks_is_a_usage_error_that_says_how_to_fetch_it(repo):
    result = repo.runpytest_subprocess(*RUN, "--energy-against", "0123456789abcdef0123456789abcdef01234567")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*is not a commit in this clone*git fetch --no-tags --depth=1 origin 0123456789ab*"])
    result = repo.runpytest_subprocess(*RUN, "--energy-against", "feature-x")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*git fetch --no-tags --depth=50 origin feature-x:refs/remotes/origin/feature-x*"])


def test_against_outside_a_git_checkout_and_against_all_alone_are_usage_errors(pytester, tmp_path):
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess(*RUN, "--energy-against", "HEAD~1", "--rootdir", str(pytester.path))
    if result.ret != 4:  # pytester folders may sit inside a git checkout on some machines
        pytest.skip("the pytester folder is inside a git checkout here")
    result.stderr.fnmatch_lines(["*is not in a git checkout*"])
    result = pytester.runpytest_subprocess(*RUN, "--energy-against-all")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--energy-against-all*needs --energy-against*"])
    for args, words in ((["--energy-max-pairs", "2"], "*--energy-max-pairs*must be >= 3*"),
                        (["--energy-confirm", "-1"], "*--energy-confirm*must be >= 0*")):
        result = pytester.runpytest_subprocess(*RUN, *args)
        assert result.ret == 4
        result.stderr.fnmatch_lines([words])


def test_auto_uses_the_pull_requests_base_from_the_ci_environment(repo, monkeypatch):
    from pytest_energy.errors import UsageError
    from pytest_energy.recheck.git import resolve_base

    _commit(repo, "head", files={"README.md": "x\n"})
    _git(repo.path, "update-ref", "refs/remotes/origin/main", _git(repo.path, "rev-parse", "HEAD~1"))
    base = resolve_base("auto", repo.path, env={"GITHUB_BASE_REF": "main"})
    assert base.sha == _git(repo.path, "rev-parse", "HEAD~1") and base.ref == "origin/main"
    with pytest.raises(UsageError, match="git fetch --no-tags --depth=50 origin release:refs/remotes/origin/release"):
        resolve_base("auto", repo.path, env={"GITHUB_BASE_REF": "release"})
    # no CI variables: the merge-base with the default branch; on the default branch itself, its previous commit
    base = resolve_base("auto", repo.path, env={})
    assert base.sha == _git(repo.path, "rev-parse", "HEAD~1")


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a process group")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_during_the_ab_removes_the_worktree(repo, signum):
    _commit(repo, "slower", factor=1.0001)
    env = dict(os.environ)
    proc = subprocess.Popen([sys.executable, "-m", "pytest", *AB[:-2], "--energy-max-pairs", "30",
                             "--energy-against-all"], cwd=repo.path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(_worktrees(repo.path)) < 2:
            assert time.monotonic() < deadline and proc.poll() is None, "the A/B never opened its worktree"
            time.sleep(0.2)
        time.sleep(1.0)
        os.killpg(proc.pid, signum)  # SIGTERM: a cancelled CI job
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert len(_worktrees(repo.path)) == 1
    assert _git(repo.path, "status", "--porcelain") == ""
