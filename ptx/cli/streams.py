"""ptx's own standard streams: closed ones reopened on /dev/null, write errors absorbed.

A run must outlive its audience: the reader of a pipe going away (`ptx run | head -1`), a
full disk behind a redirection (`> /dev/full`) or a stream closed at start (`>&-`) may cost
the output, never the run, its journal or its exit code.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import sys
import threading
from typing import TYPE_CHECKING, TextIO, cast

from ptx.core.errors import ExitCode

if TYPE_CHECKING:
    from collections.abc import Iterable

_STANDARD_FDS = (0, 1, 2)


class GuardedStream(io.TextIOBase):
    """A text stream that turns a failed write into silence: the first error is kept in
    `lost`, the descriptor is pointed at /dev/null (so nothing buffered fails again, not even
    at exit) and later writes are dropped. Everything else is the wrapped stream's."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream
        self.lost: OSError | None = None
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        if self.lost is None:
            try:
                try:
                    self.stream.write(text)
                except UnicodeEncodeError:  # a lone surrogate from a file: shown escaped
                    encoding = self.stream.encoding or "utf-8"
                    self.stream.write(text.encode(encoding, "backslashreplace").decode(encoding))
            except OSError as exc:
                self._lose(exc)
        return len(text)

    def flush(self) -> None:
        if self.lost is None:
            try:
                self.stream.flush()
            except OSError as exc:
                self._lose(exc)

    def _lose(self, exc: OSError) -> None:
        with self._lock:
            if self.lost is not None:
                return
            self.lost = exc
            with contextlib.suppress(OSError, ValueError):
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, self.stream.fileno())
                os.close(null)
            with contextlib.suppress(OSError, ValueError):
                self.stream.flush()  # what the failed write left buffered goes to /dev/null

    def fileno(self) -> int:
        return self.stream.fileno()

    def isatty(self) -> bool:
        return self.lost is None and self.stream.isatty()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override] # TextIOBase declares it read-only
        return self.stream.encoding

    @property
    def errors(self) -> str | None:  # type: ignore[override] # TextIOBase declares it read-only
        return self.stream.errors


def reopen_closed(fds: Iterable[int] = _STANDARD_FDS) -> list[int]:
    """Put /dev/null on each standard descriptor that is closed; return those. Otherwise the
    next file ptx opens (the journal, a log) would take the number, and a task or a print
    meant for stdout would write into it."""
    closed = [fd for fd in fds if not _is_open(fd)]
    for fd in closed:
        null = os.open(os.devnull, os.O_RDWR)  # the lowest free number: `fd` itself
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
    return closed


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def guard() -> None:
    """Make sys.stdout and sys.stderr guarded streams, with descriptors 0-2 always open."""
    reopen_closed()
    sys.stdout = _guarded(sys.stdout, 1)
    sys.stderr = _guarded(sys.stderr, 2)


def _guarded(stream: TextIO | None, fd: int) -> TextIO:
    if isinstance(stream, GuardedStream):
        return cast("TextIO", stream)
    if stream is None:  # Python found the descriptor closed at start: it is /dev/null now
        stream = open(fd, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115 - stays open as sys.stdout/stderr
    return cast("TextIO", GuardedStream(stream))


def settle(code: int) -> int:
    """Flush both streams and return the exit code as it stands after that: a reader that
    left (EPIPE) asked for no more and changes nothing, but output lost any other way (a full
    disk, an I/O error) is said on stderr and makes a successful command exit 2, as any
    output ptx could not write does."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    lost = getattr(sys.stdout, "lost", None)
    if lost is None or lost.errno == errno.EPIPE:
        return code
    sys.stderr.write(f"ptx: error: cannot write to stdout: {lost.strerror or lost}\n")
    sys.stderr.flush()
    return ExitCode.BAD_INPUT if code == ExitCode.OK else code
