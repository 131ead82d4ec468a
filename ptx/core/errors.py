"""The one error tree of ptx and the exit codes it maps to; imports nothing from ptx."""

from __future__ import annotations

import enum


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
