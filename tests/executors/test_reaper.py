"""Tests for executors.reaper: ptx as subreaper, with real orphans, zombies and exit statuses."""

from __future__ import annotations

import ctypes
import os
import sys
import time
from typing import TYPE_CHECKING

import pytest
from builders import pids_in

from ptx.executors import process, reaper
from ptx.executors.process import ProcessSpec, Stop

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

HANG_GUARD = 10.0  # generous upper bound that only catches hangs
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux prctl")


@pytest.fixture(params=["children file", "psutil"])
def adopting(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """ptx as subreaper, its children listed from /proc and again as without that file."""
    if request.param == "psutil":
        monkeypatch.setattr(reaper, "_open_listing", lambda: None)
    with reaper.adopting() as adopted:
        assert adopted
        yield


def _state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:  # noqa: PTH123
            return stat.read().rsplit(b")", 1)[1].split()[0].decode()
    except OSError:
        return None


def _children() -> set[int]:
    return set(reaper._children())


def _wait(condition: object, what: str) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"waited {HANG_GUARD:g} s for {what}"
        time.sleep(0.01)


def _spec(tmp_path: Path, command: str, **env: str) -> ProcessSpec:
    return ProcessSpec(
        argv=("/bin/sh", "-c", command),
        cwd=str(tmp_path),
        env={"PATH": os.environ["PATH"], **env},
        log_path=str(tmp_path / "task.log"),
        timeout=HANG_GUARD,
        grace=0.5,
    )


@linux_only
def test_adopting_makes_this_process_the_subreaper_for_the_block_only() -> None:
    libc = ctypes.CDLL(None)
    flag = ctypes.c_int(-1)

    def subreaper() -> int:
        assert libc.prctl(37, ctypes.byref(flag), 0, 0, 0) == 0  # PR_GET_CHILD_SUBREAPER
        return flag.value

    assert subreaper() == 0
    with reaper.adopting():
        assert subreaper() == 1
    assert subreaper() == 0
    assert not reaper.enabled()


@linux_only
def test_an_orphan_that_exits_on_its_own_is_reaped(
    tmp_path: Path, pid_file: Path, adopting: None
) -> None:
    # The grandchild outlives its parent, so it becomes ours, then exits by itself. The task
    # waits for it to have left the group: what is still in it when the task ends is ended.
    command = (
        f"( setsid sh -c 'echo $$ >> {pid_file}; sleep 0.2' & ); "
        f"while [ ! -s {pid_file} ]; do sleep 0.01; done"
    )
    outcome = process.run_process(_spec(tmp_path, command), Stop())
    assert outcome.exit_code == 0
    (orphan,) = pids_in(pid_file)
    _wait(lambda: _state(orphan) == "Z", "the orphan to exit")
    assert orphan in _children()

    assert process.reap_orphans() == 1

    assert _state(orphan) is None
    assert orphan not in _children()


@linux_only
def test_reaping_orphans_never_takes_a_leaders_exit_status(tmp_path: Path, adopting: None) -> None:
    child = process.spawn(_spec(tmp_path, "exit 3"))
    assert isinstance(child, process.Child)
    _wait(lambda: _state(child.pgid) == "Z", "the leader to exit")

    assert process.reap_orphans() == 0  # a zombie in a session of its own, but ptx's own

    outcome = child.supervise(Stop())
    assert outcome.exit_code == 3


@linux_only
def test_an_orphan_is_told_by_the_attempt_it_came_from(
    tmp_path: Path, pid_file: Path, adopting: None
) -> None:
    mine = {"PTX_RUN_ID": "r", "PTX_TASK_ID": "1", "PTX_ATTEMPT": "1"}
    theirs = {**mine, "PTX_TASK_ID": "2"}
    daemon = f"setsid -f sh -c 'echo $$ >> {pid_file}; exec sleep 30'"
    try:
        for env in (mine, theirs):
            _run_leader(_spec(tmp_path, daemon, **env))
        _wait(lambda: len(pids_in(pid_file)) == 2, "both daemons to start")
        first, second = pids_in(pid_file)

        found = reaper.escapees(reaper.marker_of(mine))

        assert {found_process.pid for found_process in found} == {
            first if _environ_has(first, b"PTX_TASK_ID=1") else second
        }
    finally:
        process.end_leftovers((), 0.5)
    assert [pid for pid in pids_in(pid_file) if _state(pid) not in {None, "Z"}] == []


def _run_leader(spec: ProcessSpec) -> None:
    """Run the command's leader to its exit, leaving whatever it started outside its group."""
    child = process.spawn(spec)
    assert isinstance(child, process.Child)
    _wait(lambda: _state(child.pgid) == "Z", "the leader to exit")
    child.close()


def _environ_has(pid: int, entry: bytes) -> bool:
    with open(f"/proc/{pid}/environ", "rb") as environ:  # noqa: PTH123
        return entry in environ.read().split(b"\0")
