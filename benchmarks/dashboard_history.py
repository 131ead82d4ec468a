"""The dashboard case of `make bench`: a journal of 200 runs of 100 tasks each (made through
ptx's own journal and report code), then `ptx dashboard` over all of it: its time and size."""

from __future__ import annotations

import json
import random
import shutil
from typing import TYPE_CHECKING

from ptx.core.events import RunResult, Status, TaskResult
from ptx.journal.store import Journal
from ptx.outputs.report import stored_report

if TYPE_CHECKING:
    from pathlib import Path

RUNS, TASKS, JOBS = 200, 100, 8
SIZE_LIMIT = 5 * 10**6  # bytes
TIME_LIMIT = 2.0  # seconds


def make_history(folder: Path) -> Path:
    """A project in `folder` whose journal holds RUNS runs; returns its tasks.json."""
    shutil.rmtree(folder, ignore_errors=True)
    tasks_file = folder / ".taskmaster" / "tasks" / "tasks.json"
    tasks_file.parent.mkdir(parents=True)
    deps = {
        str(n): tuple(str(d) for d in range(max(1, n - 3), n) if d % 4) for n in range(1, TASKS + 1)
    }
    entries = [
        {
            "id": n,
            "title": f"Task {n}",
            "status": "pending",
            "dependencies": [int(d) for d in deps[str(n)]],
        }
        for n in range(1, TASKS + 1)
    ]
    tasks_file.write_text(json.dumps({"master": {"tasks": entries}}))
    rng = random.Random(RUNS)
    with Journal.open(folder / ".ptx") as journal:
        for number in range(RUNS):
            _record_run(journal, rng, deps, 1_700_000_000.0 + number * 3600)
    return tasks_file


def _record_run(
    journal: Journal, rng: random.Random, deps: dict[str, tuple[str, ...]], at: float
) -> None:
    run_id = journal.start_run(tag="master", jobs=JOBS, tasks_file="t", argv=["ptx"], started_at=at)
    clock, results = at, []
    for unit in deps:
        attempts = 2 if rng.random() < 0.05 else 1
        cost = round(rng.uniform(0.01, 0.5), 4)
        start = clock
        for attempt in range(1, attempts + 1):
            seconds = rng.uniform(5, 120)
            status = "failed" if attempt < attempts or rng.random() < 0.02 else "succeeded"
            journal.attempt_started(
                run_id=run_id, task=unit, attempt=attempt, command_hash="h", log_path="l",
                started_at=clock,
            )  # fmt: skip
            journal.attempt_ended(
                run_id=run_id, task=unit, attempt=attempt, ended_at=clock + seconds, exit_code=0,
                status=status,
            )  # fmt: skip
            clock += seconds / JOBS
        results.append(
            TaskResult(
                id=unit, title=f"Task {unit}", status=Status(status), attempts=attempts,
                started_at=start, ended_at=clock, cost_usd=cost, input_tokens=rng.randrange(10**5),
                output_tokens=rng.randrange(10**4),
                failed_attempts=("failed (exit 1)",) * (attempts - 1),
            )
        )  # fmt: skip
    result = RunResult(
        run_id=run_id, status="succeeded", jobs=JOBS, started_at=at, ended_at=clock,
        tasks=tuple(results), dependencies=deps,
    )  # fmt: skip
    journal.finish_run(run_id, status="succeeded", ended_at=clock)
    journal.save_report(run_id, stored_report(result))
