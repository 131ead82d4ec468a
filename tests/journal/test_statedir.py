"""Tests of journal.statedir: log paths, and the run lock against real processes and flocks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from builders import SCRIPTS
from test_journal import CHILD_TIMEOUT, run_child

from ptx.core.errors import ExitCode
from ptx.journal.opening import JournalError
from ptx.journal.statedir import RunLockedError, log_dir, log_path, run_lock, state_dir_of

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / ".ptx"


def test_log_paths(state: Path) -> None:
    assert log_dir(state, "r1") == state / "logs" / "r1"
    assert state_dir_of(str(log_dir(state, "r1"))) == state
    logs = str(log_dir(state, "r1"))
    assert log_path(logs, "7.2", 1) == str(state / "logs" / "r1" / "7.2.log")
    assert log_path(logs, "7.2", 3) == str(state / "logs" / "r1" / "7.2.3.log")
    for task in ("../x", "..", ".", ""):
        with pytest.raises(JournalError, match="cannot name a log file"):
            log_path(logs, task, 1)
    for run_id in ("..", "", "a/b"):
        with pytest.raises(JournalError, match="cannot name a log file"):
            log_dir(state, run_id)


def test_run_lock_refuses_another_process_and_names_the_holder(state: Path) -> None:
    with run_lock(state):
        refused = run_child("run_lock_trier.py", str(state))
        assert refused.returncode == 0, refused.stderr
        assert refused.stdout.strip() == (
            f"another ptx run is active in {state.parent} (pid {os.getpid()})"
        )
    freed = run_child("run_lock_trier.py", str(state))
    assert freed.returncode == 0, freed.stderr
    assert freed.stdout.strip() == "acquired"


def test_run_lock_is_freed_when_its_holder_is_killed(state: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, str(SCRIPTS / "run_lock_holder.py"), str(state)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        expected = rf"^another ptx run is active in .+ \(pid {holder.pid}\)$"
        with pytest.raises(RunLockedError, match=expected) as err, run_lock(state):
            pass
        assert err.value.exit_code == ExitCode.BAD_INPUT
    finally:
        holder.kill()
        holder.wait(timeout=CHILD_TIMEOUT)
        if holder.stdout is not None:
            holder.stdout.close()
    assert holder.returncode == -signal.SIGKILL
    with run_lock(state):
        assert (state / "run.lock").read_text(encoding="utf-8").strip() == str(os.getpid())
