"""`ptx run`: parse the options into a run request, show its progress and its report."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ptx.cli.common import (
    ConfigOption,
    FileOption,
    JobsOption,
    State,
    TagOption,
    display_path,
    handled,
)
from ptx.core.errors import ExitCode, UsageError
from ptx.core.model import counted
from ptx.executors.base import EXECUTORS, registered
from ptx.outputs import files as run_outputs  # light: its formats' modules load only when asked for

if TYPE_CHECKING:
    from ptx.core.model import TaskId
    from ptx.run.workflow import Prepared


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
    max_cost: Annotated[
        float | None,
        typer.Option(
            "--max-cost",
            min=0,
            help="USD: start no task once the cost the tasks reported reaches it.",
        ),
    ] = None,
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
    load_average: Annotated[
        float | None,
        typer.Option(
            "--load-average",
            "-l",
            min=0,
            help="Start no task while the load average is at least this (like make -l).",
        ),
    ] = None,
    executor: Annotated[
        str,
        typer.Option(
            "--executor",
            metavar=f"<{'|'.join(EXECUTORS)}>",
            help="Where tasks run: this machine or Dask.",
        ),
    ] = "local",
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler", help="Dask scheduler address (default: DASK_SCHEDULER_ADDRESS)."
        ),
    ] = None,
    isolate: Annotated[
        bool,
        typer.Option("--isolate", help="Each task in its own git worktree, merged back in order."),
    ] = False,
    base: Annotated[
        str | None,
        typer.Option("--base", help="With --isolate: the commit to start from (default HEAD)."),
    ] = None,
) -> None:
    """Run the tasks: every ready task starts as soon as a slot is free."""
    # The run machinery (journal, runner, processes, psutil) is most of ptx's import time;
    # the other commands never need it, so only this one loads it.
    from ptx.cli import runview  # noqa: PLC0415 - only run needs them
    from ptx.run import workflow  # noqa: PLC0415 - only run needs them

    with handled():
        registered(executor)  # before anything is read: bad input is refused first
        if max_cost is not None and not math.isfinite(max_cost):
            raise UsageError(f"--max-cost must be a finite number of USD, got {max_cost}")
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
            load_average=load_average,
            max_cost=max_cost,
            argv=tuple(sys.argv),
            executor=executor,
            scheduler=scheduler,
            isolate=isolate or None,  # not given: a --resume keeps the resumed run's
            base=base,
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


def _show_dry_run(prepared: Prepared, lines: list[tuple[TaskId, str]]) -> None:
    resuming = f" resuming run {prepared.resumed.run_id}:" if prepared.resumed else ""
    State.ui.notice(
        f"dry run:{resuming} {counted(len(lines), 'task')} with -j {prepared.jobs},"
        " in the order they would start"
    )
    isolation = prepared.isolation
    for unit, command in lines:
        if isolation is None:
            State.ui.data(f"{unit}\t{command}")
            continue
        worktrees = isolation.worktrees("<run>", prepared.project.tasks.tag)
        where = display_path(worktrees.folder / unit)
        State.ui.data(f"{unit}\t{command}\tworktree {where}\tbranch {worktrees.task_branch(unit)}")
    for unit, reason in prepared.blocked:
        if unit in prepared.failed_targets:
            State.ui.error(f"cannot run target {unit}: {reason}")
        else:
            State.ui.notice(f"blocked {unit}: {reason}")
