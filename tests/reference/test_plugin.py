"""The reference suite's settings: one option table, command line > environment > ini > default, validated."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_energy.config import UNSET
from pytest_energy.errors import UsageError
from pytest_energy.reference.plugin import (
    PROTOCOL_DEFAULTS,
    REFERENCE_OPTIONS,
    RETIRED_ENV,
    env_var,
    option_value,
    resolve,
)


class _Config:
    """pytest's getoption/getini, from plain dicts (dest -> command-line text, ini key -> ini text)."""

    def __init__(self, cli: dict[str, str] | None = None, ini: dict[str, str] | None = None):
        self.cli, self.ini = cli or {}, ini or {}

    def getoption(self, dest):
        return self.cli.get(dest)

    def getini(self, key):
        return self.ini.get(key, UNSET)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """The runner's own PYTEST_ENERGY_* (CI sets the data folder) must not leak into these tests."""
    for name in [env_var(option) for option in REFERENCE_OPTIONS] + list(RETIRED_ENV):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _option(name: str):
    (option,) = [o for o in REFERENCE_OPTIONS if o.name == name]
    return option


def test_every_setting_is_one_option_with_its_ini_key_and_environment_variable():
    names = [o.name for o in REFERENCE_OPTIONS]
    assert names == ["task", "model", "data-dir", "cutoff", "eval-every", "max-steps", "lr", "max-dev",
                     "inference-n", "torch-threads", "sweep-n", "report-dir"]
    assert [env_var(o) for o in REFERENCE_OPTIONS][:4] == [
        "PYTEST_ENERGY_TASK", "PYTEST_ENERGY_MODEL", "PYTEST_ENERGY_DATA_DIR", "PYTEST_ENERGY_CUTOFF"]
    assert env_var(_option("eval-every")) == "PYTEST_ENERGY_EVAL_EVERY"
    assert _option("eval-every").ini == "energy_eval_every" and _option("eval-every").flag == "--energy-eval-every"
    # None of them shadows an option of the main table.
    from pytest_energy.config import OPTIONS

    assert not {o.name for o in REFERENCE_OPTIONS} & {o.name for o in OPTIONS}


def test_defaults_are_the_tasks_own(tmp_path):
    s = resolve(_Config(), tmp_path)
    b = s.bench
    d = PROTOCOL_DEFAULTS["synthetic"]
    assert (b.task, b.model, b.data_dir) == ("synthetic", "embedded", None)
    assert (b.cutoff, b.eval_every, b.max_steps, b.lr, b.max_dev, b.inference_n) == (
        0.90, d["eval_every"], d["max_steps"], d["lr"], d["max_dev"], 1000)
    assert (s.torch_threads, s.sweep_n, s.report_dir) == (1, 200, tmp_path / "energy-report")
    sst2 = resolve(_Config(cli={"energy_task": "SST-2"})).bench
    assert (sst2.task, sst2.max_steps, sst2.max_dev, sst2.eval_every) == ("sst2", None, None, 50)


def test_command_line_beats_environment_beats_ini(clean_env):
    lr = _option("lr")
    assert option_value(_Config(), lr) is None  # auto: the task's own
    assert option_value(_Config(ini={"energy_lr": "3e-5"}), lr) == 3e-5
    clean_env.setenv("PYTEST_ENERGY_LR", "2e-5")
    assert option_value(_Config(ini={"energy_lr": "3e-5"}), lr) == 2e-5
    assert option_value(_Config(cli={"energy_lr": "1e-5"}, ini={"energy_lr": "3e-5"}), lr) == 1e-5
    clean_env.setenv("PYTEST_ENERGY_LR", "")  # an empty variable is unset
    assert option_value(_Config(ini={"energy_lr": "3e-5"}), lr) == 3e-5


def test_overrides_reach_the_bench_and_absolute_report_dirs_stay(clean_env, tmp_path):
    clean_env.setenv("PYTEST_ENERGY_MAX_STEPS", "0")  # 0: HULK's five epochs, as before
    clean_env.setenv("PYTEST_ENERGY_REPORT_DIR", str(tmp_path / "sweeps"))
    s = resolve(_Config(cli={"energy_cutoff": "0.5", "energy_eval_every": "2", "energy_max_dev": "7",
                             "energy_torch_threads": "0", "energy_sweep_n": "3"},
                        ini={"energy_inference_n": "9", "energy_data_dir": "glue"}), "/root")
    b = s.bench
    assert (b.cutoff, b.eval_every, b.max_steps, b.max_dev, b.inference_n, b.data_dir) == (0.5, 2, 0, 7, 9, "glue")
    assert (s.torch_threads, s.sweep_n, s.report_dir) == (0, 3, tmp_path / "sweeps")
    assert resolve(_Config(cli={"energy_report_dir": "out"}), "/root").report_dir == Path("/root/out")


@pytest.mark.parametrize("cli, ini, env, message", [
    ({"energy_task": "imdb"}, {}, {}, "--energy-task: unknown task 'imdb'; choose one of synthetic"),
    ({}, {"energy_cutoff": "1.5"}, {},
     "--energy-cutoff: must be a finite number >= 0 and <= 1, got '1.5' .or 'auto': the task's own."),
    ({}, {}, {"PYTEST_ENERGY_EVAL_EVERY": "five"},
     r"\$PYTEST_ENERGY_EVAL_EVERY: expected an integer, got 'five' \(or 'auto'"),
    ({}, {}, {"PYTEST_ENERGY_TORCH_THREADS": "-1"}, r"\$PYTEST_ENERGY_TORCH_THREADS: must be >= 0, got -1"),
    ({}, {}, {"PYTEST_ENERGY_LR": "nan"}, r"\$PYTEST_ENERGY_LR: .*finite number > 0"),
    ({"energy_max_dev": "0"}, {}, {}, "--energy-max-dev: .*must be >= 1, got 0"),
    ({"energy_sweep_n": " "}, {}, {}, "--energy-sweep-n: empty value"),
    ({}, {"energy_model": ""}, {}, "ini key energy_model: empty value"),
])
def test_bad_values_name_where_they_came_from(clean_env, cli, ini, env, message):
    for name, value in env.items():
        clean_env.setenv(name, value)
    with pytest.raises(UsageError, match=message):
        resolve(_Config(cli, ini))


def test_a_retired_variable_is_an_error_not_ignored(clean_env):
    clean_env.setenv("PYTEST_ENERGY_SWEEP_THREADS", "2")
    with pytest.raises(UsageError, match=r"\$PYTEST_ENERGY_SWEEP_THREADS is no longer read: use --energy-torch"):
        resolve(_Config())


def test_a_bad_value_stops_the_run_with_a_usage_error(pytester, clean_env):
    pytester.makepyfile("def test_x(bench):\n    pass\n")
    clean_env.setenv("PYTEST_ENERGY_INFERENCE_N", "many")
    result = pytester.runpytest("-p", "pytest_energy.reference.plugin", "-q", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*pytest-energy: $PYTEST_ENERGY_INFERENCE_N: expected an integer, got 'many'*"])
    # ...but pytest --help still works, whatever the environment holds.
    assert pytester.runpytest("-p", "pytest_energy.reference.plugin", "--help").ret == pytest.ExitCode.OK


def test_ini_keys_and_the_one_thread_fixture_in_a_session(pytester, clean_env):
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    threads = before + 1  # differs from torch's own, whatever the machine
    pytester.makeini(f"[pytest]\nenergy_task = sst2\nenergy_torch_threads = {threads}\nenergy_cutoff = 0.8\n")
    pytester.makepyfile(f"""
        import torch

        def test_settings(bench, torch_threads):
            assert (bench.task, bench.cutoff, bench.eval_every) == ("sst2", 0.8, 50)
            assert torch_threads == {threads} == torch.get_num_threads()

        def test_still_pinned(torch_threads):  # one value for the whole session
            assert torch.get_num_threads() == {threads}
    """)
    clean_env.setenv("PYTEST_ENERGY_CUTOFF", "")  # empty: the ini key decides
    result = pytester.runpytest("-p", "pytest_energy.reference.plugin", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["pytest-energy reference benchmarks: task=sst2 model=embedded data_dir=-"])
    assert torch.get_num_threads() == before  # restored when the session ended
