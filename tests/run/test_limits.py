"""Limits, with a real ptx: a small descriptor limit, timeouts beyond a 32-bit millisecond wait."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

from projects import HANG_GUARD, clean_environment, idle_run, make_project, ptx, statuses, task

from ptx.executors import process

if TYPE_CHECKING:
    from pathlib import Path

_FORTY_AT_ONCE = {"resource_limits": {"max_concurrent_tasks": 40}}


def test_with_ulimit_n_64_and_j_40_no_task_fails_for_want_of_descriptors(tmp_path: Path) -> None:
    tasks = [task(n, "sleep 0.2") for n in range(1, 41)]
    root = make_project(tmp_path, tasks, **_FORTY_AT_ONCE)
    result = subprocess.run(
        ["/bin/sh", "-c", 'ulimit -n 64 && exec "$@"', "sh", *idle_run(40)],
        cwd=root,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=HANG_GUARD * 2,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert set(statuses(root).values()) == {"succeeded"}
    assert len(statuses(root)) == len(tasks)
    (notice,) = [line for line in result.stderr.splitlines() if "lowered to" in line]
    assert "-j 40 lowered to" in notice
    assert "ptx may open 64 files (ulimit -n)" in notice


def test_timeouts_and_grace_periods_beyond_a_32_bit_millisecond_wait_are_accepted(
    tmp_path: Path,
) -> None:
    tasks = [task(1, "sleep 0.3"), task(2, "sleep 0.3 & true", ptx_timeout_seconds=3_000_000)]
    root = make_project(tmp_path, tasks, kill_grace_seconds=3_000_000)
    result = ptx(root, "run", "--timeout", "3000000")
    assert result.returncode == 0, result.stderr
    assert statuses(root) == {"1": "succeeded", "2": "succeeded"}


def test_a_poll_never_waits_longer_than_a_c_int_of_milliseconds() -> None:
    assert process._poll_ms(float(2**40)) == 2**31 - 1
