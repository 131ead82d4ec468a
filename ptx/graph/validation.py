"""Every finding about a task list, gathered from the reader, the graph and the run settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ptx.core.model import Code, Finding, Severity, id_key
from ptx.graph import checks
from ptx.run import commandline

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from ptx.core.model import TaskList, TaskOptions
    from ptx.taskmaster.config import Config


def validate(
    tasks: TaskList,
    *,
    satisfied: frozenset[str],
    options: Mapping[str, TaskOptions] | None = None,
    capacities: Mapping[str, int] | None = None,
) -> tuple[Finding, ...]:
    """All findings, errors first, then by task id; `options` adds the run-time checks."""
    found = [*tasks.findings, *checks.check(tasks, satisfied=satisfied)]
    if options is not None:
        found.extend(resource_findings(tasks.tag, options, capacities or {}))
    return tuple(sorted(found, key=_order))


def validate_with_config(tasks: TaskList, config: Config) -> tuple[Finding, ...]:
    """Every finding, with the options the config gives each task (its `tasks.<id>` win over
    metadata.ptx), and a warning for config overrides that name no task of this tag."""
    options = {task.id: commandline.effective_options(task, config) for task in tasks.tasks}
    found = validate(
        tasks,
        satisfied=config.satisfied_statuses,
        options={task_id: chosen for task_id, chosen in options.items() if chosen.resources},
        capacities=config.resources,
    )
    strays = [
        Finding(
            code=Code.BAD_TASK_OPTIONS,
            severity=Severity.WARNING,
            task=task_id,
            message=f"config tasks.{task_id} names no task of tag '{tasks.tag}'",
            tag=tasks.tag,
        )
        for task_id in sorted(config.tasks, key=_sort_key)
        if task_id not in options
    ]
    return tuple(sorted([*found, *strays], key=_order))


def resource_findings(
    tag: str, options: Mapping[str, TaskOptions], capacities: Mapping[str, int]
) -> Iterable[Finding]:
    """A request naming an unknown resource, or more than its capacity, could never start."""
    for task_id, task_options in options.items():
        for name, amount in task_options.resources.items():
            if name not in capacities:
                known = ", ".join(sorted(capacities)) or "none are configured"
                yield _error(
                    Code.UNKNOWN_RESOURCE,
                    tag,
                    task_id,
                    f"requests unknown resource '{name}' (resources: {known})",
                )
            elif amount > capacities[name]:
                yield _error(
                    Code.RESOURCE_OVER_CAPACITY,
                    tag,
                    task_id,
                    f"requests {amount} of '{name}', whose capacity is {capacities[name]}",
                )


def has_errors(findings: Iterable[Finding], *, strict: bool = False) -> bool:
    return any(strict or finding.severity is Severity.ERROR for finding in findings)


def _error(code: Code, tag: str, task: str, message: str) -> Finding:
    return Finding(code=code, severity=Severity.ERROR, task=task, message=message, tag=tag)


def _order(finding: Finding) -> tuple[int, tuple[int, ...], str]:
    severity = 0 if finding.severity is Severity.ERROR else 1
    task = _sort_key(finding.task) if finding.task else ()
    return (severity, task, finding.code.value)


def _numeric(task_id: str) -> bool:
    return all(part.isdigit() for part in task_id.split("."))


def _sort_key(task_id: str) -> tuple[int, ...]:
    return id_key(task_id) if _numeric(task_id) else ()
