"""`--stream`: follow the logs of running tasks and pass their lines on as `TaskOutput` events."""

from __future__ import annotations

import queue
import re
import threading
from typing import IO, TYPE_CHECKING

from ptx.core.events import TaskFinished, TaskOutput, TaskStarted
from ptx.executors.logfile import log_end

if TYPE_CHECKING:
    from collections.abc import Callable

    from typing_extensions import Self

    from ptx.core.model import TaskId

CHUNK_BYTES = 64 * 1024  # read per file per pass: a flood of output never blocks the others
MAX_LINE_BYTES = 4096  # longer lines are cut here and the rest dropped up to the next newline
POLL_SECONDS = 0.1
TAIL_BYTES = 4096  # read from the end of a log for its last line: logs can be gigabytes
_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|[\x00-\x1f\x7f]")
_STOP = object()


class _Followed:
    """One attempt's log: where reading got to and the line not finished yet (bounded)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.handle: IO[bytes] | None = None
        self.partial = bytearray()
        self.dropping = False  # inside a line that was already cut at MAX_LINE_BYTES

    def read(self) -> tuple[list[str], bool]:
        """Lines completed by the next chunk, and whether more was waiting."""
        if self.handle is None:
            try:
                self.handle = open(self.path, "rb")  # noqa: SIM115, PTH123 - kept open across passes
            except OSError:
                return [], False  # not created yet: the process starts after TaskStarted
        data = self.handle.read(CHUNK_BYTES)
        return self._split(data), len(data) == CHUNK_BYTES

    def _split(self, data: bytes) -> list[str]:
        *complete, rest = data.split(b"\n")
        lines = []
        for piece in complete:
            if not self.dropping:
                self.partial += piece[: MAX_LINE_BYTES + 1]
                lines.append(_text(self.partial))
            self.partial.clear()
            self.dropping = False
        if not self.dropping:
            self.partial += rest[: MAX_LINE_BYTES + 1]
            if len(self.partial) > MAX_LINE_BYTES:
                lines.append(_text(self.partial))
                self.partial.clear()
                self.dropping = True
        return lines

    def close(self) -> list[str]:
        """The unterminated last line, if any; the file is closed."""
        last = [_text(self.partial)] if self.partial and not self.dropping else []
        self.partial.clear()
        if self.handle is not None:
            self.handle.close()
        return last


def _text(raw: bytes | bytearray) -> str:
    cut = len(raw) > MAX_LINE_BYTES
    line = bytes(raw[:MAX_LINE_BYTES]).decode("utf-8", "replace").rstrip("\r")
    return line + "…" if cut else line


class LogFollower:
    """A listener that wraps another: every event is passed on from one thread of its own, in
    order, and between events the logs of running tasks (known from `TaskStarted` and
    `TaskFinished`) are read in bounded chunks and their lines passed on as `TaskOutput`.

    Calls from the run only queue, so a slow terminal never slows scheduling; a task's last
    lines are passed on before its `TaskFinished`. Use it as a context manager: leaving it
    passes on everything still queued.
    """

    def __init__(self, downstream: Callable[[object], None]) -> None:
        self._downstream = downstream
        self._events: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._files: dict[TaskId, _Followed] = {}
        self._thread = threading.Thread(target=self._work, name="ptx-tail", daemon=True)
        self._error: BaseException | None = None

    def __call__(self, event: object) -> None:
        self._events.put(event)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._events.put(_STOP)
        self._thread.join()
        if self._error is not None and exc[0] is None:
            raise self._error

    def _work(self) -> None:
        behind = False
        while True:
            try:
                event = self._events.get(timeout=0 if behind else POLL_SECONDS)
            except queue.Empty:
                behind = self._read_all()
                continue
            if event is _STOP:
                for unit in list(self._files):
                    self._finish(unit)
                return
            self._handle(event)

    def _handle(self, event: object) -> None:
        if isinstance(event, TaskStarted):
            self._finish(event.id)  # a retry writes a new file: the old one is complete
            self._files[event.id] = _Followed(event.log)
        elif isinstance(event, TaskFinished):
            self._finish(event.id)
        self._pass(event)

    def _read_all(self) -> bool:
        behind = False
        for unit, followed in list(self._files.items()):
            lines, more = followed.read()
            self._pass_lines(unit, lines)
            behind = behind or more
        return behind

    def _finish(self, unit: TaskId) -> None:
        followed = self._files.pop(unit, None)
        if followed is None:
            return
        more = True
        while more:
            lines, more = followed.read()
            self._pass_lines(unit, lines)
        self._pass_lines(unit, followed.close())

    def _pass_lines(self, unit: TaskId, lines: list[str]) -> None:
        for line in lines:
            self._pass(TaskOutput(id=unit, line=line))

    def _pass(self, event: object) -> None:
        if self._error is not None:
            return
        try:
            self._downstream(event)
        except Exception as error:  # noqa: BLE001 - raised again in the main thread on exit
            self._error = error


def last_line(path: str, size: int) -> str:
    """The last non-blank line of a log `size` bytes long, as a terminal would show it."""
    data, _ = log_end(path, TAIL_BYTES, size)
    # A progress bar rewrites its line with \r: the last piece is what a terminal shows.
    for piece in reversed(re.split(r"[\r\n]", data.decode("utf-8", "replace"))):
        line = _CONTROL.sub("", piece).strip()
        if line:
            return line
    return ""
