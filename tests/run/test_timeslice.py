"""Tests for run.timeslice: the loop thread's short slice, its children's default one.

Scheduling attributes belong to a thread, so each case runs in a thread of its own: the test
process's main thread is never changed. Slices are read from /proc, not through the module.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

from ptx.run import timeslice

if TYPE_CHECKING:
    from collections.abc import Callable

HANG_GUARD = 10.0  # generous upper bound that only catches hangs
T = TypeVar("T")


def _release() -> tuple[int, ...]:
    return tuple(int(part) for part in platform.release().split("-")[0].split(".")[:2])


pytestmark = pytest.mark.skipif(
    platform.system() != "Linux"
    or platform.machine() not in {"x86_64", "aarch64"}
    or _release() < (6, 12),
    reason="custom time slices for normal threads need Linux 6.12 or later",
)


def _slice(sched: str) -> int:
    """The `se.slice` line of a /proc/.../sched text, in nanoseconds."""
    for line in sched.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "se.slice":
            return int(value)
    raise AssertionError(f"no se.slice in {sched!r}")


def _own_slice() -> int:
    return _slice(Path("/proc/thread-self/sched").read_text())


def _child_slice() -> int:
    """The slice of a process the calling thread starts now (`cat` reading its own)."""
    result = subprocess.run(
        ["cat", "/proc/self/sched"], capture_output=True, text=True, check=True, timeout=HANG_GUARD
    )
    return _slice(result.stdout)


def _in_thread(work: Callable[[], T]) -> T:
    """`work()` in a new thread; its result, or its exception raised here."""
    outcome: list[T] = []
    failure: list[BaseException] = []

    def body() -> None:
        try:
            outcome.append(work())
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
            failure.append(error)

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(HANG_GUARD)
    if failure:
        raise failure[0]
    return outcome[0]


def test_the_thread_gets_the_short_slice_and_its_children_the_default() -> None:
    def observe() -> tuple[int, int, int, bool, int]:
        before = _own_slice()
        with timeslice.short_slice():
            inside = _own_slice()
            child = _child_slice()
            reset = bool(os.sched_getscheduler(0) & os.SCHED_RESET_ON_FORK)
        return before, inside, child, reset, _own_slice()

    before, inside, child, reset, after = _in_thread(observe)
    assert inside == timeslice.SLICE_NS < before
    assert child == before  # the kernel's default, not the loop thread's
    assert reset
    assert after == before


def test_a_thread_with_another_policy_is_left_as_it_is() -> None:
    def observe() -> tuple[int, int, int]:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
        before = _own_slice()
        with timeslice.short_slice():
            return before, _own_slice(), os.sched_getscheduler(0)

    before, inside, policy = _in_thread(observe)
    assert inside == before
    assert policy == os.SCHED_BATCH  # and no reset-on-fork added to it


def test_a_nice_thread_keeps_its_nice_value() -> None:
    def observe() -> tuple[int, int]:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, 5)  # for one thread on Linux
        with timeslice.short_slice():
            return _own_slice(), os.getpriority(os.PRIO_PROCESS, tid)

    inside, nice = _in_thread(observe)
    assert inside == timeslice.SLICE_NS
    assert nice == 5


def test_a_run_loop_has_the_short_slice_and_its_tasks_the_default(tmp_path: Path) -> None:
    # The task's parent is ptx, whose main thread runs the loop.
    show = "grep -h se.slice /proc/$PPID/task/$PPID/sched /proc/self/sched > slices"
    tasks = [
        {
            "id": 1,
            "title": "t",
            "status": "pending",
            "dependencies": [],
            "metadata": {"ptx": {"command": show}},
        }
    ]
    (tmp_path / "tasks.json").write_text(json.dumps({"tasks": tasks}))
    result = subprocess.run(
        [sys.executable, "-m", "ptx", "run", "-f", "tasks.json", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loop, task = (_slice(line) for line in (tmp_path / "slices").read_text().splitlines())
    assert loop == timeslice.SLICE_NS
    assert task == _in_thread(_own_slice) > loop  # the default of a fresh thread
