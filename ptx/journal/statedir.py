"""The layout of a project's state directory (`.ptx/`): its run lock and where logs go."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ptx.core.errors import PtxError, write_problem
from ptx.journal.opening import JournalError

if TYPE_CHECKING:
    from collections.abc import Iterator

STATE_DIR_NAME = ".ptx"
LOCK_NAME = "run.lock"
LOGS_DIR_NAME = "logs"


class RunLockedError(PtxError):
    """Another `ptx run` holds the project's run lock."""


def log_dir(state_dir: Path, run_id: str) -> Path:
    """Where the logs of one run go (`<state>/logs/<run>`)."""
    return state_dir / LOGS_DIR_NAME / _file_name_part(run_id)


def state_dir_of(run_log_dir: str) -> Path:
    """The state directory that holds a run's log directory: the inverse of `log_dir`."""
    return Path(run_log_dir).parent.parent


def log_path(run_log_dir: str, task: str, attempt: int) -> str:
    """Where an attempt's output goes, in the run's `log_dir`; the caller creates the directory.
    A string, joined by hand: it is named for every attempt, and pathlib's joins cost more
    than the rest of naming it."""
    name = _file_name_part(task)
    return f"{run_log_dir}/{name}.log" if attempt == 1 else f"{run_log_dir}/{name}.{attempt}.log"


def _file_name_part(part: str) -> str:
    if not part or "/" in part or part in {".", ".."}:
        raise JournalError(f"cannot name a log file after {part!r}")
    return part


@contextlib.contextmanager
def run_lock(state_dir: Path) -> Iterator[None]:
    """Hold `.ptx/run.lock` exclusively, or fail at once naming the holder's pid.

    A flock belongs to the open file, so it dies with its process (even on kill -9) and a
    stale lock cannot exist; Python opens files non-inheritable, so tasks do not keep it.
    """
    path = state_dir / LOCK_NAME
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        # "a+" and not "w": truncating before the lock is ours would erase the holder's pid.
        handle = path.open("a+", encoding="utf-8")
    except OSError as exc:
        raise JournalError(write_problem(exc, exc.filename or path)) from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            msg = f"another ptx run is active in {state_dir.parent} (pid {holder})"
            raise RunLockedError(msg) from None
        try:  # unbuffered: a write the disk refuses must not fail again when the file closes
            os.ftruncate(handle.fileno(), 0)
            os.pwrite(handle.fileno(), f"{os.getpid()}\n".encode(), 0)
        except OSError as exc:
            raise JournalError(write_problem(exc, path)) from None
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(handle.fileno(), 0)
            fcntl.flock(handle, fcntl.LOCK_UN)
