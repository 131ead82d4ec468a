"""Hand-built tasks and task lists for the graph-level tests, and small shared helpers."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from ptx.core.model import Task, TaskList

if TYPE_CHECKING:
    import sqlite3

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "data" / "taskmaster"  # the vendored Taskmaster files, see SOURCES.md
SCRIPTS = REPO / "tests" / "scripts"  # the small programs tests run with sys.executable


REPORTED_COLUMNS = ("cost_usd", "input_tokens", "output_tokens", "session_id", "reported")


def drop_schema_6(db: sqlite3.Connection) -> None:
    """Take out what journal schema 6 added (what attempts report back), as a store written by
    an older ptx lacks it."""
    for column in REPORTED_COLUMNS:
        db.execute(f"ALTER TABLE attempts DROP COLUMN {column}")


def task(task_id: str, *deps: str, status: str = "pending", priority: str = "medium") -> Task:
    parent = task_id.rsplit(".", 1)[0] if "." in task_id else None
    return Task(
        id=task_id,
        token=task_id,
        parent=parent,
        title=f"task {task_id}",
        status=status,
        priority=priority,
        dependencies=deps,
    )


def tasklist(*tasks: Task, tag: str = "master") -> TaskList:
    """A TaskList as the reader builds it: each task knows its subtasks."""
    children: dict[str, list[str]] = {}
    for t in tasks:
        if t.parent is not None:
            children.setdefault(t.parent, []).append(t.id)
    filled = [dataclasses.replace(t, subtasks=tuple(children.get(t.id, ()))) for t in tasks]
    return TaskList(tag=tag, tasks=tuple(filled))


def pids_in(path: Path) -> list[int]:
    """The pids commands wrote to `path`, none if it was never written."""
    return [int(word) for word in path.read_text().split()] if path.exists() else []


def drop_schema_5(db: sqlite3.Connection) -> None:
    """Take out what journal schema 5 added, as a store written by an older ptx lacks it."""
    for table, column in (
        ("runs", "integration_branch"),
        ("runs", "integration_base"),
        ("attempts", "branch"),
        ("attempts", "commit_sha"),
        ("attempts", "integration"),
    ):
        db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
