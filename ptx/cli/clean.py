"""`ptx clean`: the worktrees and branches finished isolated runs left, removed through git."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from ptx.cli.common import ConfigOption, FileOption, State, handled
from ptx.taskmaster import discovery


def clean(
    file: FileOption = None,
    config: ConfigOption = None,
    *,
    everything: Annotated[
        bool, typer.Option("--all", help="Remove the runs' integration branches too.")
    ] = False,
) -> None:
    """Remove the worktrees and task branches finished isolated runs left (through git)."""
    from ptx.run import cleanup  # noqa: PLC0415 - only clean needs it
    from ptx.taskmaster.config import load_config  # noqa: PLC0415 - only clean needs it here

    with handled():
        root = discovery.project_root(file or discovery.find_tasks_file(Path.cwd()))
        settings = load_config(config, root=root, environ=os.environ)
        grace = settings.kill_grace_seconds
        cleaned = cleanup.clean(root, settings.integration, grace=grace, everything=everything)
        for kind, names in (
            ("worktree", cleaned.worktrees),
            ("task branch", cleaned.task_branches),
            ("integration branch", cleaned.integration_branches),
        ):
            for name in names:
                State.ui.data(f"removed {kind} {name}")
        total = len(cleaned.worktrees) + len(cleaned.task_branches)
        State.ui.notice(f"removed {total + len(cleaned.integration_branches)} item(s)")
