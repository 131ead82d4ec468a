"""Tests for taskmaster.lock: Taskmaster's tasks.json.lock on a real filesystem."""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING

import pytest
from projects import HANG_GUARD

from ptx.core.errors import LockTimeoutError
from ptx.taskmaster.lock import STALE_LOCK_SECONDS, taskmaster_lock

if TYPE_CHECKING:
    from pathlib import Path


def _tasks_file(tmp_path: Path) -> Path:
    path = tmp_path / "tasks.json"
    path.write_text('{"tasks": []}', encoding="utf-8")
    return path


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_the_lock_is_a_directory_as_proper_lockfile_makes_it_and_is_removed_after(
    tmp_path: Path,
) -> None:
    path = _tasks_file(tmp_path)
    lock = tmp_path / "tasks.json.lock"

    with taskmaster_lock(path, timeout=1):
        assert lock.is_dir()
        assert list(lock.iterdir()) == []
        assert "ptx-lock" in {thread.name for thread in threading.enumerate()}

    assert not lock.exists()
    assert "ptx-lock" not in {thread.name for thread in threading.enumerate()}  # none lingers


def test_a_held_lock_is_refreshed_so_it_never_looks_stale(tmp_path: Path) -> None:
    path = _tasks_file(tmp_path)
    lock = tmp_path / "tasks.json.lock"
    old = time.time() - STALE_LOCK_SECONDS - 5

    with taskmaster_lock(path, timeout=1):
        os.utime(lock, (old, old))  # as if held for longer than the stale age
        deadline = time.monotonic() + HANG_GUARD
        while lock.stat().st_mtime <= old + 1:
            assert time.monotonic() < deadline, "the held lock was never refreshed"
            time.sleep(0.1)


def test_a_lock_that_is_no_longer_ours_is_left_in_place(tmp_path: Path) -> None:
    path = _tasks_file(tmp_path)
    lock = tmp_path / "tasks.json.lock"

    with taskmaster_lock(path, timeout=1):
        lock.rmdir()  # someone judged ours stale and took over
        lock.write_text('{"pid":1,"timestamp":2}')

    assert lock.read_text() == '{"pid":1,"timestamp":2}'


def test_error_inside_the_lock_releases_it(tmp_path: Path) -> None:
    path = _tasks_file(tmp_path)

    with pytest.raises(RuntimeError), taskmaster_lock(path, timeout=1):
        raise RuntimeError

    assert _names(tmp_path) == ["tasks.json"]


def test_a_held_lock_is_not_taken_and_its_holder_is_named(tmp_path: Path) -> None:
    path = _tasks_file(tmp_path)
    lock = tmp_path / "tasks.json.lock"
    lock.write_text('{"pid":4242,"timestamp":1}')
    entered = False

    with pytest.raises(LockTimeoutError) as raised, taskmaster_lock(path, timeout=0.1):
        entered = True

    assert not entered
    assert str(raised.value).startswith(f"{lock} is held by pid 4242, ")
    assert lock.read_text() == '{"pid":4242,"timestamp":1}'


def test_a_lock_older_than_the_stale_age_is_broken(tmp_path: Path) -> None:
    path = _tasks_file(tmp_path)
    lock = tmp_path / "tasks.json.lock"
    lock.write_text('{"pid":4242,"timestamp":1}')
    old = time.time() - STALE_LOCK_SECONDS - 5
    os.utime(lock, (old, old))

    with taskmaster_lock(path, timeout=5):
        assert lock.is_dir()

    assert _names(tmp_path) == ["tasks.json"]


def test_a_stale_lock_is_broken_even_without_time_to_wait(tmp_path: Path) -> None:
    path = _tasks_file(tmp_path)
    lock = tmp_path / "tasks.json.lock"
    lock.mkdir()  # what a ptx or a Taskmaster killed while holding it leaves
    old = time.time() - STALE_LOCK_SECONDS - 5
    os.utime(lock, (old, old))

    with taskmaster_lock(path, timeout=0):
        assert lock.is_dir()

    assert _names(tmp_path) == ["tasks.json"]
