"""Whether a ready unit may start now, and why not: slots, resources, the machine, breakers.

The scheduler thread owns one `Admission` per run and tells it what starts and what ends; it
answers with verdicts and with the events the run should emit. No threads, no I/O besides the
system probe it is given.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ptx.core.events import FAILURES, Held, StartsHeld, Status, TaskWaiting
from ptx.run.commandline import effective_options
from ptx.run.resources import Resources
from ptx.run.safety import Breakers, FailureGuard, Limits, SystemGuard

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from ptx.core.events import Event
    from ptx.core.model import Task, TaskId
    from ptx.run.resources import Round
    from ptx.run.safety import SystemProbe
    from ptx.taskmaster.config import Config

SLOT = "a free slot"
MAX_HELD = 10_000  # held starts kept for a run's report: its size stays bounded
_NO_REQUEST: Mapping[str, int] = {}


def requests_of(tasks: Iterable[Task], config: Config) -> dict[TaskId, Mapping[str, int]]:
    """What each task asks of the named resources (only tasks that ask for any)."""
    if not config.resources:  # validation refuses requests for resources that do not exist
        return {}
    requests = {}
    for task in tasks:
        request = effective_options(task, config).resources
        if request:
            requests[task.id] = request
    return requests


class Admission:
    """The safety controller of one run."""

    def __init__(  # noqa: PLR0913 - the settings, the work and the seams of one run
        self,
        *,
        config: Config,
        requests: Mapping[TaskId, Mapping[str, int]],
        jobs: int,
        probe: SystemProbe,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.requests, self.jobs = requests, jobs
        self.resources = Resources(config.resources)
        self.breakers = Breakers(config.resources, config.circuit_breaker, clock=clock, wall=wall)
        thresholds = config.safety_thresholds
        limits = Limits(
            utilization=thresholds.max_resource_utilization,
            memory_per_task=config.resource_limits.memory_per_task,
            load_average=thresholds.max_load_average,
        )
        self.guard = SystemGuard(probe, limits, clock=clock)
        self.failures = FailureGuard(
            thresholds.max_failure_rate, thresholds.failure_rate_min_tasks, wall=wall
        )
        self.waiting: dict[TaskId, str] = {}  # the reason last told, per waiting unit
        self.clock = clock
        self.holding: tuple[str, float] | None = None  # the guard holding every start, since
        self.held: dict[str, float] = {}  # seconds each guard held starts, closed holds only
        self.held_starts: list[Held] = []  # starts held for more than a slot, for the run's report

    @property
    def slots(self) -> int:
        """Units that may run at once: -j, or one once the run fell back to sequential."""
        return 1 if self.failures.degraded else self.jobs

    def held_back(self, running: int) -> str | None:
        """Why no unit at all may start now (no slot, the machine), or None."""
        if running >= self.slots:
            return SLOT
        return self.guard.verdict(running)

    def hold(self, guard: str | None) -> list[Event]:
        """A machine guard holds every ready unit now (`guard`), or nothing is held (None); the
        event the view shows when that changed."""
        current = self.holding[0] if self.holding else None
        if guard == current:
            return []
        now = self.clock()
        if self.holding is not None:
            name, since = self.holding
            self.held[name] = self.held.get(name, 0.0) + now - since
        self.holding = None if guard is None else (guard, now)
        return [StartsHeld(guard=guard)]

    def held_seconds(self) -> tuple[tuple[str, float], ...]:
        """How long each guard held starts, once the run is over (holds are closed by then)."""
        return tuple((guard, round(seconds, 3)) for guard, seconds in sorted(self.held.items()))

    def picker(self, emit: Callable[[Event], None]) -> Callable[[TaskId], bool] | None:
        """A `ReadyQueue.take` predicate for one pick, telling `emit` why passed units wait;
        None when no unit asks for a resource, so every ready unit fits."""
        if not self.requests:
            return None
        round_ = self.resources.round()

        def fits(unit: TaskId) -> bool:
            reason = self.lacking(unit, round_)
            if reason is not None:
                self.tell(unit, reason, emit)
            return reason is None

        return fits

    def lacking(self, unit: TaskId, round_: Round) -> str | None:
        """What `unit` itself waits for ("breaker db", "resource db"), or None if it may start.
        A unit behind a breaker reserves nothing: the breaker, not the units, holds it back."""
        request = self.requests.get(unit, _NO_REQUEST)
        if not request:
            return None
        name = self.breakers.blocking(request)
        if name is not None:
            return f"breaker {name}"
        name = round_.lacking(request)
        return None if name is None else f"resource {name}"

    def tell(self, unit: TaskId, reason: str, emit: Callable[[Event], None]) -> None:
        """Emit why `unit` waits, when that changed since it was last told."""
        if self.waiting.get(unit) != reason:
            self.waiting[unit] = reason
            emit(TaskWaiting(id=unit, reason=reason))
            # A wait for a slot shows in the run's timeline already (every slot busy); a run of
            # thousands of tasks would fill its report with them.
            if reason != SLOT and len(self.held_starts) < MAX_HELD:
                self.held_starts.append(Held(id=unit, reason=reason, at=time.time()))

    def survey(self, running: int, emit: Callable[[Event], None]) -> Callable[[TaskId], bool]:
        """A `ReadyQueue.take` predicate that takes nothing and tells why each ready unit waits."""
        general = self.held_back(running)
        round_ = self.resources.round()

        def note(unit: TaskId) -> bool:
            reason = general or self.lacking(unit, round_)
            if reason is not None:
                self.tell(unit, reason, emit)
            return False

        return note

    def stuck(self, unit: TaskId) -> str | None:
        """The open breaker that holds `unit`, as a reason to skip it once nothing else runs."""
        name = self.breakers.blocking(self.requests.get(unit, _NO_REQUEST))
        return None if name is None else f"breaker {name} is open"

    def started(self, unit: TaskId) -> None:
        request = self.requests.get(unit, _NO_REQUEST)
        self.waiting.pop(unit, None)
        self.resources.acquire(request)
        self.breakers.started(unit, request)
        self.guard.started(unit)

    def finished(
        self, unit: TaskId, status: Status, *, final: bool, infrastructure: bool = False
    ) -> list[Event]:
        """An attempt ended (`final`: no retry follows); the events its end causes. A failure
        of the `infrastructure` (a lost Dask worker) counts for neither breakers nor fall-back."""
        request = self.requests.get(unit, _NO_REQUEST)
        self.resources.release(request)
        self.guard.finished(unit)
        ok = True if status is Status.SUCCEEDED else False if status in FAILURES else None
        if infrastructure:
            ok = None
        events: list[Event] = list(self.breakers.finished(unit, request, ok=ok))
        if final and ok is not None:
            degraded = self.failures.record(ok=ok)
            if degraded is not None:  # the views say it, with the word "sequential"
                events.append(degraded)
        return events

    def skipped(self, unit: TaskId) -> None:
        self.waiting.pop(unit, None)

    def tick(self) -> list[Event]:
        return list(self.breakers.tick())

    def next_tick(self) -> float | None:
        return self.breakers.next_tick()
