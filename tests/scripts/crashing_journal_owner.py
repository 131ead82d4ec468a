"""Open the journal in the state directory argv[1], record a run with attempts (one ended,
two still running), print the run's id, then die by SIGKILL before anything is closed, as a
crashed ptx would."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from ptx.journal.store import Journal

journal = Journal.open(Path(sys.argv[1]))
run_id = journal.start_run(tag="master", jobs=2, tasks_file="tasks.json", argv=["ptx", "run"])
journal.attempt_started(
    run_id=run_id, task="1", attempt=1, command_hash="h", log_path="1.log", started_at=100.0
)
journal.attempt_spawned(run_id=run_id, task="1", attempt=1, pgid=os.getpgid(0), create_time=5.0)
journal.attempt_ended(
    run_id=run_id, task="1", attempt=1, ended_at=101.0, exit_code=0, status="succeeded"
)
journal.attempt_started(
    run_id=run_id, task="2", attempt=1, command_hash="h", log_path="2.log", started_at=102.0
)
journal.attempt_spawned(run_id=run_id, task="2", attempt=1, pgid=4242, create_time=6.0)
journal.attempt_started(
    run_id=run_id, task="3", attempt=1, command_hash="h", log_path="3.log", started_at=103.0
)
print(run_id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
