"""Tests for run.safety and ptx.run.admission: guards on fake readings, breakers on a fake clock."""

from __future__ import annotations

import dataclasses

import pytest

from ptx.core.events import BreakerChanged, Degraded, Event, StartsHeld, Status, TaskWaiting
from ptx.run.admission import Admission
from ptx.run.jobs import concurrency_cap
from ptx.run.safety import (
    Breakers,
    FailureGuard,
    IdleProbe,
    Limits,
    PsutilProbe,
    Reading,
    State,
    SystemGuard,
    system_verdict,
)
from ptx.taskmaster.config import CircuitBreaker, Config, ResourceLimits, SafetyThresholds

GiB = 2**30
CALM = Reading(memory_used=0.3, memory_available=8 * GiB, load_average=0.5)
LIMITS = Limits(utilization=0.8, memory_per_task=GiB)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeProbe:
    def __init__(self, reading: Reading = CALM, cores: int = 4) -> None:
        self.reading, self.count, self._cores = reading, 0, cores

    def read(self) -> Reading:
        self.count += 1
        return self.reading

    def cores(self) -> int:
        return self._cores


# --- system guards ---------------------------------------------------------------------------


def verdict(
    reading: Reading, running: int = 1, fresh: int = 0, limits: Limits = LIMITS
) -> str | None:
    return system_verdict(reading, running=running, fresh=fresh, limits=limits)


def test_a_calm_machine_lets_tasks_start() -> None:
    assert verdict(CALM) is None


@pytest.mark.parametrize(
    ("reading", "reason"),
    [
        (dataclasses.replace(CALM, memory_used=0.8), "memory"),
        (dataclasses.replace(CALM, memory_available=GiB - 1), "memory"),
        (Reading(memory_used=0.9, memory_available=0, load_average=99.0), "memory"),
    ],
)
def test_a_busy_machine_holds_tasks_back_and_says_why(reading: Reading, reason: str) -> None:
    assert verdict(reading) == reason


def test_load_holds_starts_only_when_a_load_average_was_asked_for() -> None:
    loaded = dataclasses.replace(CALM, load_average=40.0)
    assert verdict(loaded) is None  # other programs' CPU use is not ptx's to judge
    asked = dataclasses.replace(LIMITS, load_average=4.0)
    assert verdict(loaded, limits=asked) == "load average"
    assert verdict(dataclasses.replace(CALM, load_average=3.9), limits=asked) is None


def test_utilization_one_switches_the_memory_guard_off() -> None:
    full = Reading(memory_used=0.99, memory_available=0)
    off = Limits(utilization=1.0, memory_per_task=GiB)
    assert verdict(full, running=5, fresh=5, limits=off) is None
    probe = FakeProbe(full)
    assert SystemGuard(probe, off).verdict(5) is None
    assert probe.count == 0  # nothing to judge: the machine is not even read


def test_one_task_may_always_run() -> None:
    busy = Reading(memory_used=1.0, memory_available=0, load_average=99.0)
    assert verdict(busy, running=0) is None
    assert verdict(busy, running=1) == "memory"


def test_tasks_started_after_a_reading_count_as_using_memory_per_task() -> None:
    reading = dataclasses.replace(CALM, memory_available=3 * GiB)
    assert verdict(reading, fresh=2) is None
    assert verdict(reading, fresh=3) == "memory"


def test_the_guard_reads_at_most_every_half_second_and_never_when_idle() -> None:
    probe, clock = FakeProbe(), Clock()
    guard = SystemGuard(probe, LIMITS, clock=clock)
    assert guard.verdict(0) is None
    assert probe.count == 0
    for _ in range(5):
        guard.verdict(1)
    assert probe.count == 1
    clock.now += 0.5
    guard.verdict(1)
    assert probe.count == 2
    probe.reading = dataclasses.replace(CALM, memory_used=0.9)
    assert guard.verdict(1) is None  # the old reading stands until it is half a second old
    clock.now += 0.5
    assert guard.verdict(1) == "memory"


def test_the_guard_counts_starts_until_the_next_reading() -> None:
    probe, clock = FakeProbe(dataclasses.replace(CALM, memory_available=3 * GiB // 2)), Clock()
    guard = SystemGuard(probe, LIMITS, clock=clock)
    assert guard.verdict(1) is None
    guard.started("7")
    assert guard.verdict(2) == "memory"
    guard.finished("7")
    assert guard.verdict(1) is None  # an ended task uses nothing
    guard.started("8")
    assert guard.verdict(2) == "memory"
    clock.now += 0.5
    assert guard.verdict(2) is None  # a new reading includes what the task really uses


@pytest.mark.parametrize(
    ("cpu_per_task", "cores", "cap"),
    [(0.5, 2, 4), (1.0, 2, 2), (3.0, 2, 1), (0.3, 1, 3), (0.1, 1, 10), (2.0, 8, 4)],
)
def test_cpu_per_task_caps_concurrency(cpu_per_task: float, cores: int, cap: int) -> None:
    assert concurrency_cap(cpu_per_task, cores) == cap


def test_the_psutil_probe_reads_the_real_machine() -> None:
    probe = PsutilProbe()
    reading = probe.read()
    assert 0 < reading.memory_used < 1
    assert reading.memory_available > 0
    assert reading.load_average >= 0
    assert probe.cores() >= 1


# --- circuit breakers ------------------------------------------------------------------------

SETTINGS = CircuitBreaker(failure_threshold=3, timeout_seconds=60, half_open_timeout_seconds=30)
DB = {"db": 1}


def breakers() -> tuple[Breakers, Clock]:
    clock = Clock()
    return Breakers(["db", "gpu"], SETTINGS, clock=clock, wall=clock), clock


def fail(machine: Breakers, unit: str, request: dict[str, int] = DB) -> list[BreakerChanged]:
    machine.started(unit, request)
    return machine.finished(unit, request, ok=False)


def test_consecutive_failures_open_the_breaker() -> None:
    machine, _ = breakers()
    assert fail(machine, "1") == []
    assert fail(machine, "2") == []
    assert machine.blocking(DB) is None
    [change] = fail(machine, "3")
    assert (change.resource, change.state, change.reason) == ("db", "open", "3 failures in a row")
    assert machine.blocking(DB) == "db"
    assert machine.blocking({"gpu": 1}) is None  # the other resource is unaffected
    assert machine.blocking({"gpu": 1, "db": 1}) == "db"
    assert machine.blocking({}) is None


def test_a_success_resets_the_count() -> None:
    machine, _ = breakers()
    fail(machine, "1")
    fail(machine, "2")
    machine.started("3", DB)
    assert machine.finished("3", DB, ok=True) == []
    assert fail(machine, "4") == []
    assert fail(machine, "5") == []
    assert machine.blocking(DB) is None


def test_an_interrupted_attempt_counts_neither_way() -> None:
    machine, _ = breakers()
    fail(machine, "1")
    fail(machine, "2")
    machine.started("3", DB)
    assert machine.finished("3", DB, ok=None) == []
    assert [change.state for change in fail(machine, "4")] == ["open"]


def open_breaker() -> tuple[Breakers, Clock]:
    machine, clock = breakers()
    for unit in "123":
        fail(machine, unit)
    return machine, clock


def test_open_turns_half_open_after_the_timeout_and_lets_one_trial_through() -> None:
    machine, clock = open_breaker()
    assert machine.next_tick() == 60
    clock.now += 59.9
    assert machine.tick() == []
    clock.now += 0.1
    [change] = machine.tick()
    assert change.state == "half-open"
    assert machine.blocking(DB) is None
    machine.started("4", DB)
    assert machine.blocking(DB) == "db"  # only one trial at a time
    assert machine.next_tick() == 30


def test_a_successful_trial_closes_the_breaker() -> None:
    machine, clock = open_breaker()
    clock.now += 60
    machine.tick()
    machine.started("4", DB)
    [change] = machine.finished("4", DB, ok=True)
    assert (change.state, change.reason) == ("closed", "trial task 4 succeeded")
    assert machine.breakers["db"].state is State.CLOSED
    assert machine.next_tick() is None
    assert fail(machine, "5") == []  # counting starts again from zero


def test_a_failed_trial_opens_the_breaker_again_for_a_full_timeout() -> None:
    machine, clock = open_breaker()
    clock.now += 60
    machine.tick()
    machine.started("4", DB)
    clock.now += 10
    [change] = machine.finished("4", DB, ok=False)
    assert change.state == "open"
    assert machine.is_open("db")
    clock.now += 59
    assert machine.tick() == []
    clock.now += 1
    assert [change.state for change in machine.tick()] == ["half-open"]


def test_a_trial_that_runs_the_half_open_timeout_without_failing_closes_it() -> None:
    machine, clock = open_breaker()
    clock.now += 60
    machine.tick()
    machine.started("4", DB)
    clock.now += 29
    assert machine.tick() == []
    clock.now += 1
    [change] = machine.tick()
    assert (change.state, change.reason) == ("closed", "trial task 4 ran 30 s without failing")
    assert machine.blocking(DB) is None


def test_results_of_tasks_started_before_the_breaker_opened_do_not_move_it() -> None:
    machine, clock = breakers()
    machine.started("9", DB)  # still running when the breaker opens
    for unit in "123":
        fail(machine, unit)
    assert machine.finished("9", DB, ok=True) == []
    assert machine.is_open("db")
    clock.now += 60
    machine.tick()
    machine.started("4", DB)
    [change] = fail(machine, "8")  # any failure while half-open opens it again
    assert change.state == "open"


def test_every_transition_is_recorded_with_the_wall_clock() -> None:
    machine, clock = open_breaker()
    clock.now += 60
    machine.tick()
    machine.started("4", DB)
    machine.finished("4", DB, ok=True)
    assert [(c.state, c.at) for c in machine.changes] == [
        ("open", 1000.0),
        ("half-open", 1060.0),
        ("closed", 1060.0),
    ]


# --- the failure-rate guard ------------------------------------------------------------------


def test_the_failure_rate_is_judged_only_after_the_minimum() -> None:
    guard = FailureGuard(0.1, 10, wall=lambda: 5.0)
    assert [guard.record(ok=False) for _ in range(9)] == [None] * 9
    degraded = guard.record(ok=True)
    assert degraded == Degraded(
        reason="9 of 10 finished tasks failed (90%), above max_failure_rate 0.1", at=5.0
    )
    assert guard.record(ok=False) is None  # once is enough: it lasts for the rest of the run


def test_a_run_smaller_than_the_minimum_never_falls_back() -> None:
    guard = FailureGuard(0.1, 10)
    assert [guard.record(ok=False) for _ in range(7)] == [None] * 7


def test_a_rate_at_the_threshold_does_not_degrade() -> None:
    guard = FailureGuard(0.5, 4)
    for ok in (True, False, True, False):
        assert guard.record(ok=ok) is None
    assert FailureGuard(1.0, 1).record(ok=False) is None


# --- admission: everything together ----------------------------------------------------------


def admission(
    probe: FakeProbe | None = None, jobs: int = 4, clock: Clock | None = None
) -> Admission:
    settings = Config(
        resources={"db": 1, "gpu": 2},
        circuit_breaker=SETTINGS,
        safety_thresholds=SafetyThresholds(max_failure_rate=0.2, failure_rate_min_tasks=5),
        resource_limits=ResourceLimits(memory_per_task=GiB),
    )
    requests = {"1": {"db": 1}, "2": {"db": 1}, "3": {"gpu": 2}, "4": {"gpu": 1}}
    return Admission(
        config=settings,
        requests=requests,
        jobs=jobs,
        probe=probe or FakeProbe(),
        clock=clock or Clock(),
    )


def test_admission_says_why_each_unit_waits_and_only_when_that_changes() -> None:
    gate, told = admission(), list[Event]()
    gate.started("1")
    fits = gate.picker(told.append)
    assert fits is not None
    assert not fits("2")
    assert fits("4")
    again = gate.picker(told.append)
    assert again is not None
    assert not again("2")
    assert told == [TaskWaiting(id="2", reason="resource db")]


def test_admission_holds_everything_back_when_slots_or_the_machine_say_so() -> None:
    busy = FakeProbe(Reading(memory_used=0.95, memory_available=GiB))
    gate = admission(busy, jobs=2)
    assert gate.held_back(0) is None
    assert gate.held_back(1) == "memory"
    assert gate.held_back(2) == "a free slot"


def test_admission_falls_back_to_one_slot_with_a_single_event() -> None:
    gate = admission()
    events = []
    for status in (Status.SUCCEEDED, Status.FAILED, Status.MEMORY_EXCEEDED, Status.FAILED):
        gate.started("5")  # asks for no resource: no breaker is involved
        events += gate.finished("5", status, final=True)
    assert (gate.slots, events) == (4, [])  # four finished: too few to judge
    gate.started("5")
    events += gate.finished("5", Status.INTERRUPTED, final=True)
    gate.started("5")
    events += gate.finished("5", Status.SUCCEEDED, final=True)
    assert gate.slots == 1
    [degraded] = events  # the views word it; no Notice repeats it
    assert isinstance(degraded, Degraded)
    assert degraded.reason.startswith("3 of 5 finished tasks failed (60%)")


def test_failures_of_the_cluster_neither_fall_back_nor_open_breakers() -> None:
    gate = admission()
    events = []
    for _ in range(6):  # a lost Dask worker fails each attempt it ran
        gate.started("1")  # asks for db: its breaker would open after three failures
        events += gate.finished("1", Status.FAILED, final=True, infrastructure=True)
    assert (gate.slots, events) == (4, [])
    gate.started("1")
    events += gate.finished("1", Status.FAILED, final=True)  # the same, from the command
    assert gate.slots == 4  # one failure among one counted result: too few to judge a run


def test_a_breaker_opened_by_failures_stops_its_tasks_without_reserving_units() -> None:
    gate = admission()
    events = []
    for _ in range(3):
        gate.started("1")
        events += gate.finished("1", Status.TIMEOUT, final=False)
    assert [event.state for event in events if isinstance(event, BreakerChanged)] == ["open"]
    told: list[object] = []
    fits = gate.picker(told.append)
    assert fits is not None
    assert not fits("2")
    assert gate.stuck("2") == "breaker db is open"
    assert told == [TaskWaiting(id="2", reason="breaker db")]
    assert gate.resources.free("db") == 1


def test_attempts_the_machinery_lost_are_no_evidence_against_the_tasks() -> None:
    gate = admission()
    events = []
    for _ in range(6):  # dead workers, setup errors: failed attempts, not failing tasks
        gate.started("5")
        events += gate.finished("5", Status.FAILED, final=True, infrastructure=True)
    assert (gate.slots, events, gate.failures.finished) == (4, [], 0)
    for _ in range(5):
        gate.started("5")
        events += gate.finished("5", Status.FAILED, final=True)
    assert gate.slots == 1
    assert [type(event) for event in events] == [Degraded]


def test_admission_tells_which_guard_holds_starts_and_for_how_long() -> None:
    clock = Clock()
    gate = admission(clock=clock)
    assert gate.hold(None) == []
    assert gate.hold("memory") == [StartsHeld(guard="memory")]
    clock.now += 2.5
    assert gate.hold("memory") == []  # still the same hold: said once
    assert gate.hold("load average") == [StartsHeld(guard="load average")]
    clock.now += 1.0
    assert gate.hold(None) == [StartsHeld(guard=None)]
    clock.now += 9.0
    assert gate.held_seconds() == (("load average", 1.0), ("memory", 2.5))


def test_remote_tasks_are_never_held_by_this_machine() -> None:
    limits = Limits(utilization=0.8, memory_per_task=GiB, load_average=0.0)
    assert SystemGuard(IdleProbe(), limits).verdict(50) is None
