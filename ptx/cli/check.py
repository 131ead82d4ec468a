"""`ptx validate` and `ptx plan`: check the project, and show how it would run."""

from __future__ import annotations

import dataclasses
import enum
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from ptx.cli.common import (
    ConfigOption,
    FileOption,
    JobsOption,
    JsonOption,
    State,
    SubtasksOption,
    TagOption,
    display_path,
    handled,
)
from ptx.core.errors import ExitCode, UsageError
from ptx.core.model import Severity, counted
from ptx.taskmaster import config as config_module
from ptx.taskmaster import discovery
from ptx.taskmaster import reader as taskmaster

if TYPE_CHECKING:
    from ptx.core.model import Finding, Project
    from ptx.graph.plan import Plan
    from ptx.run.jobs import Jobs
    from ptx.taskmaster.config import Config


class ValidateFormat(str, enum.Enum):
    text = "text"
    json = "json"
    github = "github"


class PlanFormat(str, enum.Enum):
    text = "text"
    json = "json"
    mermaid = "mermaid"
    dot = "dot"


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
    from ptx.graph import validation  # noqa: PLC0415 - only validate and run need it

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
        units = [task for project in projects for task in project.tasks.tasks]
        subtasks = sum(task.is_subtask for task in units)
        State.ui.display_findings(path, findings, len(units) - subtasks, subtasks)


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
        decided = _jobs(jobs, settings)
        plans = [
            _make_plan(project, settings, decided, subtasks=subtasks, include_all=include_all)
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


def _jobs(jobs: int | None, settings: Config) -> Jobs:
    """The -j `ptx run` would use here, and why it is not the config's, if it is not."""
    from ptx.run.jobs import available_cores, effective_jobs  # noqa: PLC0415 - only plan and run

    return effective_jobs(jobs, settings, available_cores())


def _make_plan(
    project: Project, settings: Config, jobs: Jobs, *, subtasks: bool, include_all: bool
) -> Plan:
    # Planning reads the journal's history (sqlite, psutil): imported here, not at start-up.
    from ptx.graph.plan import make_plan  # noqa: PLC0415 - only plan needs it here
    from ptx.journal import estimates  # noqa: PLC0415 - only plan needs it here

    plan = make_plan(
        project.tasks,
        jobs=jobs.jobs,
        satisfied=settings.satisfied_statuses,
        subtasks=subtasks,
        include_all=include_all,
        history=estimates.stored(project.root, project.tasks.tag, project.tasks.tasks, settings),
        config=settings,
    )
    return dataclasses.replace(plan, jobs_reason=jobs.why)


def _refusal(path: str, errors: list[Finding]) -> NoReturn:
    """The errors that would make `ptx run` refuse, as it prints them; exit 1."""
    from ptx.outputs.export import finding_line  # noqa: PLC0415 - only findings need it

    for finding in errors:
        State.ui.err.print(finding_line(path, finding))
    State.ui.error(
        f"{counted(len(errors), 'validation error')}: `ptx run` refuses to start until they"
        " are fixed"
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
