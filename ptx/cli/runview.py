"""How a run is shown and what it leaves behind: the live table or plain lines, exports."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ptx.cli.plain import PlainView
from ptx.core.errors import ExitCode
from ptx.core.events import RunStarted
from ptx.journal.statedir import state_dir_of
from ptx.journal.store import Journal
from ptx.outputs import files as run_outputs

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from ptx.cli.ui import Ui
    from ptx.core.events import RunResult


RUN_EXIT = {
    "succeeded": ExitCode.OK,
    "failed": ExitCode.FAILED,
    "interrupted": ExitCode.INTERRUPTED,
}


def wants_live(*, plain: bool, quiet: bool, stream: bool) -> bool:
    """The live table only for a person at a terminal who asked for nothing plainer."""
    terminal = sys.stdout.isatty() and os.environ.get("TERM") != "dumb"
    return terminal and not os.environ.get("NO_COLOR") and not (plain or quiet or stream)


class Recorder:
    """Passes events on and remembers where the run keeps its state (for its exports)."""

    def __init__(self, listener: Callable[[object], None]) -> None:
        self.listener = listener
        self.state_dir: Path | None = None

    def __call__(self, event: object) -> None:
        if isinstance(event, RunStarted):
            self.state_dir = state_dir_of(event.log_dir)
        self.listener(event)


@contextlib.contextmanager
def progress(ui: Ui, *, live: bool, quiet: bool, stream: bool) -> Iterator[Recorder]:
    """The live table, or plain lines (following the task logs with --stream); a live table
    is gone before this returns, whatever happened."""
    if live:
        from ptx.cli.live import LiveView  # noqa: PLC0415 - only a terminal's table needs rich.live

        with LiveView(ui.live_console()) as view:
            yield Recorder(view)
    elif stream:
        from ptx.cli.follow import LogFollower  # noqa: PLC0415 - only --stream follows the logs

        with LogFollower(PlainView(sys.stderr, quiet=quiet)) as follower:
            yield Recorder(follower)
    else:
        yield Recorder(PlainView(sys.stderr, quiet=quiet))


def step_summary(environ: Mapping[str, str]) -> Path | None:
    """GitHub Actions names the Markdown file of the step's summary in this variable."""
    named = environ.get("GITHUB_STEP_SUMMARY", "").strip()
    return Path(named) if named else None


def export(
    ui: Ui, result: RunResult, state_dir: Path | None, wanted: run_outputs.Outputs
) -> ExitCode:
    """Write the outputs asked for; the run's exit code, or 2 when it succeeded and an output
    could not be written (a run that failed keeps saying so)."""
    code = RUN_EXIT[result.status]
    if not wanted.any_wanted():  # spare reading every attempt of the run from the journal
        return code
    record = run_outputs.Recorded(tag="", attempts=())
    if state_dir is not None:
        with Journal.open(state_dir) as journal:
            record = run_outputs.recorded(journal, result.run_id)
    problems = run_outputs.write_outputs(result, record, wanted)
    for problem in problems:
        ui.error(problem)
    return ExitCode.BAD_INPUT if problems and code is ExitCode.OK else code
