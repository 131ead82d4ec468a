"""A run as a Chrome trace (Trace Event Format JSON), as Perfetto and chrome://tracing open it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ptx.core.events import BreakerChanged, Degraded, RunResult
    from ptx.journal.schema import AttemptRecord

PID = 1
MICROSECONDS = 1_000_000


def chrome_trace(result: RunResult, attempts: Sequence[AttemptRecord]) -> str:
    """One complete event per attempt on its worker slot's track, instant events for the
    fall-back and breaker changes, and a counter of running attempts."""
    ordered = sorted(attempts, key=lambda record: (record.started_at, record.task, record.attempt))
    ends = [_end(record, result) for record in ordered]
    slots = worker_slots([(r.started_at, end) for r, end in zip(ordered, ends, strict=True)])
    titles = {task.id: task.title for task in result.tasks}
    origin = result.started_at
    events: list[dict[str, Any]] = [
        {"name": "process_name", "ph": "M", "pid": PID, "args": {"name": f"ptx {result.run_id}"}}
    ]
    events += [
        {
            "name": "thread_name",
            "ph": "M",
            "pid": PID,
            "tid": slot,
            "args": {"name": f"worker {slot}"},
        }
        for slot in sorted(set(slots))
    ]
    events += [
        _complete(record, end, slot, titles.get(record.task, ""), origin)
        for record, end, slot in zip(ordered, ends, slots, strict=True)
    ]
    events += _notices(result) + _running_counter(ordered, ends, origin)
    return json.dumps({"traceEvents": events, "displayTimeUnit": "ms"}, ensure_ascii=False) + "\n"


def _complete(
    record: AttemptRecord, end: float, slot: int, title: str, origin: float
) -> dict[str, Any]:
    start = micro(record.started_at - origin)
    return {
        "name": f"{record.task}: {title}" if title else record.task,
        "cat": "task",
        "ph": "X",
        "ts": start,
        # From the rounded end, not the rounded length: back-to-back attempts on one track
        # must not overlap by a rounding error (Perfetto refuses overlapping events).
        "dur": micro(end - origin) - start,
        "pid": PID,
        "tid": slot,
        "args": {
            "id": record.task,
            "attempt": record.attempt,
            "status": record.status,
            "exit_code": record.exit_code,
        },
    }


def worker_slots(intervals: Sequence[tuple[float, float]]) -> list[int]:
    """Slot (from 1) of each (start, end) interval, given in start order: the first slot free
    at its start, a new one only when all are busy. The journal does not record which worker
    ran an attempt; a pool of `jobs` workers never runs more than `jobs` at once."""
    ends: list[float] = []
    slots = []
    for start, end in intervals:
        free = next((index for index, busy in enumerate(ends) if busy <= start), len(ends))
        if free == len(ends):
            ends.append(end)
        ends[free] = end
        slots.append(free + 1)
    return slots


def _end(record: AttemptRecord, result: RunResult) -> float:
    """An attempt the journal never saw end (ptx could not run it) ends with its task."""
    if record.ended_at is not None:
        return record.ended_at
    task_end = next((t.ended_at for t in result.tasks if t.id == record.task), None)
    return max(record.started_at, task_end if task_end is not None else result.ended_at)


def micro(seconds: float) -> int:
    """Whole microseconds since the run started (the trace's time unit)."""
    return round(max(0.0, seconds) * MICROSECONDS)


def _notices(result: RunResult) -> list[dict[str, Any]]:
    changes: list[BreakerChanged | Degraded] = [*result.breakers]
    if result.degraded is not None:
        changes.append(result.degraded)
    return [_instant(change.title, change.at, result, reason=change.reason) for change in changes]


def _instant(name: str, at: float, result: RunResult, *, reason: str) -> dict[str, Any]:
    # A report from before these times were kept says 0.0: pin such a notice to the start.
    offset = at - result.started_at if at else 0.0
    return {
        "name": name,
        "cat": "notice",
        "ph": "i",
        "s": "g",
        "ts": micro(offset),
        "pid": PID,
        "args": {"reason": reason},
    }


def _running_counter(
    ordered: Sequence[AttemptRecord], ends: Sequence[float], origin: float
) -> list[dict[str, Any]]:
    """Attempts running over time; at one instant, ends count before starts."""
    changes = sorted(
        [(end, 0, -1) for end in ends] + [(record.started_at, 1, 1) for record in ordered]
    )
    events = [_counter(0.0, 0)]
    running = 0
    for at, _, step in changes:
        running += step
        events.append(_counter(at - origin, running))
    return events


def _counter(offset: float, running: int) -> dict[str, Any]:
    return {
        "name": "running",
        "ph": "C",
        "ts": micro(offset),
        "pid": PID,
        "args": {"running": running},
    }
