"""The safety controller's pure verdicts: system guards, circuit breakers, the failure-rate guard.

Readings of the machine come through `SystemProbe` (psutil in production, a fake in tests) and
time through injectable clocks, so every rule here can be checked without a busy machine.
"""

from __future__ import annotations

import enum
import math
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import psutil

from ptx.core.events import BreakerChanged, Degraded
from ptx.core.model import counted
from ptx.run.jobs import available_cores

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from ptx.core.model import TaskId
    from ptx.taskmaster.config import CircuitBreaker

SAMPLE_SECONDS = 0.5
"""A reading is reused for this long: psutil's CPU figure needs an interval to mean anything."""

MEMORY = "memory"
LOAD = "load average"


# --- the machine -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Reading:
    memory_used: float  # 0..1 of total memory
    memory_available: int  # bytes
    load_average: float = 0.0  # of the last minute, as `make -l` and `uptime` read it


class SystemProbe(Protocol):
    def read(self) -> Reading: ...

    def cores(self) -> int: ...


class IdleProbe:
    """For a remote executor: the guards watch this machine, where remote tasks use nothing."""

    def read(self) -> Reading:
        # Below any load average asked for, even 0: remote tasks add no load here.
        return Reading(memory_used=0.0, memory_available=2**62, load_average=-math.inf)

    def cores(self) -> int:
        return available_cores()


class PsutilProbe:
    """The real machine."""

    def read(self) -> Reading:
        memory = psutil.virtual_memory()
        return Reading(
            memory_used=memory.percent / 100,
            memory_available=memory.available,
            load_average=os.getloadavg()[0],
        )

    def cores(self) -> int:
        return available_cores()


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """The machine guards' settings: memory (off at `utilization` 1.0) and the load average
    (off unless asked for, like `make -l`)."""

    utilization: float  # of memory; 1.0: the memory guard never holds a start
    memory_per_task: int  # bytes a start needs free
    load_average: float | None = None

    @property
    def idle(self) -> bool:
        """Both guards are off: the machine is never read."""
        return self.utilization >= 1.0 and self.load_average is None


def system_verdict(reading: Reading, *, running: int, fresh: int, limits: Limits) -> str | None:
    """Why one more task may not start now (`MEMORY`, `LOAD`), or None if it may.

    One task may always run: with nothing running the machine never stops ptx. `fresh` tasks
    started after the reading was taken, and each is assumed to take `memory_per_task` of it.
    CPU use by other programs holds nothing unless a load average was asked for: like make and
    GNU parallel, ptx runs the -j it was given.
    """
    if running == 0:
        return None
    if limits.utilization < 1.0:
        if reading.memory_used >= limits.utilization:
            return MEMORY
        needed = limits.memory_per_task
        if reading.memory_available - fresh * needed < needed:
            return MEMORY
    if limits.load_average is not None and reading.load_average >= limits.load_average:
        return LOAD
    return None


class SystemGuard:
    """`system_verdict` on a reading that is at most `SAMPLE_SECONDS` old."""

    def __init__(
        self, probe: SystemProbe, limits: Limits, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.probe, self.clock, self.limits = probe, clock, limits
        self._reading: Reading | None = None
        self._read_at = -math.inf
        self._fresh: set[TaskId] = set()  # running, and started after the reading

    def verdict(self, running: int) -> str | None:
        if running == 0 or self.limits.idle:
            return None  # no reading needed, so an idle loop never touches psutil
        now = self.clock()
        if self._reading is None or now - self._read_at >= SAMPLE_SECONDS:
            self._reading, self._read_at = self.probe.read(), now
            self._fresh.clear()
        return system_verdict(
            self._reading, running=running, fresh=len(self._fresh), limits=self.limits
        )

    def started(self, unit: TaskId) -> None:
        """`unit` started: until the next reading (or its end) it counts as `memory_per_task`."""
        self._fresh.add(unit)

    def finished(self, unit: TaskId) -> None:
        self._fresh.discard(unit)


# --- circuit breakers ------------------------------------------------------------------------


class State(str, enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(slots=True)
class Breaker:
    """One resource's breaker; `since` is when it entered its state, on the breakers' clock."""

    state: State = State.CLOSED
    failures: int = 0  # in a row, while closed
    since: float = 0.0
    trial: TaskId | None = None
    trial_since: float = 0.0


class Breakers:
    """One breaker per named resource.

    closed --failure_threshold failures in a row--> open --timeout_seconds--> half-open, which
    lets one trial task through; the trial's success closes it, its failure (or any failure)
    opens it again, and a trial that runs `half_open_timeout_seconds` without failing closes it.
    Results of tasks that started before the breaker opened do not move an open breaker.
    """

    def __init__(
        self,
        names: Iterable[str],
        settings: CircuitBreaker,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.settings, self.clock, self.wall = settings, clock, wall
        self.breakers = {name: Breaker() for name in names}
        self.changes: list[BreakerChanged] = []

    def blocking(self, request: Mapping[str, int]) -> str | None:
        """The first resource of `request` whose breaker stops a task now, else None."""
        for name in request:
            breaker = self.breakers.get(name)
            if breaker is None or breaker.state is State.CLOSED:
                continue
            if breaker.state is State.OPEN or breaker.trial is not None:
                return name
        return None

    def is_open(self, name: str) -> bool:
        return self.breakers[name].state is State.OPEN

    def started(self, unit: TaskId, request: Mapping[str, int]) -> None:
        """`unit` passed `blocking`: in a half-open breaker it is the trial."""
        for name in request:
            breaker = self.breakers.get(name)
            if breaker is not None and breaker.state is State.HALF_OPEN and breaker.trial is None:
                breaker.trial, breaker.trial_since = unit, self.clock()

    def finished(
        self, unit: TaskId, request: Mapping[str, int], *, ok: bool | None
    ) -> list[BreakerChanged]:
        """An attempt of `unit` ended: succeeded (True), failed (False) or neither (None, e.g.
        interrupted). Returns the transitions it caused."""
        changed = []
        for name in request:
            breaker = self.breakers.get(name)
            if breaker is None:
                continue
            trial = breaker.trial == unit
            if trial:
                breaker.trial = None
            if ok is None or breaker.state is State.OPEN:
                continue
            change = self._judge(name, breaker, ok=ok, trial=trial, unit=unit)
            if change is not None:
                changed.append(change)
        return changed

    def _judge(
        self, name: str, breaker: Breaker, *, ok: bool, trial: bool, unit: TaskId
    ) -> BreakerChanged | None:
        if breaker.state is State.HALF_OPEN:
            if ok and trial:
                return self._move(name, State.CLOSED, f"trial task {unit} succeeded")
            if not ok:
                return self._move(name, State.OPEN, f"task {unit} failed while half-open")
            return None
        if ok:
            breaker.failures = 0
            return None
        breaker.failures += 1
        if breaker.failures < self.settings.failure_threshold:
            return None
        return self._move(name, State.OPEN, f"{counted(breaker.failures, 'failure')} in a row")

    def tick(self) -> list[BreakerChanged]:
        """The transitions that time alone causes, due now."""
        now, settings, changed = self.clock(), self.settings, []
        for name, breaker in self.breakers.items():
            if breaker.state is State.OPEN and now - breaker.since >= settings.timeout_seconds:
                reason = f"open for {settings.timeout_seconds:g} s: one trial task may run"
                changed.append(self._move(name, State.HALF_OPEN, reason))
            elif (
                breaker.state is State.HALF_OPEN
                and breaker.trial is not None
                and now - breaker.trial_since >= settings.half_open_timeout_seconds
            ):
                seconds = settings.half_open_timeout_seconds
                reason = f"trial task {breaker.trial} ran {seconds:g} s without failing"
                changed.append(self._move(name, State.CLOSED, reason))
        return changed

    def next_tick(self) -> float | None:
        """Seconds until `tick` may have something to do; None when only a result can."""
        now, settings = self.clock(), self.settings
        due = [
            breaker.since + settings.timeout_seconds - now
            for breaker in self.breakers.values()
            if breaker.state is State.OPEN
        ] + [
            breaker.trial_since + settings.half_open_timeout_seconds - now
            for breaker in self.breakers.values()
            if breaker.state is State.HALF_OPEN and breaker.trial is not None
        ]
        return max(0.0, min(due)) if due else None

    def _move(self, name: str, state: State, reason: str) -> BreakerChanged:
        breaker = self.breakers[name]
        breaker.state, breaker.since, breaker.failures = state, self.clock(), 0
        if state is not State.HALF_OPEN:
            breaker.trial = None
        change = BreakerChanged(resource=name, state=state.value, reason=reason, at=self.wall())
        self.changes.append(change)
        return change


# --- the failure-rate guard ------------------------------------------------------------------


class FailureGuard:
    """Falls back to one task at a time, for the rest of the run, once failed / finished passes
    `max_rate` after at least `minimum` tasks finished for good. Only the tasks' own results
    count: an attempt lost to the machinery (a dead Dask worker, a setup error) is no evidence
    that the tasks fail."""

    def __init__(
        self, max_rate: float, minimum: int, *, wall: Callable[[], float] = time.time
    ) -> None:
        self.max_rate, self.minimum, self.wall = max_rate, minimum, wall
        self.finished = self.failed = 0
        self.degraded: Degraded | None = None

    def record(self, *, ok: bool) -> Degraded | None:
        """A task finished for good (retries included); returns the fall-back when it happens."""
        self.finished += 1
        self.failed += not ok
        rate = self.failed / self.finished
        if self.degraded or self.finished < self.minimum or rate <= self.max_rate:
            return None
        reason = (
            f"{self.failed} of {self.finished} finished tasks failed ({rate:.0%}), "
            f"above max_failure_rate {self.max_rate:g}"
        )
        self.degraded = Degraded(reason=reason, at=self.wall())
        return self.degraded
