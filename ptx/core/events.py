"""What a run tells its views: frozen events and the results they carry; no terminal code."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ptx.core.model import TaskId


class Status(str, enum.Enum):
    """Final status of a task in a run (the report's vocabulary)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMEOUT = "timeout"
    MEMORY_EXCEEDED = "memory-exceeded"
    SKIPPED = "skipped"
    INTERRUPTED = "interrupted"
    NOT_RUN = "not-run"
    # Isolated runs: the command succeeded and its work waits for, or is in, its merge; then
    # a merge that conflicts ends the task here (counted as failed, never retried).
    INTEGRATING = "integrating"
    CONFLICT = "conflict"


# An attempt that ran and did not succeed: it counts against breakers and the failure rate,
# it may be retried, and the report shows it under FAILED.
FAILURES = frozenset({Status.FAILED, Status.TIMEOUT, Status.MEMORY_EXCEEDED})


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskIntegration:
    """What an isolated run did with a task's work."""

    result: str  # merged | no changes | conflict | verify failed | not integrated
    branch: str | None = None  # the task branch, when the task changed anything
    commit: str | None = None  # its tip
    paths: tuple[str, ...] = ()  # the conflicting paths for a conflict, else the changed ones
    insertions: int = 0
    deletions: int = 0
    worktree: str | None = None  # kept for inspection; None once removed


@dataclass(frozen=True, slots=True, kw_only=True)
class RunIntegration:
    """The integration branch of an isolated run."""

    branch: str
    base: str  # the commit it started from
    commit: str  # its tip when the run ended


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskResult:
    id: TaskId
    title: str
    status: Status
    exit_code: int | None = None
    attempts: int = 0
    started_at: float | None = None
    ended_at: float | None = None
    log: str | None = None
    reason: str | None = None  # why it was skipped or not run
    command: str | None = None
    integration: TaskIntegration | None = None  # isolated runs only
    spans: tuple[tuple[float, float], ...] = ()  # (start, end) of each attempt, in order
    # What its attempts reported back (PTX_RESULT, claude-json), summed over its attempts.
    cost_usd: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    session_id: str | None = None  # the last one reported
    summary: str | None = None  # the last one reported
    warnings: tuple[str, ...] = ()  # reports that were not understood
    failed_attempts: tuple[str, ...] = ()  # the outcome of each attempt that failed: "timeout"

    @property
    def flaky(self) -> bool:
        """Failed, then succeeded on a retry, in this run."""
        return self.status is Status.SUCCEEDED and bool(self.failed_attempts)

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    run_id: str
    status: str  # succeeded | failed | interrupted
    jobs: int
    started_at: float
    ended_at: float
    tasks: tuple[TaskResult, ...]
    dependencies: dict[TaskId, tuple[TaskId, ...]]  # the work graph, for the report's figures
    degraded: Degraded | None = None
    breakers: tuple[BreakerChanged, ...] = ()  # every transition, in order
    # Units not run because of their status (or what they wait for), with why: not failures.
    blocked: tuple[tuple[TaskId, str], ...] = ()
    failed_targets: tuple[TaskId, ...] = ()  # of `blocked`, targets asked for: the run failed
    unwritten: tuple[TaskId, ...] = ()  # statuses write-back could not write: the run failed
    integration: RunIntegration | None = None  # isolated runs only
    held: tuple[tuple[str, float], ...] = ()  # (guard, seconds it held starts), guards that did
    max_cost_usd: float | None = None  # the budget, when the run had one
    budget_stopped: bool = False  # the budget was reached with tasks left to start
    held_starts: tuple[Held, ...] = ()  # why starts were held, other than for a slot, in order


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskInfo:
    """What a view needs to know of a task before it runs."""

    id: TaskId
    title: str
    dependencies: tuple[TaskId, ...]  # inside this run's work
    estimate: float | None  # seconds, from history or metadata


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStarted:
    run_id: str
    jobs: int
    total: int
    log_dir: str
    tasks: tuple[TaskInfo, ...] = ()  # in id order


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskSpawned:
    """Sent from a pool thread the moment the process exists: listeners must be thread-safe."""

    id: TaskId
    attempt: int
    pid: int  # also the process group id


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskStarted:
    id: TaskId
    title: str
    attempt: int
    command: str
    log: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskFinished:
    id: TaskId
    attempt: int
    status: Status
    exit_code: int | None
    duration: float
    log: str
    retry_in: float | None = None  # set when another attempt follows after this many seconds
    error: str | None = None  # why the command could not run at all


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskSkipped:
    id: TaskId
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskWaiting:
    """A ready task cannot start yet; sent when the reason changes, not on every look."""

    id: TaskId
    reason: str  # "a free slot", "resource db", "memory", "cpu", "breaker db"


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskOutput:
    """A line a running task wrote to its log (only produced when a view asks for output)."""

    id: TaskId
    line: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerChanged:
    resource: str
    state: str  # "closed" | "open" | "half-open"
    reason: str
    at: float  # time.time()

    @property
    def title(self) -> str:
        return f"breaker {self.resource} {self.state}"

    @property
    def text(self) -> str:
        """The one text every view and export gives this change."""
        return f"{self.title}: {self.reason}"


@dataclass(frozen=True, slots=True, kw_only=True)
class StartsHeld:
    """A machine guard holds every start now ("memory", "load average"), or none does (None)."""

    guard: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Held:
    """A ready task's start was held (by a resource, a breaker or the machine) from `at` on."""

    id: TaskId
    reason: str
    at: float  # time.time()


@dataclass(frozen=True, slots=True, kw_only=True)
class Degraded:
    """The run fell back to one task at a time."""

    reason: str
    at: float  # time.time()

    title = "fell back to sequential, one task at a time"

    @property
    def text(self) -> str:
        """The one text every view and export gives the fall-back."""
        return f"{self.title}: {self.reason}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Notice:
    message: str
    warning: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFinished:
    result: RunResult


Event = (
    RunStarted
    | TaskStarted
    | TaskSpawned
    | TaskFinished
    | TaskSkipped
    | TaskWaiting
    | TaskOutput
    | BreakerChanged
    | StartsHeld
    | Degraded
    | Notice
    | RunFinished
)


class Listener(Protocol):
    def __call__(self, event: Event) -> None: ...
