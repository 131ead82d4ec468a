"""`ptx config`: the effective configuration and where each value came from."""

from __future__ import annotations

import os
from pathlib import Path

from ptx.cli.common import (
    ConfigOption,
    FileOption,
    JobsOption,
    PrintJsonOption,
    State,
    handled,
)


def show_config(
    file: FileOption = None,
    config: ConfigOption = None,
    jobs: JobsOption = None,
    *,
    as_json: PrintJsonOption = False,
) -> None:
    """Print the effective configuration and where each value came from."""
    from ptx.cli import configview as config_view  # noqa: PLC0415 - only config needs it

    with handled():
        view = config_view.effective(
            tasks_file=file, config_file=config, jobs=jobs, cwd=Path.cwd(), environ=os.environ
        )
        State.ui.data(config_view.render_json(view) if as_json else config_view.render_text(view))
