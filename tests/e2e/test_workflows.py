"""The GPU workflow parses, runs the doctor before the suite on each runner, spreads the suite over the runner's
GPUs, covers every benchmark module across its shards, and uses only options that exist."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from pytest_energy.cli import build_parser
from pytest_energy.config import FLAGS, OPTIONS

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "energy-gpu.yml"


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def _runs(job: dict) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def _commands(script: str) -> list[list[str]]:
    """The shell commands of a step, line continuations joined, `${{ ... }}` kept as one word."""
    script = re.sub(r"\$\{\{[^}]*\}\}", "EXPR", script.replace("\\\n", " "))
    return [shlex.split(line) for line in script.splitlines() if line.strip()]


def _subcommand_options(name: str) -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    return {flag for action in sub._actions for flag in action.option_strings}


def test_every_gpu_job_runs_the_doctor_first_then_the_suite_on_all_its_gpus(workflow):
    for name in ("energy", "shard"):
        job = workflow["jobs"][name]
        assert job["runs-on"] == ["self-hosted", "gpu"]
        runs = _runs(job)
        doctor = next(i for i, r in enumerate(runs) if "pytest_energy doctor --meter nvml" in r)
        suite = next(i for i, r in enumerate(runs) if "python -m pytest " in r)
        assert doctor < suite, name
        assert 'gpus=$(nvidia-smi --list-gpus | wc -l)' in runs[suite] and '-n "$gpus"' in runs[suite]
        uploads = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
        assert uploads and all(s["if"] == "always()" for s in uploads)  # reports also when the gate fails


def test_the_shards_cover_every_benchmark_module_and_are_merged(workflow):
    shards = workflow["jobs"]["shard"]["strategy"]["matrix"]["include"]
    covered = sorted(path for s in shards for path in s["tests"].split())
    assert covered == sorted(f"benchmarks/{p.name}" for p in (ROOT / "benchmarks").glob("test_*.py"))
    merge = workflow["jobs"]["merge"]
    assert merge["needs"] == "shard" and "always()" in merge["if"]
    (command,) = [c for r in _runs(merge) for c in _commands(r) if c[:3] == ["python", "-m", "pytest_energy"]]
    assert command[3] == "merge" and f"--expected-shards {len(shards)}" in " ".join(command)


def test_every_option_the_workflow_uses_exists():
    known = {
        "pytest": {o.flag for o in OPTIONS} | {flag for flag, _ in FLAGS},
        "doctor": _subcommand_options("doctor"),
        "merge": _subcommand_options("merge"),
    }
    used = 0
    for job in yaml.safe_load(WORKFLOW.read_text())["jobs"].values():
        for script in _runs(job):
            for cmd in _commands(script):
                if cmd[:3] == ["python", "-m", "pytest"]:
                    flags, kind = [a for a in cmd if a.startswith("--energy")], "pytest"
                elif cmd[:3] == ["python", "-m", "pytest_energy"]:
                    flags, kind = [a for a in cmd[4:] if a.startswith("--")], cmd[3]
                else:
                    continue
                for flag in flags:
                    assert flag.split("=")[0] in known[kind], f"{kind}: unknown option {flag}"
                    used += 1
    assert used > 10


def test_pull_requests_ab_against_their_fetched_base_and_nightly_runs_save(workflow):
    """Issue 16, point 5: the pull-request job fetches the base branch (actions/checkout fetches one commit),
    then runs --energy-against auto; the nightly (schedule) shards save, and their merge saves the baselines."""
    steps = workflow["jobs"]["energy"]["steps"]
    runs = [step.get("run", "") for step in steps]
    fetch = next(i for i, run in enumerate(runs) if run.startswith("git fetch"))
    gate = next(i for i, run in enumerate(runs) if "python -m pytest benchmarks/" in run)
    assert fetch < gate and "$GITHUB_BASE_REF" in runs[fetch]
    assert steps[fetch]["if"] == "github.event_name == 'pull_request'"
    assert "--energy-against auto" in runs[gate] and '"${{ github.event_name }}" = "pull_request"' in runs[gate]
    assert any(flag == "--energy-against" for flag in (o.flag for o in OPTIONS))
    shard = "\n".join(_runs(workflow["jobs"]["shard"]))
    merge = "\n".join(_runs(workflow["jobs"]["merge"]))
    for script, flag in ((shard, "--energy-save-baseline"), (merge, "--save-baseline")):
        assert '"${{ github.event_name }}" = "schedule"' in script and flag in script
