"""Typer command line: parse options, call one core function, map errors to exit codes."""

from __future__ import annotations

import contextlib
import enum
import gc
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ptx import __version__, discovery, estimates, export, taskmaster, validation, workflow
from ptx import config as config_module
from ptx import configview as config_view
from ptx import outputs as run_outputs
from ptx.errors import ExitCode, PtxError, UsageError
from ptx.events import RunStarted
from ptx.journal import DB_NAME, Journal
from ptx.live import LiveView
from ptx.plainview import PlainView
from ptx.plan import make_plan
from ptx.report import report_json as report_text
from ptx.report import result_from_dict, run_summary, summary_cells, write_text_atomically
from ptx.statedir import STATE_DIR_NAME, state_dir_of
from ptx.tail import LogFollower
from ptx.ui import Ui

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from ptx.config import Config
    from ptx.events import RunResult
    from ptx.model import Finding, Project

app = typer.Typer(
    name="ptx",
    help="Run a Taskmaster project's tasks in parallel, in dependency order, safely.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class _State:
    debug = False
    ui = Ui()


class ValidateFormat(str, enum.Enum):
    text = "text"
    json = "json"
    github = "github"


class Executor(str, enum.Enum):
    local = "local"
    dask = "dask"


class PlanFormat(str, enum.Enum):
    text = "text"
    json = "json"
    mermaid = "mermaid"
    dot = "dot"


FileOption = Annotated[
    Path | None,
    typer.Option("--file", "-f", help="tasks.json to read (default: found from the current dir)."),
]
TagOption = Annotated[
    str | None, typer.Option("--tag", help="Tag to use (default: Taskmaster's current tag).")
]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Config file (default: config/parallel-execution.yaml)."),
]
JobsOption = Annotated[
    int | None,
    typer.Option("--jobs", "-j", min=1, help="Tasks at once (default: config max_concurrency)."),
]
SubtasksOption = Annotated[
    bool, typer.Option("--subtasks", help="Run subtasks as the units instead of whole tasks.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Same as --format json.")]


def _version(value: bool) -> None:
    if value:
        _State.ui.data(f"ptx {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    *,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    _version_flag: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    _State.debug = debug


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """For the short commands: the cyclic GC would walk every task object again and again
    while the graph is built (a third of `plan`'s time on 100,000 tasks); nothing here
    makes garbage cycles worth collecting before the process ends."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextlib.contextmanager
def _handled() -> Iterator[None]:
    """The one place where errors become messages and exit codes."""
    try:
        yield
    except PtxError as error:
        if _State.debug:
            raise
        _State.ui.error(str(error))
        raise typer.Exit(error.exit_code) from None
    except KeyboardInterrupt:
        _State.ui.error("interrupted")
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    except typer.Exit:
        raise
    except Exception as error:
        if _State.debug:
            raise
        # A bug, not bad input: say so, and keep the traceback one flag away.
        _State.ui.error(f"internal error: {type(error).__name__}: {error} (rerun with --debug)")
        raise typer.Exit(ExitCode.INTERNAL) from None


def _load(file: Path | None, tag: str | None, config: Path | None) -> tuple[Project, Config]:
    project = taskmaster.load_project(file=file, start=Path.cwd(), tag=tag, environ=os.environ)
    for notice in project.notices:
        _State.ui.notice(notice)
    settings = config_module.load_config(config, root=project.root, environ=os.environ)
    return project, settings


def _display_path(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    return str(path)


@app.command()
def validate(
    file: FileOption = None,
    tag: TagOption = None,
    config: ConfigOption = None,
    *,
    all_tags: Annotated[bool, typer.Option("--all-tags", help="Check every tag.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings fail too.")] = False,
    output: Annotated[
        ValidateFormat, typer.Option("--format", help="Output format.")
    ] = ValidateFormat.text,
    as_json: JsonOption = False,
) -> None:
    """Check tasks.json and the config; exit 1 on errors (and warnings with --strict)."""
    with _handled(), _collector_paused():
        if all_tags and tag is not None:
            raise UsageError("--tag and --all-tags exclude each other")
        projects = (
            taskmaster.load_all_tags(file=file, start=Path.cwd())
            if all_tags
            else (_load(file, tag, None)[0],)
        )
        settings = config_module.load_config(config, root=projects[0].root, environ=os.environ)
        findings = [finding for project in projects for finding in _findings(project, settings)]
        _show_findings(projects, findings, ValidateFormat.json if as_json else output)
        if validation.has_errors(findings, strict=strict):
            raise typer.Exit(ExitCode.FAILED)


def _findings(project: Project, settings: Config) -> tuple[Finding, ...]:
    options = {task.id: task.options for task in project.tasks.tasks if task.options.resources}
    return validation.validate(
        project.tasks,
        satisfied=settings.satisfied_statuses,
        options=options,
        capacities=settings.resources,
    )


def _show_findings(
    projects: tuple[Project, ...], findings: list[Finding], output: ValidateFormat
) -> None:
    path = _display_path(projects[0].path)
    tags = [project.tasks.tag for project in projects]
    if output is ValidateFormat.json:
        _State.ui.data(export.findings_json(path, tags, findings))
    elif output is ValidateFormat.github:
        if findings:
            _State.ui.data(export.findings_github(path, findings))
    else:
        count = sum(len(project.tasks.tasks) for project in projects)
        _State.ui.display_findings(path, findings, count)


@app.command()
def plan(
    file: FileOption = None,
    tag: TagOption = None,
    config: ConfigOption = None,
    jobs: JobsOption = None,
    *,
    include_all: Annotated[
        bool, typer.Option("--all", help="Ignore statuses: plan the whole graph.")
    ] = False,
    subtasks: SubtasksOption = False,
    output: Annotated[
        PlanFormat, typer.Option("--format", help="Output format.")
    ] = PlanFormat.text,
    as_json: JsonOption = False,
) -> None:
    """Show the parallel groups, the critical path and the predicted speedup."""
    with _handled(), _collector_paused():
        project, settings = _load(file, tag, config)
        result = make_plan(
            project.tasks,
            jobs=jobs or settings.max_concurrency,
            satisfied=settings.satisfied_statuses,
            subtasks=subtasks,
            include_all=include_all,
            history=estimates.stored(
                project.root, project.tasks.tag, project.tasks.tasks, settings
            ),
        )
        output = PlanFormat.json if as_json else output
        if output is PlanFormat.json:
            _State.ui.data(export.plan_json(result))
        elif output is PlanFormat.mermaid:
            _State.ui.data(export.plan_mermaid(result))
        elif output is PlanFormat.dot:
            _State.ui.data(export.plan_dot(result))
        else:
            _State.ui.display_plan(result)


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
    subtasks: SubtasksOption = False,
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
        bool, typer.Option("--resume", help="Continue the last run: skip what succeeded.")
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
    with _handled():
        wanted = run_outputs.Outputs(
            junit=junit,
            trace=trace,
            metrics_file=metrics_file,
            pushgateway=pushgateway,
            step_summary=_step_summary(),
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
            _show_dry_run(request)
            return
        live = _wants_live(plain=plain, quiet=quiet, stream=stream)
        try:
            with _progress(live=live, quiet=quiet, stream=stream) as listener:
                result = workflow.execute(request, listener)
        except workflow.ValidationFailedError as error:
            path = _display_path(Path(file) if file else Path("tasks.json"))
            for finding in error.findings:
                _State.ui.err.print(export.finding_line(path, finding))
            raise
        _State.ui.display_report(result, quiet=quiet, width=_State.ui.report_width(plain=not live))
        if report_json is not None:  # the run saved the same text in the journal
            write_text_atomically(report_text(result), report_json)
        raise typer.Exit(_export(result, listener.state_dir, wanted))


_RUN_EXIT = {
    "succeeded": ExitCode.OK,
    "failed": ExitCode.FAILED,
    "interrupted": ExitCode.INTERRUPTED,
}


def _wants_live(*, plain: bool, quiet: bool, stream: bool) -> bool:
    """The live table only for a person at a terminal who asked for nothing plainer."""
    terminal = sys.stdout.isatty() and os.environ.get("TERM") != "dumb"
    return terminal and not os.environ.get("NO_COLOR") and not (plain or quiet or stream)


class _Recorder:
    """Passes events on and remembers where the run keeps its state (for its exports)."""

    def __init__(self, listener: Callable[[object], None]) -> None:
        self.listener = listener
        self.state_dir: Path | None = None

    def __call__(self, event: object) -> None:
        if isinstance(event, RunStarted):
            self.state_dir = state_dir_of(event.log_dir)
        self.listener(event)


@contextlib.contextmanager
def _progress(*, live: bool, quiet: bool, stream: bool) -> Iterator[_Recorder]:
    """The live table, or plain lines (following the task logs with --stream); a live table
    is gone before this returns, whatever happened."""
    if live:
        with LiveView(_State.ui.live_console()) as view:
            yield _Recorder(view)
    elif stream:
        with LogFollower(PlainView(sys.stderr, quiet=quiet)) as follower:
            yield _Recorder(follower)
    else:
        yield _Recorder(PlainView(sys.stderr, quiet=quiet))


def _step_summary() -> Path | None:
    """GitHub Actions names the Markdown file of the step's summary in this variable."""
    named = os.environ.get("GITHUB_STEP_SUMMARY", "").strip()
    return Path(named) if named else None


def _export(result: RunResult, state_dir: Path | None, wanted: run_outputs.Outputs) -> ExitCode:
    """Write the outputs asked for; the run's exit code, or 2 when it succeeded and an output
    could not be written (a run that failed keeps saying so)."""
    record = run_outputs.Recorded(tag="", attempts=())
    if state_dir is not None:
        with Journal.open(state_dir) as journal:
            record = run_outputs.recorded(journal, result.run_id)
    problems = run_outputs.write_outputs(result, record, wanted)
    for problem in problems:
        _State.ui.error(problem)
    code = _RUN_EXIT[result.status]
    return ExitCode.BAD_INPUT if problems and code is ExitCode.OK else code


def _journal(file: Path | None) -> Journal:
    """The journal of the project around the current directory, which must have runs."""
    root = discovery.project_root(file or discovery.find_tasks_file(Path.cwd()))
    state_dir = root / STATE_DIR_NAME
    if not (state_dir / DB_NAME).is_file():
        raise UsageError(f"no runs recorded in {_display_path(state_dir)}")
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
    with _handled(), _journal(file) as journal:
        if run_id and run_option and run_id != run_option:
            raise UsageError(f"two runs asked for: {run_id} and --run {run_option}")
        run_id = run_id or run_option
        info = journal.run(run_id) if run_id else journal.last_run()
        if info is None:
            raise UsageError(f"no run {run_id}" if run_id else "no runs recorded yet")
        text = journal.report(info.run_id)
        if text is None:
            raise UsageError(f"run {info.run_id} has no report (status {info.status})")
        output = run_outputs.Format.json if as_json else output
        if output is run_outputs.Format.json:
            _State.ui.data(text)
        elif output is run_outputs.Format.text:
            result = result_from_dict(json.loads(text))
            _State.ui.display_report(result, width=_State.ui.report_width())
        else:
            record = run_outputs.recorded(journal, info.run_id)
            _State.ui.data(run_outputs.render(output, result_from_dict(json.loads(text)), record))


@app.command()
def runs(
    file: FileOption = None,
    *,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many, newest first.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """List past runs, newest first: id, start, status, tasks, wall and speedup."""
    with _handled(), _journal(file) as journal:
        summaries = [run_summary(info, journal.report(info.run_id)) for info in journal.runs(limit)]
    if as_json:
        _State.ui.data(json.dumps(summaries, indent=2))
    else:
        _State.ui.display_runs([summary_cells(summary) for summary in summaries])


def _show_dry_run(request: workflow.RunRequest) -> None:
    prepared, lines = workflow.dry_run(request)
    _State.ui.notice(
        f"dry run: {len(lines)} tasks with -j {prepared.jobs}, in the order they would start"
    )
    for unit, command in lines:
        _State.ui.data(f"{unit}\t{command}")


@app.command("config")
def show_config(
    file: FileOption = None,
    config: ConfigOption = None,
    jobs: JobsOption = None,
    *,
    as_json: JsonOption = False,
) -> None:
    """Print the effective configuration and where each value came from."""
    with _handled():
        view = config_view.effective(
            tasks_file=file, config_file=config, jobs=jobs, cwd=Path.cwd(), environ=os.environ
        )
        _State.ui.data(config_view.render_json(view) if as_json else config_view.render_text(view))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `ptx` script; returns the exit code (usage errors are 2)."""
    try:
        app(args=argv, prog_name="ptx")
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else ExitCode.BAD_INPUT
    return ExitCode.OK
