"""An attempt's log file: created without a name, named once it is worth keeping; and the one
reader of a log's end.

Creating a named file costs a directory update, which on a busy or discard-mounted disk can
cost more than the whole of a no-op task (BENCHMARKS.md). So the log is
opened with O_TMPFILE in its directory (an inode, no name) and linked to its path once
the command has printed something or has run `process.NAME_AFTER` seconds (long enough
that someone may want to `tail -f` it); a command that ended quickly without a byte of
output leaves no file. Without O_TMPFILE (another OS, an old kernel, some filesystems) the
file is created with its name at once.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
from pathlib import Path
from typing import ClassVar

_FLAGS = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC  # read too: a note checks the last byte
_NO_TMPFILE = {errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL}  # how kernels and filesystems say no


class LogFile:
    """The command's stdout and stderr, and ptx's `[ptx]` notes about it."""

    __slots__ = ("_named", "fd", "path")
    # False once a filesystem refused O_TMPFILE: named files from then on.
    unnamed: ClassVar[bool] = hasattr(os, "O_TMPFILE") and Path("/proc/self/fd").is_dir()

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self.fd, self._named = _open(path)
        except FileNotFoundError:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.fd, self._named = _open(path)

    def publish(self) -> None:
        """Give the file its name (once); it stays open and keeps growing."""
        if self._named:
            return
        self._named = True
        # Created by someone else since it was opened (ptx's own paths are unique per run,
        # task and attempt): theirs stays.
        with contextlib.suppress(FileExistsError):
            os.link(str(self.fd), self.path, src_dir_fd=_proc_fds(), follow_symlinks=True)

    def note(self, text: str) -> None:
        """Append `[ptx] text` on a line of its own."""
        size = os.fstat(self.fd).st_size
        starts_line = size == 0 or os.pread(self.fd, 1, size - 1) == b"\n"
        write_all(self.fd, ("" if starts_line else "\n").encode() + f"[ptx] {text}\n".encode())

    def close(self) -> None:
        """Close, naming the file first if anything was written to it."""
        try:
            if not self._named and os.fstat(self.fd).st_size > 0:
                self.publish()
        finally:
            os.close(self.fd)


def _open(path: str) -> tuple[int, bool]:
    with contextlib.suppress(FileNotFoundError):  # a log that exists is appended to
        return os.open(path, _FLAGS), True
    if LogFile.unnamed:
        directory = os.path.dirname(path) or "."  # noqa: PTH120 - per attempt: kept lean
        try:
            return os.open(directory, os.O_TMPFILE | _FLAGS, 0o644), False
        except OSError as error:
            if error.errno not in _NO_TMPFILE:
                raise
            LogFile.unnamed = False
    return os.open(path, os.O_CREAT | _FLAGS, 0o644), True


@functools.cache
def _proc_fds() -> int:
    """/proc/self/fd, where linkat finds an open unnamed file by its descriptor number."""
    return os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


if hasattr(os, "register_at_fork"):  # a forked child must not look into its parent's table
    os.register_at_fork(after_in_child=_proc_fds.cache_clear)


def write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written: a write to a file may take only part."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def log_end(path: str | Path, limit: int, size: int | None = None) -> tuple[bytes, int]:
    """The last `limit` bytes of a log (of its first `size` bytes, when given) and the offset
    they start at, reading only its end: logs can be gigabytes. (b"", 0) when it cannot be read."""
    try:
        with Path(path).open("rb") as handle:
            end = handle.seek(0, os.SEEK_END) if size is None else size
            start = max(0, end - limit)
            handle.seek(start)
            return handle.read(end - start), start
    except OSError:
        return b"", 0
