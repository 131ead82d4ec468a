"""An isolated run's integration in the report: JSON both ways, and the text lines."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ptx.core.events import RunIntegration, TaskIntegration

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ptx.core.events import RunResult, TaskResult


def run_entry(integration: RunIntegration) -> dict[str, Any]:
    return {"branch": integration.branch, "base": integration.base, "commit": integration.commit}


def task_entry(integration: TaskIntegration) -> dict[str, Any]:
    return {
        "result": integration.result,
        "branch": integration.branch,
        "commit": integration.commit,
        "paths": list(integration.paths),
        "insertions": integration.insertions,
        "deletions": integration.deletions,
        "worktree": integration.worktree,
    }


def run_from(entry: Any) -> RunIntegration | None:  # noqa: ANN401 - a JSON value or nothing
    if not isinstance(entry, dict):
        return None
    return RunIntegration(branch=entry["branch"], base=entry["base"], commit=entry["commit"])


def task_from(entry: Any) -> TaskIntegration | None:  # noqa: ANN401 - a JSON value or nothing
    if not isinstance(entry, dict):
        return None
    return TaskIntegration(
        result=entry["result"],
        branch=entry.get("branch"),
        commit=entry.get("commit"),
        paths=tuple(entry.get("paths") or ()),
        insertions=int(entry.get("insertions") or 0),
        deletions=int(entry.get("deletions") or 0),
        worktree=entry.get("worktree"),
    )


def task_line(task: TaskResult) -> str | None:
    """One line per task of an isolated run: what became of its work."""
    found = task.integration
    if found is None:
        return None
    parts = [f"{task.id}: {found.result}"]
    if found.branch:
        commit = f" at {found.commit[:12]}" if found.commit else ""
        parts.append(f"{found.branch}{commit}")
    if found.result == "conflict":
        parts.append("conflicting: " + ", ".join(found.paths))
    elif found.paths:
        count = len(found.paths)
        parts.append(f"{count} file{'s' * (count != 1)} +{found.insertions} -{found.deletions}")
    if found.worktree:
        parts.append(f"worktree kept: {found.worktree}")
    return ", ".join(parts)


def summary_lines(result: RunResult) -> list[str]:
    """The integration part of the text report; nothing for a run without isolation."""
    integration = result.integration
    if integration is None:
        return []
    lines = [line for task in result.tasks if (line := task_line(task)) is not None]
    lines.append(
        f"integration branch {integration.branch} at {integration.commit[:12]}"
        f" (from {integration.base[:12]})"
    )
    if integration.commit != integration.base:
        lines.append(f"adopt it: {adopt_command(integration.branch)}")
    return lines


def adopt_command(branch: str) -> str:
    """The one command that brings the run's work into the user's branch."""
    return f"git merge --ff-only {branch}"


def with_entries(data: dict[str, Any], result: RunResult) -> Mapping[str, Any]:
    """`data` (a report's dict) with the integration entries of an isolated run."""
    if result.integration is None:
        return data
    data["integration"] = run_entry(result.integration)
    for entry, task in zip(data["tasks"], result.tasks, strict=True):
        found = task.integration or TaskIntegration(result="not run")
        entry["integration"] = task_entry(found)
    return data
