"""`ptx report` and `ptx runs`: read past runs back from the journal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ptx.cli.common import FileOption, PrintJsonOption, State, display_path, handled
from ptx.core.errors import UsageError
from ptx.outputs import files as run_outputs  # light: its formats' modules load only when asked for
from ptx.taskmaster import discovery

if TYPE_CHECKING:
    from ptx.journal.store import Journal


def _journal(file: Path | None) -> Journal:
    """The journal of the project around the current directory, which must have runs."""
    journal, state_dir = _journal_if_any(file)
    if journal is None:
        raise UsageError(f"no runs recorded in {display_path(state_dir)}")
    return journal


def _journal_if_any(file: Path | None) -> tuple[Journal | None, Path]:
    """The journal of the project around the current directory (None before its first run),
    and its state directory."""
    # The journal brings sqlite and psutil (also via the state dir): only the commands
    # that read past runs load it.
    from ptx.journal.statedir import STATE_DIR_NAME  # noqa: PLC0415 - it imports the journal
    from ptx.journal.store import DB_NAME, Journal  # noqa: PLC0415 - only report and runs need it

    root = discovery.project_root(file or discovery.find_tasks_file(Path.cwd()))
    state_dir = root / STATE_DIR_NAME
    if not (state_dir / DB_NAME).is_file():
        return None, state_dir
    return Journal.read(state_dir), state_dir


def report(
    run_id: Annotated[str | None, typer.Argument(help="The run (default: the last).")] = None,
    file: FileOption = None,
    *,
    run_option: Annotated[
        str | None, typer.Option("--run", help="The run, as the argument.", show_default=False)
    ] = None,
    output: Annotated[
        run_outputs.Format, typer.Option("--format", help="Output format.")
    ] = run_outputs.Format.text,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
) -> None:
    """Print the report of a past run again, as the run printed it, or export it."""
    from ptx.outputs.report import reindented, result_from_dict  # noqa: PLC0415 - only report

    with handled(), _journal(file) as journal:
        if run_id and run_option and run_id != run_option:
            raise UsageError(f"two runs asked for: {run_id} and --run {run_option}")
        run_id = run_id or run_option
        info = journal.run(run_id) if run_id else journal.last_reported_run()
        if info is None:
            raise UsageError(f"no run {run_id}" if run_id else "no runs recorded yet")
        text = journal.report(info.run_id)
        if text is None:
            raise UsageError(f"run {info.run_id} has no report (status {info.status})")
        output = run_outputs.Format.json if as_json else output
        if output is run_outputs.Format.json:
            State.ui.data(reindented(text))
        elif output is run_outputs.Format.text:
            result = result_from_dict(json.loads(text))
            State.ui.display_report(result, width=State.ui.report_width())
        else:
            record = run_outputs.recorded(journal, info.run_id)
            State.ui.data(run_outputs.render(output, result_from_dict(json.loads(text)), record))


def runs(
    file: FileOption = None,
    *,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many, newest first.")] = 20,
    as_json: PrintJsonOption = False,
) -> None:
    """List past runs, newest first: id, start, status, tasks, wall and speedup."""
    from ptx.outputs.report import run_summary, summary_cells  # noqa: PLC0415 - only runs needs them

    summaries = []
    with handled():
        journal, _ = _journal_if_any(file)
        if journal is not None:
            with journal:
                listed = journal.runs(limit)
                summaries = [run_summary(info, journal.report(info.run_id)) for info in listed]
    if as_json:
        State.ui.data(json.dumps(summaries, indent=2))
    elif not summaries:  # a project before its first run is not an error: like `git log`
        State.ui.notice("no runs yet")
    else:
        State.ui.display_runs([summary_cells(summary) for summary in summaries])
