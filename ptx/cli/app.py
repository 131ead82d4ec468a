"""Typer command line: parse options, call one core function, map errors to exit codes."""

from __future__ import annotations

import atexit
import contextlib
import enum
import json
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

# Start-up is paid by every invocation (2,000 times in the no-op benchmark): only what most
# commands need is imported here; what one command or option needs is imported where it is used.
from ptx import __version__
from ptx.cli.ui import Ui
from ptx.core.errors import ExitCode, PtxError, UsageError
from ptx.core.model import Severity
from ptx.taskmaster import config as config_module
from ptx.taskmaster import discovery
from ptx.taskmaster import reader as taskmaster

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ptx.core.model import Finding, Project
    from ptx.graph.plan import Plan
    from ptx.taskmaster.config import Config

app = typer.Typer(
    name="ptx",
    help="Run a Taskmaster project's tasks in parallel, in dependency order, safely.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class State:
    debug = False
    ui = Ui()


class ValidateFormat(str, enum.Enum):
    text = "text"
    json = "json"
    github = "github"


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
        State.ui.data(f"ptx {__version__}")
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
    State.debug = debug


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """The one place where errors become messages and exit codes."""
    try:
        yield
    except PtxError as error:
        if State.debug:
            raise
        State.ui.error(str(error))
        raise typer.Exit(error.exit_code) from None
    except KeyboardInterrupt:
        State.ui.error("interrupted")
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    except typer.Exit:
        raise
    except Exception as error:
        if State.debug:
            raise
        # A bug, not bad input: say so, and keep the traceback one flag away.
        State.ui.error(f"internal error: {type(error).__name__}: {error} (rerun with --debug)")
        raise typer.Exit(ExitCode.INTERNAL) from None


def _load(file: Path | None, tag: str | None, config: Path | None) -> tuple[Project, Config]:
    project = taskmaster.load_project(file=file, start=Path.cwd(), tag=tag, environ=os.environ)
    for notice in project.notices:
        State.ui.notice(notice)
    settings = config_module.load_config(config, root=project.root, environ=os.environ)
    return project, settings


def _load_tags(
    file: Path | None, tag: str | None, config: Path | None, *, all_tags: bool
) -> tuple[tuple[Project, ...], Config]:
    """The chosen tag, or with `all_tags` every tag, and the config."""
    if all_tags and tag is not None:
        raise UsageError("--tag and --all-tags exclude each other")
    projects = (
        taskmaster.load_all_tags(file=file, start=Path.cwd())
        if all_tags
        else (_load(file, tag, None)[0],)
    )
    settings = config_module.load_config(config, root=projects[0].root, environ=os.environ)
    return projects, settings


def display_path(path: Path) -> str:
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
    from ptx.graph import validation  # noqa: PLC0415 - validate and run need it: ~6 ms of start-up

    with handled(), discovery.gc_paused():
        projects, settings = _load_tags(file, tag, config, all_tags=all_tags)
        findings = [
            finding
            for project in projects
            for finding in validation.validate_with_config(project.tasks, settings)
        ]
        _show_findings(projects, findings, ValidateFormat.json if as_json else output)
        if validation.has_errors(findings, strict=strict):
            raise typer.Exit(ExitCode.FAILED)


def _show_findings(
    projects: tuple[Project, ...], findings: list[Finding], output: ValidateFormat
) -> None:
    from ptx.outputs import export  # noqa: PLC0415 - only reports of findings need it

    path = display_path(projects[0].path)
    tags = [project.tasks.tag for project in projects]
    if output is ValidateFormat.json:
        State.ui.data(export.findings_json(path, tags, findings))
    elif output is ValidateFormat.github:
        if findings:
            State.ui.data(export.findings_github(path, findings))
    else:
        count = sum(len(project.tasks.tasks) for project in projects)
        State.ui.display_findings(path, findings, count)


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
    all_tags: Annotated[bool, typer.Option("--all-tags", help="Plan every tag.")] = False,
    subtasks: SubtasksOption = False,
    output: Annotated[
        PlanFormat, typer.Option("--format", help="Output format.")
    ] = PlanFormat.text,
    as_json: JsonOption = False,
) -> None:
    """Show the parallel groups, the critical path and the predicted speedup; exit 1 when
    validation finds errors that would make `ptx run` refuse."""
    from ptx.graph import validation  # noqa: PLC0415 - validate, plan and run need it

    output = PlanFormat.json if as_json else output
    with handled(), discovery.gc_paused():
        if all_tags and output in (PlanFormat.mermaid, PlanFormat.dot):
            raise UsageError("--all-tags plans print as text or json")
        projects, settings = _load_tags(file, tag, config, all_tags=all_tags)
        plans = [
            _make_plan(project, settings, jobs, subtasks=subtasks, include_all=include_all)
            for project in projects
        ]
        _show_plans(plans, output, many=all_tags)
        errors = [
            finding
            for project in projects
            for finding in validation.validate_with_config(project.tasks, settings)
            if finding.severity is Severity.ERROR
        ]
        if errors:
            _refusal(display_path(projects[0].path), errors)


def _make_plan(
    project: Project, settings: Config, jobs: int | None, *, subtasks: bool, include_all: bool
) -> Plan:
    # Planning reads the journal's history (sqlite, psutil): imported here, not at start-up.
    from ptx.graph.plan import make_plan  # noqa: PLC0415 - only plan needs it here
    from ptx.journal import estimates  # noqa: PLC0415 - only plan needs it here: ~12 ms of start-up

    return make_plan(
        project.tasks,
        jobs=jobs or settings.max_concurrency,
        satisfied=settings.satisfied_statuses,
        subtasks=subtasks,
        include_all=include_all,
        history=estimates.stored(project.root, project.tasks.tag, project.tasks.tasks, settings),
        config=settings,
    )


def _refusal(path: str, errors: list[Finding]) -> NoReturn:
    """The errors that would make `ptx run` refuse, as it prints them; exit 1."""
    from ptx.outputs.export import finding_line  # noqa: PLC0415 - only findings need it

    for finding in errors:
        State.ui.err.print(finding_line(path, finding))
    State.ui.error(
        f"{len(errors)} validation error(s): `ptx run` refuses to start until they are fixed"
    )
    raise typer.Exit(ExitCode.FAILED)


def _show_plans(plans: list[Plan], output: PlanFormat, *, many: bool) -> None:
    if not many:
        _show_plan(plans[0], output)
    elif output is PlanFormat.json:
        from ptx.outputs import export  # noqa: PLC0415 - only the machine formats need it

        State.ui.data(
            json.dumps([export.plan_dict(p) for p in plans], indent=2, ensure_ascii=False)
        )
    else:
        for index, each in enumerate(plans):
            if index:
                State.ui.data("")
            _show_plan(each, output)


def _show_plan(result: Plan, output: PlanFormat) -> None:
    if output is PlanFormat.text:
        State.ui.display_plan(result)
        return
    from ptx.outputs import export  # noqa: PLC0415 - only the machine formats need it

    render = {
        PlanFormat.json: export.plan_json,
        PlanFormat.mermaid: export.plan_mermaid,
        PlanFormat.dot: export.plan_dot,
    }[output]
    State.ui.data(render(result))


def main(argv: list[str] | None = None) -> int:
    """Run ptx in this process; returns the exit code (usage errors are 2)."""
    try:
        app(args=argv, prog_name="ptx")
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else ExitCode.BAD_INPUT
    return ExitCode.OK


def console() -> NoReturn:
    """Entry point of the `ptx` script and `python -m ptx`: `main`, then exit without tearing
    the interpreter down. Freeing every object one by one took 30 ms after a 2,000-task run,
    for nothing: the process ends anyway. Exit handlers run and the output is flushed first,
    as at any exit; if another thread still runs, or the flush fails, Python exits as usual
    (waiting for the thread, reporting the error)."""
    code = main()
    if threading.active_count() > 1:
        sys.exit(code)
    atexit._run_exitfuncs()  # noqa: SLF001 - what the normal exit would run, run now
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(code)
    os._exit(code)


# The run-time commands live in their own module; importing it registers them on `app`.
from ptx.cli import run as clirun  # noqa: E402, F401
