"""Frozen data that flows through ptx: tasks, findings and the shared vocabulary; stdlib only."""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

TaskId = str
"""A normalised id: "7" for a task, "7.2" for subtask 2 of task 7."""

Command = str | tuple[str, ...]
"""A string runs under /bin/sh -c; a tuple is an argv run without a shell."""

KNOWN_STATUSES = frozenset(
    {"pending", "in-progress", "review", "done", "completed", "cancelled", "deferred", "blocked"}
)
NEVER_SCHEDULED_STATUSES = frozenset({"deferred", "blocked", "cancelled"})
# Also held by default: `review` means an agent finished and a person is reviewing, and
# Taskmaster's `next` never offers it (the config's `held_statuses` changes the set).
DEFAULT_HELD = NEVER_SCHEDULED_STATUSES | {"review"}
DEFAULT_SATISFIED = frozenset({"done", "completed", "cancelled"})
PRIORITY_RANK: Mapping[str, int] = MappingProxyType(
    {"critical": 4, "high": 3, "medium": 2, "low": 1}
)
DEFAULT_PRIORITY = "medium"
DEFAULT_STATUS = "pending"

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@functools.cache
def id_key(task_id: TaskId) -> tuple[int, ...]:
    """Sort key that orders "2" < "10" < "10.1" < "10.2" < "11" (cached: sorts call it a lot)."""
    return tuple(int(part) for part in task_id.split("."))


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """ "1 task", "2 tasks": every count ptx prints agrees with its number."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def seconds_text(seconds: float) -> str:
    """A duration as the report prints it: "4.2 s", "3 min 07.5 s"."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)} min {rest:04.1f} s"


def frozen_map(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping)) if mapping else _EMPTY


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskOptions:
    """Per-task ptx settings, from `metadata.ptx` in tasks.json or `tasks.<id>` in the config."""

    command: Command | None = None
    timeout_seconds: float | None = None
    retries: int | None = None
    resources: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    cwd: str | None = None
    env: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    estimate_seconds: float | None = None
    memory_limit: int | None = None  # bytes: the task's process tree is killed above it
    result: str | None = None  # "claude-json": read what it reports back from its output
    keep_daemons: bool | None = None  # True: what the command leaves running is not ended

    def merged_over(self, base: TaskOptions) -> TaskOptions:
        """These options where set, else `base`'s (config overrides win over metadata)."""
        return TaskOptions(
            command=self.command if self.command is not None else base.command,
            timeout_seconds=_first(self.timeout_seconds, base.timeout_seconds),
            retries=self.retries if self.retries is not None else base.retries,
            resources=self.resources or base.resources,
            cwd=self.cwd if self.cwd is not None else base.cwd,
            env=frozen_map({**base.env, **self.env}),
            estimate_seconds=_first(self.estimate_seconds, base.estimate_seconds),
            memory_limit=self.memory_limit if self.memory_limit is not None else base.memory_limit,
            result=self.result if self.result is not None else base.result,
            keep_daemons=self.keep_daemons if self.keep_daemons is not None else base.keep_daemons,
        )


def _first(a: float | None, b: float | None) -> float | None:
    return a if a is not None else b


@dataclass(frozen=True, slots=True, kw_only=True)
class Task:
    """One task or subtask as read from tasks.json, normalised; `raw` keeps the object as read."""

    id: TaskId
    token: int | float | str  # the id exactly as written, for writing back
    parent: TaskId | None  # set for subtasks
    title: str
    description: str = ""
    details: str = ""
    test_strategy: str = ""
    status: str = DEFAULT_STATUS  # lower-cased; "pending" when missing
    priority: str = DEFAULT_PRIORITY  # lower-cased; a subtask without one inherits its parent's
    dependencies: tuple[TaskId, ...] = ()  # resolved; may name ids that do not exist
    subtasks: tuple[TaskId, ...] = ()
    options: TaskOptions = field(default_factory=TaskOptions)
    raw: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    @property
    def is_subtask(self) -> bool:
        return self.parent is not None


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"


class Code(str, enum.Enum):
    """Stable finding codes: never renumber, only add."""

    CYCLE = "PTX101"
    MISSING_DEPENDENCY = "PTX102"
    SELF_DEPENDENCY = "PTX103"
    DUPLICATE_ID = "PTX104"
    DUPLICATE_DEPENDENCY = "PTX105"
    MALFORMED_DEPENDENCY = "PTX106"
    AMBIGUOUS_SUBTASK_DEPENDENCY = "PTX107"
    UNKNOWN_STATUS = "PTX108"
    UNKNOWN_PRIORITY = "PTX109"
    DONE_DEPENDS_ON_UNFINISHED = "PTX110"
    SUBTASK_DEPENDS_ON_PARENT = "PTX111"
    MALFORMED_TASK = "PTX112"
    SUSPICIOUS_ID = "PTX113"
    BAD_TASK_OPTIONS = "PTX114"
    NO_COMMAND = "PTX120"
    UNKNOWN_RESOURCE = "PTX121"
    RESOURCE_OVER_CAPACITY = "PTX122"


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    code: Code
    severity: Severity
    task: TaskId | None
    message: str
    tag: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskList:
    """The tasks of one tag, top-level tasks each followed by their subtasks, in file order."""

    tag: str
    tasks: tuple[Task, ...]
    findings: tuple[Finding, ...] = ()  # what reading found: malformed entries, unknown statuses...


@dataclass(frozen=True, slots=True, kw_only=True)
class Project:
    """A located and read tasks.json with the tag that was chosen."""

    path: Path  # the tasks.json
    root: Path  # project root: where .ptx/ lives and tasks run
    layout: str  # "legacy" or "tagged"
    tags: tuple[str, ...]  # every tag in the file, in file order
    tasks: TaskList  # the chosen tag
    notices: tuple[str, ...] = ()  # things to tell the user, e.g. which tag was picked and why


@dataclass(frozen=True, slots=True, kw_only=True)
class Reported:
    """What an attempt reported back (PTX_RESULT, claude-json): the known fields, checked;
    `data`: the whole document as reported, unknown fields kept."""

    cost_usd: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    session_id: str | None = None
    summary: str | None = None
    data: dict[str, Any] | None = None
    warning: str | None = None  # why something reported was not understood

    @property
    def empty(self) -> bool:
        return self.data is None and self.warning is None
