"""Taskmaster's lock on tasks.json (`tasks.json.lock`), taken and released the way it does."""

from __future__ import annotations

import contextlib
import json
import os
import stat
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
_RETRY_SECONDS = 0.02


@dataclass(frozen=True, slots=True, kw_only=True)
class _Held:
    """What our lock file looked like when we created it, to recognise it at release."""

    content: bytes
    device: int
    inode: int


@contextmanager
def taskmaster_lock(path: Path, *, timeout: float) -> Iterator[None]:
    """Hold `<path>.lock` the way Taskmaster does; a file or a directory there blocks us."""
    lock = path.with_name(path.name + ".lock")
    held = _acquire(lock, timeout)
    try:
        yield
    finally:
        _release(lock, held)


def _acquire(lock: Path, timeout: float) -> _Held:
    deadline = time.monotonic() + timeout
    while True:
        held = _try_create(lock)
        if held is not None:
            return held
        if _break_if_stale(lock) and time.monotonic() < deadline:
            continue  # whoever creates it next wins: maybe us, maybe not
        if time.monotonic() >= deadline:
            raise LockTimeoutError(_held_message(lock, timeout))
        time.sleep(min(_RETRY_SECONDS, max(0.0, deadline - time.monotonic())))


def _try_create(lock: Path) -> _Held | None:
    stamp = {"pid": os.getpid(), "timestamp": time.time_ns() // 1_000_000}
    content = json.dumps(stamp, separators=(",", ":")).encode()  # as JSON.stringify writes it
    try:
        descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return None
    except OSError as error:
        raise InputError(f"cannot create the lock {lock}: {error.strerror}") from error
    try:
        os.write(descriptor, content)
        info = os.fstat(descriptor)
    except BaseException:
        os.close(descriptor)
        lock.unlink()
        raise
    os.close(descriptor)
    return _Held(content=content, device=info.st_dev, inode=info.st_ino)


def _release(lock: Path, held: _Held) -> None:
    """Remove the lock only if it is still the one we made (it may have been broken as stale)."""
    try:
        info = os.lstat(lock)
        content = lock.read_bytes()
    except OSError:
        return
    if (info.st_dev, info.st_ino) == (held.device, held.inode) and content == held.content:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()


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
            holder = "a Taskmaster process (directory lock)"
        elif isinstance(pid := json.loads(lock.read_bytes()).get("pid"), int):
            holder = f"pid {pid}"
    except FileNotFoundError:
        return f"{lock} kept being taken by other writers; gave up after {timeout:g} s"
    except (OSError, ValueError, AttributeError):
        pass  # half-written or foreign content: the holder stays unknown
    return f"{lock} is held by {holder}{age}; gave up after {timeout:g} s"
