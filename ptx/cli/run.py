"""Typer commands that run tasks and read past runs: run, report, runs, config."""

from __future__ import annotations

import enum
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ptx.cli.app import (
    ConfigOption,
    FileOption,
    JobsOption,
    JsonOption,
    State,
    TagOption,
    app,
    display_path,
    handled,
)
from ptx.core.errors import ExitCode, UsageError
from ptx.outputs import files as run_outputs  # light: its formats' modules load only when asked for
from ptx.taskmaster import discovery

if TYPE_CHECKING:
    from ptx.core.model import TaskId
    from ptx.journal.store import Journal
    from ptx.run.workflow import Prepared


class Executor(str, enum.Enum):
    local = "local"
    dask = "dask"


@app.command()
def run(
    targets: Annotated[
        list[str] | None, typer.Argument(help="Only these tasks and what they depend on.")
    ] = None,
    file: FileOption = None,
    tag: TagOption = None,
    config: ConfigOption = None,
    jobs: JobsOption = None,
    *,
    subtasks: Annotated[
        bool | None,
        typer.Option(
            "--subtasks/--no-subtasks", help="Run subtasks as the units instead of whole tasks."
        ),
    ] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", min=0.001, help="Seconds per task attempt.")
    ] = None,
    retries: Annotated[
        int | None, typer.Option("--retries", min=0, help="Extra attempts for a failed task.")
    ] = None,
    fail_fast: Annotated[
        bool, typer.Option("--fail-fast", help="After a failure, start nothing more.")
    ] = False,
    update_status: Annotated[
        bool | None,
        typer.Option("--update-status/--no-update-status", help="Write statuses to tasks.json."),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="Continue the last unfinished run, with its options: skip successes."
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "-n", help="Print the order and commands; run nothing.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only failures and the summary.")
    ] = False,
    report_json: Annotated[
        Path | None, typer.Option("--report-json", help="Write the report as JSON here.")
    ] = None,
    plain: Annotated[
        bool, typer.Option("--plain", help="One plain line per event, even on a terminal.")
    ] = False,
    stream: Annotated[
        bool, typer.Option("--stream", help="Print task output live, prefixed with the task id.")
    ] = False,
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Write JUnit XML here, for CI.")
    ] = None,
    trace: Annotated[
        Path | None, typer.Option("--trace", help="Write a Chrome trace here, for Perfetto.")
    ] = None,
    metrics_file: Annotated[
        Path | None,
        typer.Option("--metrics-file", help="Write Prometheus metrics here (textfile format)."),
    ] = None,
    pushgateway: Annotated[
        str | None, typer.Option("--pushgateway", help="Push Prometheus metrics to this URL.")
    ] = None,
    executor: Annotated[
        Executor, typer.Option("--executor", help="Where tasks run: this machine or Dask.")
    ] = Executor.local,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler", help="Dask scheduler address (default: DASK_SCHEDULER_ADDRESS)."
        ),
    ] = None,
) -> None:
    """Run the tasks: every ready task starts as soon as a slot is free."""
    # The run machinery (journal, runner, processes, psutil) is most of ptx's import time;
    # the other commands never need it, so only this one loads it.
    from ptx.cli import runview  # noqa: PLC0415 - only run needs them: ~50 ms of start-up
    from ptx.run import workflow  # noqa: PLC0415 - only run needs them: ~50 ms of start-up

    with handled():
        wanted = run_outputs.Outputs(
            junit=junit,
            trace=trace,
            metrics_file=metrics_file,
            pushgateway=pushgateway,
            step_summary=runview.step_summary(os.environ),
        )
        wanted.check()
        request = workflow.RunRequest(
            file=file,
            tag=tag,
            config=config,
            cwd=Path.cwd(),
            environ=dict(os.environ),
            jobs=jobs,
            subtasks=subtasks,
            targets=tuple(targets or ()),
            timeout=timeout,
            retries=retries,
            fail_fast=fail_fast,
            update_status=update_status,
            resume=resume,
            argv=tuple(sys.argv),
            executor=executor.value,
            scheduler=scheduler,
        )
        if dry_run:
            prepared, lines = workflow.dry_run(request)
            _show_dry_run(prepared, lines)
            if prepared.failed_targets:
                raise typer.Exit(ExitCode.FAILED)
            return
        live = runview.wants_live(plain=plain, quiet=quiet, stream=stream)
        try:
            with runview.progress(State.ui, live=live, quiet=quiet, stream=stream) as listener:
                result = workflow.execute(request, listener)
        except workflow.ValidationFailedError as error:
            from ptx.outputs.export import finding_line  # noqa: PLC0415 - only a refused run needs it

            path = display_path(error.path)
            for finding in error.findings:
                State.ui.err.print(finding_line(path, finding))
            raise
        State.ui.display_report(result, quiet=quiet, width=State.ui.report_width(plain=not live))
        if report_json is not None:  # the run saved the same text in the journal
            from ptx.outputs.report import write_report_json  # noqa: PLC0415 - only --report-json

            write_report_json(result, report_json)
        raise typer.Exit(runview.export(State.ui, result, listener.state_dir, wanted))


def _journal(file: Path | None) -> Journal:
    """The journal of the project around the current directory, which must have runs."""
    # The journal brings sqlite and psutil (~12 ms, also via the state dir): only the commands
    # that read past runs load it.
    from ptx.journal.statedir import STATE_DIR_NAME  # noqa: PLC0415 - it imports the journal
    from ptx.journal.store import DB_NAME, Journal  # noqa: PLC0415 - only report and runs need it

    root = discovery.project_root(file or discovery.find_tasks_file(Path.cwd()))
    state_dir = root / STATE_DIR_NAME
    if not (state_dir / DB_NAME).is_file():
        raise UsageError(f"no runs recorded in {display_path(state_dir)}")
    return Journal.open(state_dir)


@app.command()
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
    from ptx.outputs.report import reindented, result_from_dict  # noqa: PLC0415 - ~8 ms of start-up

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


@app.command()
def runs(
    file: FileOption = None,
    *,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many, newest first.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """List past runs, newest first: id, start, status, tasks, wall and speedup."""
    from ptx.outputs.report import run_summary, summary_cells  # noqa: PLC0415 - only runs needs them

    with handled(), _journal(file) as journal:
        summaries = [run_summary(info, journal.report(info.run_id)) for info in journal.runs(limit)]
    if as_json:
        State.ui.data(json.dumps(summaries, indent=2))
    else:
        State.ui.display_runs([summary_cells(summary) for summary in summaries])


def _show_dry_run(prepared: Prepared, lines: list[tuple[TaskId, str]]) -> None:
    resuming = f" resuming run {prepared.resumed.run_id}:" if prepared.resumed else ""
    State.ui.notice(
        f"dry run:{resuming} {len(lines)} tasks with -j {prepared.jobs},"
        " in the order they would start"
    )
    for unit, command in lines:
        State.ui.data(f"{unit}\t{command}")
    for unit, reason in prepared.blocked:
        if unit in prepared.failed_targets:
            State.ui.error(f"cannot run target {unit}: {reason}")
        else:
            State.ui.notice(f"blocked {unit}: {reason}")


@app.command("config")
def show_config(
    file: FileOption = None,
    config: ConfigOption = None,
    jobs: JobsOption = None,
    *,
    as_json: JsonOption = False,
) -> None:
    """Print the effective configuration and where each value came from."""
    from ptx.cli import configview as config_view  # noqa: PLC0415 - only config needs it

    with handled():
        view = config_view.effective(
            tasks_file=file, config_file=config, jobs=jobs, cwd=Path.cwd(), environ=os.environ
        )
        State.ui.data(config_view.render_json(view) if as_json else config_view.render_text(view))
