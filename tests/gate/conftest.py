"""Shared by the baseline store's crash tests (test_baselines.py, test_pool_cache.py)."""

from __future__ import annotations

import multiprocessing
import shutil

import pytest


@pytest.fixture
def killed_saves(tmp_path, monkeypatch):
    """kill -9 before each filesystem step of one save, each in a fresh copy of `setup`.

    `killed_saves(setup, save, save_killed_at)`: `save(directory)` makes the whole save in this process, once,
    to count its steps (files.KILL_AT_STEP_ENV set beyond reach); then, for every step and one past the last, a
    forked child runs `save_killed_at(directory, step)` in a copy of `setup` and is killed before that step.
    Yields (step, directory): the child was killed there (exit -9), or for the last, finished (exit 0)."""
    from pytest_energy import files

    def run(setup, save, save_killed_at):
        monkeypatch.setenv(files.KILL_AT_STEP_ENV, str(10**9))
        files._steps_taken[0] = 0
        shutil.copytree(setup, tmp_path / "count")
        save(tmp_path / "count")
        steps = files._steps_taken[0]
        monkeypatch.delenv(files.KILL_AT_STEP_ENV)
        assert steps >= 15, steps
        ctx = multiprocessing.get_context("fork")
        for step in range(1, steps + 2):
            directory = tmp_path / f"k{step}"
            shutil.copytree(setup, directory)
            child = ctx.Process(target=save_killed_at, args=(str(directory), step))
            child.start()
            child.join(60)
            assert child.exitcode == (0 if step > steps else -9), step
            yield step, directory

    return run
