"""Measured durations as estimates: the journal's history of each task's current command."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ptx.journal.statedir import STATE_DIR_NAME
from ptx.journal.store import DB_NAME, Journal
from ptx.run import commandline

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from ptx.core.model import Task, TaskId
    from ptx.taskmaster.config import Config


def command_hashes(tasks: Iterable[Task], config: Config) -> dict[TaskId, str]:
    """Each task's command as written; history only counts runs of the same command."""
    hashes = {}
    for task in tasks:
        command = commandline.command_of(commandline.effective_options(task, config), config)
        if command is not None:
            hashes[task.id] = commandline.command_hash(command)
    return hashes


def from_journal(
    journal: Journal, tag: str, tasks: Iterable[Task], config: Config
) -> dict[TaskId, float]:
    return journal.estimates(tag, command_hashes(tasks, config))


def stored(root: Path, tag: str, tasks: Iterable[Task], config: Config) -> dict[TaskId, float]:
    """History from the project's state store, if it has one; reading never creates it."""
    state_dir = root / STATE_DIR_NAME
    if not (state_dir / DB_NAME).is_file():
        return {}
    with Journal.read(state_dir) as journal:
        return from_journal(journal, tag, tasks, config)
