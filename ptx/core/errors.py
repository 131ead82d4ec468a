"""The one error tree of ptx and the exit codes it maps to; imports nothing from ptx."""

from __future__ import annotations

import enum
import errno


class ExitCode(enum.IntEnum):
    OK = 0
    FAILED = 1  # a task failed, or validation found errors
    BAD_INPUT = 2  # unreadable input, bad config, bad usage
    INTERNAL = 3
    INTERRUPTED = 130


class PtxError(Exception):
    """An expected failure: the CLI prints its message as one line, with no traceback."""

    exit_code: ExitCode = ExitCode.BAD_INPUT


class InputError(PtxError):
    """tasks.json cannot be found, read or understood."""


class ConfigError(PtxError):
    """The config file is unreadable or wrong; the message names the key path."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class UsageError(PtxError):
    """The command line asks for something impossible (unknown tag, unknown task id...)."""


class LockTimeoutError(PtxError):
    """Taskmaster's tasks.json.lock stayed held longer than ptx is willing to wait."""


class CycleError(PtxError):
    """The graph of work to run has a cycle; carries it as an ordered path."""

    exit_code = ExitCode.FAILED

    def __init__(self, cycle: tuple[str, ...]) -> None:
        self.cycle = cycle
        super().__init__("dependency cycle: " + " -> ".join(cycle))


# What the machine refuses, not what ptx got wrong: a full or read-only disk, a failing one.
DISK_CAUSES = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EIO: "input/output error",
}


def disk_problem(error: BaseException) -> str | None:
    """One line naming the cause and the path, for an OSError the disk caused; else None."""
    if not isinstance(error, OSError) or error.errno not in DISK_CAUSES:
        return None
    return write_problem(error, error.filename)


def write_problem(error: OSError, path: object) -> str:
    """ "cannot write PATH: CAUSE", in DISK_CAUSES' words where they apply."""
    where = "" if path is None else f" {path}"
    cause = DISK_CAUSES.get(error.errno or 0) or error.strerror or str(error)
    return f"cannot write{where}: {cause}"
