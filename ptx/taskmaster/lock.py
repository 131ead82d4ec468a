"""Taskmaster's lock on tasks.json (`tasks.json.lock`), taken and released the way it does."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ptx.core.errors import InputError, LockTimeoutError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

STALE_LOCK_SECONDS = 10.0  # Taskmaster's staleLockAge and proper-lockfile's `stale`
REFRESH_SECONDS = STALE_LOCK_SECONDS / 2  # proper-lockfile's `update` default: stale / 2
_RETRY_SECONDS = 0.02


@dataclass(frozen=True, slots=True, kw_only=True)
class _Held:
    """The lock directory we made, to recognise it at release (it may have been broken)."""

    path: Path
    device: int
    inode: int


class _Refresher:
    """Keeps the mtime of every lock this process holds fresh, as proper-lockfile does: a
    holder that is alive never looks stale, and a killed one's lock turns stale 10 s later, for
    Taskmaster and the next ptx to break. Its thread runs only while a lock is held (ptx holds
    one for milliseconds), so no thread of it outlives a write."""

    def __init__(self) -> None:
        self._held: dict[Path, _Held] = {}
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, held: _Held) -> None:
        with self._wake:
            self._held[held.path] = held
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ptx-lock", daemon=True)
                self._thread.start()

    def remove(self, held: _Held) -> None:
        with self._wake:
            if self._held.get(held.path) == held:
                del self._held[held.path]
            thread = self._thread if not self._held else None
            if thread is not None:
                self._thread = None
                self._wake.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        me = threading.current_thread()
        with self._wake:
            while self._thread is me:
                self._wake.wait(REFRESH_SECONDS)
                for held in list(self._held.values()):
                    _touch(held)


def _touch(held: _Held) -> None:
    with contextlib.suppress(OSError):
        info = os.lstat(held.path)
        if (info.st_dev, info.st_ino) == (held.device, held.inode):
            os.utime(held.path)


_REFRESHER = _Refresher()


@contextmanager
def taskmaster_lock(path: Path, *, timeout: float) -> Iterator[None]:
    """Hold `<path>.lock` as tm-core's proper-lockfile does: a directory, its mtime refreshed
    while held. A file there (legacy Taskmaster's lock) or a directory blocks us alike."""
    lock = path.with_name(path.name + ".lock")
    held = _acquire(lock, timeout)
    _REFRESHER.add(held)
    try:
        yield
    finally:
        _REFRESHER.remove(held)
        _release(held)


def _acquire(lock: Path, timeout: float) -> _Held:
    deadline = time.monotonic() + timeout
    while True:
        held = _try_create(lock)
        if held is not None:
            return held
        if _break_if_stale(lock):
            held = _try_create(lock)  # once at least, even with no time left: it was dead
            if held is not None:
                return held
        if time.monotonic() >= deadline:
            raise LockTimeoutError(_held_message(lock, timeout))
        time.sleep(min(_RETRY_SECONDS, max(0.0, deadline - time.monotonic())))


def _try_create(lock: Path) -> _Held | None:
    try:
        lock.mkdir(mode=0o755)
    except FileExistsError:
        return None
    except OSError as error:
        raise InputError(f"cannot create the lock {lock}: {error.strerror}") from error
    info = os.lstat(lock)
    return _Held(path=lock, device=info.st_dev, inode=info.st_ino)


def _release(held: _Held) -> None:
    """Remove the lock only if it is still the one we made (it may have been broken as stale)."""
    with contextlib.suppress(OSError):
        info = os.lstat(held.path)
        if (info.st_dev, info.st_ino) == (held.device, held.inode):
            held.path.rmdir()


def _is_stale(info: os.stat_result) -> bool:
    return time.time() - info.st_mtime > STALE_LOCK_SECONDS


def _break_if_stale(lock: Path) -> bool:
    """Remove a lock left by a dead writer; True when the caller should retry at once.

    The lock is first renamed aside, atomically: if what we moved turns out not to be the stale
    lock we looked at (someone broke it and made a fresh one in between), it is put back.
    """
    try:
        seen = os.lstat(lock)
        if not _is_stale(seen) or (stat.S_ISDIR(seen.st_mode) and any(lock.iterdir())):
            return False  # a non-empty directory is not proper-lockfile's: never delete contents
        aside = lock.with_name(f"{lock.name}.stale.{os.getpid()}.{uuid.uuid4().hex}")
        lock.rename(aside)
    except FileNotFoundError:
        return True
    except OSError:
        return False  # cannot inspect or move it: treat it as held
    moved = os.lstat(aside)
    if (moved.st_dev, moved.st_ino) == (seen.st_dev, seen.st_ino) and _is_stale(moved):
        with contextlib.suppress(OSError):
            aside.rmdir() if stat.S_ISDIR(moved.st_mode) else aside.unlink()
    else:
        _put_back(aside, lock, directory=stat.S_ISDIR(moved.st_mode))
    return True


def _put_back(aside: Path, lock: Path, *, directory: bool) -> None:
    """Return a live lock we moved by mistake; if a third writer got in meanwhile, its stands."""
    with contextlib.suppress(OSError):
        if directory:
            aside.rename(lock)
            return
        os.link(aside, lock)  # link, not rename: never replace a lock that appeared meanwhile
    with contextlib.suppress(OSError):
        aside.unlink()


def _held_message(lock: Path, timeout: float) -> str:
    holder, age = "an unknown process", ""
    try:
        info = os.lstat(lock)
        age = f", {max(0.0, time.time() - info.st_mtime):.1f} s old"
        if stat.S_ISDIR(info.st_mode):
            holder = "another process (a directory lock)"
        elif isinstance(pid := json.loads(lock.read_bytes()).get("pid"), int):
            holder = f"pid {pid}"
    except FileNotFoundError:
        return f"{lock} kept being taken by other writers; gave up after {timeout:g} s"
    except (OSError, ValueError, AttributeError):
        pass  # half-written or foreign content: the holder stays unknown
    return f"{lock} is held by {holder}{age}; gave up after {timeout:g} s"
