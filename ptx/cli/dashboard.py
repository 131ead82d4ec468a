"""`ptx dashboard`: write the journal's history as one self-contained HTML file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ptx.cli.common import FileOption, State, display_path, handled
from ptx.core.errors import UsageError
from ptx.taskmaster import discovery

if TYPE_CHECKING:
    from ptx.outputs.history import History

DEFAULT_RUNS = 50


def dashboard(
    file: FileOption = None,
    *,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Where to write it (default: .ptx/dashboard.html)."),
    ] = None,
    runs: Annotated[
        int, typer.Option("--runs", min=1, help="How many of the latest runs it shows.")
    ] = DEFAULT_RUNS,
    run_id: Annotated[
        str | None, typer.Option("--run", help="The run shown in detail (default: the last).")
    ] = None,
    open_it: Annotated[
        bool, typer.Option("--open", help="Open it in the browser once written.")
    ] = False,
) -> None:
    """Write the run history as one HTML file that opens with no network: runs over time,
    one run's timeline, and each task across runs (needs ptx[dashboard])."""
    from ptx.journal.statedir import STATE_DIR_NAME  # noqa: PLC0415 - it imports the journal
    from ptx.outputs import dashboard as page  # noqa: PLC0415 - only this command needs it
    from ptx.outputs.report import write_text_atomically  # noqa: PLC0415 - as above

    with handled():
        page.require_library()  # before reading anything: the fix is an install
        root = discovery.project_root(file or discovery.find_tasks_file(Path.cwd()))
        shown = _history(root / STATE_DIR_NAME, runs, run_id)
        target = output or root / STATE_DIR_NAME / "dashboard.html"
        text = page.dashboard_html(shown, project=root.name)
        try:
            write_text_atomically(text, target)
        except OSError as error:
            raise UsageError(f"cannot write {display_path(target)}: {error.strerror}") from error
        State.ui.data(display_path(target))
        if open_it:
            import webbrowser  # noqa: PLC0415 - only --open needs it

            webbrowser.open(target.resolve().as_uri())


def _history(state_dir: Path, runs: int, run_id: str | None) -> History:
    """The history in the journal; an empty one where nothing ran yet (no journal is made)."""
    # The journal brings sqlite and psutil (~12 ms): loaded by the commands that read it.
    from ptx.journal.store import DB_NAME, Journal  # noqa: PLC0415 - see above
    from ptx.outputs import history  # noqa: PLC0415 - only this command needs it

    if not (state_dir / DB_NAME).is_file():
        if run_id is not None:
            raise UsageError(f"no run {run_id}: no runs recorded yet")
        return history.History(runs=(), detail=None, tasks=())
    with Journal.open(state_dir) as journal:
        if run_id is not None and journal.run(run_id) is None:
            raise UsageError(f"no run {run_id}")
        return history.load(journal, limit=runs, run_id=run_id)
