"""Rich renderables of a plan and of a finished run's report, for the terminal; loaded only
by the commands that draw one."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from rich.text import Text

from ptx.cli.gantt import gantt_lines
from ptx.cli.reporttable import relative, shortened, task_table
from ptx.cli.ui import STATUS_STYLE
from ptx.core.model import counted, seconds_text

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.console import RenderableType

    from ptx.core.events import RunResult, Status, TaskResult
    from ptx.graph.plan import Plan

_count = counted


def plan_header(plan: Plan) -> Text:
    text = Text(f"tag {plan.tag}: ", style="bold")
    text.append(f"{_count(len(plan.work.nodes), 'task')} to run in ")
    text.append(f"{_count(len(plan.groups), 'parallel group')}, ")
    text.append(f"{len(plan.satisfied)} already done, {len(plan.blocked)} blocked")
    return text


_PLAN_COLUMNS = ("group", "id", "task", "priority", "estimate")
_PLAN_RIGHT = frozenset({"group", "id", "estimate"})


def groups_table(plan: Plan) -> Text:
    """One row per unit, group by group, aligned by hand and built as one Text, as the run's
    task table is: a Rich Table measures every cell, seconds for a big plan (BENCHMARKS.md)."""
    critical = set(plan.critical_path.tasks)
    rows: list[tuple[str, ...]] = []
    for number, group in enumerate(plan.groups, start=1):
        for index, unit in enumerate(group):
            task = plan.work.nodes[unit]
            seconds = plan.estimates.get(unit)
            rows.append(
                (
                    str(number) if index == 0 else "",
                    unit,
                    shortened(task.title),
                    task.priority,
                    "" if seconds is None else seconds_text(seconds),
                )
            )
    widths = [
        max(len(name), *(len(row[i]) for row in rows)) for i, name in enumerate(_PLAN_COLUMNS)
    ]
    text = Text()
    text.append("  ".join(_padded(_PLAN_COLUMNS, widths)).rstrip() + "\n", style="bold")
    for row in rows:
        cells = _padded(row, widths)
        text.append(f"{cells[0]}  ")
        text.append(cells[1], style="bold red" if row[1] in critical else "")
        text.append(("  " + "  ".join(cells[2:])).rstrip() + "\n")
    text.rstrip()
    return text


def _padded(cells: Sequence[str], widths: Sequence[int]) -> list[str]:
    return [
        cell.rjust(width) if name in _PLAN_RIGHT else cell.ljust(width)
        for name, cell, width in zip(_PLAN_COLUMNS, cells, widths, strict=True)
    ]


def critical_path_text(plan: Plan) -> Text:
    path = plan.critical_path
    if not path.tasks:
        return Text("nothing to run", style="green")
    from ptx.graph.units import PATH_ENDS, path_text  # noqa: PLC0415 - loaded by the plan already

    text = Text("critical path: ", style="bold")
    text.append(path_text(path.tasks, PATH_ENDS), style="red")
    length = _count(path.steps, "step")
    if path.seconds is not None:
        length = f"{seconds_text(path.seconds)}, {length}"
    text.append(f" ({length})")
    return text


def prediction_text(plan: Plan) -> Text:
    predicted = plan.predicted
    if predicted is None:
        return Text("no estimates: add metadata.ptx.estimate_seconds or run once for history")
    text = Text(f"predicted with -j {plan.jobs}: ", style="bold")
    makespan, work = seconds_text(predicted.makespan_seconds), seconds_text(predicted.work_seconds)
    text.append(f"{makespan} for {work}")
    text.append(f" of work, speedup {predicted.speedup:.2f}x")
    if predicted.best_jobs is not None:
        text.append(f"; more than -j {predicted.best_jobs} does not help")
    return text


def run_report(result: RunResult, *, quiet: bool = False, width: int = 80) -> list[RenderableType]:
    """The final report: the tasks (with `quiet`, only those that did not succeed), the
    timeline (not with `quiet`), the figures, then ninja-style FAILED blocks."""
    if not result.tasks:
        nothing = Text("nothing to run: every selected task is done already or blocked (ptx plan)")
        return [nothing, *_blocked_lines(result)]
    shown = [task for task in result.tasks if not quiet or task.status.value != "succeeded"]
    parts: list[RenderableType] = list(task_table(shown, width, STATUS_STYLE)) if shown else []
    timeline = [] if quiet else gantt_lines(result, width)
    if timeline:
        parts.append(Text("\n".join(timeline)))
    parts.append(_counts_text(result.tasks))
    parts.append(_figures_text(result))
    parts.extend(_reported_lines(result, quiet=quiet))
    parts.extend(_safety_lines(result))
    parts.extend(_blocked_lines(result))
    parts.extend(_integration_lines(result))
    failed = _failed_statuses()
    parts.extend(_failed_block(task) for task in result.tasks if task.status in failed)
    return parts


def _counts_text(tasks: Sequence[TaskResult]) -> Text:
    """How the tasks ended, each kind counted apart: an interrupted task did not fail."""
    from ptx.core.events import FAILURES  # noqa: PLC0415 - see _failed_statuses

    kinds: dict[str, int] = {}
    for task in tasks:
        kind = "failed" if task.status in FAILURES else task.status.value
        kinds[kind] = kinds.get(kind, 0) + 1
    first = ("succeeded", "failed", "conflict", "interrupted", "skipped", "not-run")
    order = [*first, *sorted(kinds.keys() - set(first))]  # a status added later still counts
    counted = ", ".join(f"{kinds[kind]} {kind}" for kind in order if kind in kinds)
    return Text(f"{_count(len(tasks), 'task')}: {counted}")


def _integration_lines(result: RunResult) -> list[Text]:
    from ptx.outputs.integration import summary_lines  # noqa: PLC0415 - see _failed_statuses

    return [Text(line, style="cyan") for line in summary_lines(result)]


def _failed_statuses() -> frozenset[Status]:
    """The statuses that get a FAILED block. An interrupted task did not finish either: its
    block shows how far it got."""
    # core.events and outputs.report come with a run anyway; validate, plan and config,
    # which also print through this module, do without them.
    from ptx.core.events import FAILURES, Status  # noqa: PLC0415 - only a run's report needs it

    return FAILURES | {Status.INTERRUPTED, Status.CONFLICT}


def _figures_text(result: RunResult) -> Text:
    from ptx.graph.units import PATH_ENDS, path_text  # noqa: PLC0415 - see _failed_statuses
    from ptx.outputs.report import figures  # noqa: PLC0415 - see _failed_statuses

    numbers = figures(result)
    text = Text()
    text.append(f"wall {seconds_text(numbers.wall)}, work {seconds_text(numbers.work)}, ")
    text.append(f"speedup {numbers.speedup:.2f}x on {_count(result.jobs, 'worker')} ")
    text.append(f"(efficiency {numbers.efficiency:.0%})\n")
    text.append("critical path ")
    text.append(path_text(numbers.critical_path, PATH_ENDS) or "-", style="red")
    text.append(f" {seconds_text(numbers.critical_seconds)}; ")
    text.append(f"bound max(L, W/P) {seconds_text(numbers.bound)}")
    text.append(f", optimality {numbers.optimality:.0%}; ")
    text.append(f"level-by-level would take {seconds_text(numbers.level_barrier)}")
    return text


def _safety_lines(result: RunResult) -> list[Text]:
    lines = [Text(change.text, style="yellow") for change in result.breakers]
    if result.degraded is not None:
        after = seconds_text(max(0.0, result.degraded.at - result.started_at))
        lines.append(Text(f"{result.degraded.text} ({after} into the run)", style="bold yellow"))
    if result.held:
        guards = ", ".join(f"{guard} {seconds_text(seconds)}" for guard, seconds in result.held)
        lines.append(Text(f"starts held by the machine guards: {guards}", style="yellow"))
    return lines


def _blocked_lines(result: RunResult) -> list[Text]:
    """Tasks not run because of a status, which are not failures, and targets that could not
    run, which are; then statuses that could not be written back."""
    lines = [
        Text(f"cannot run target {unit}: {reason}", style="bold red")
        if unit in result.failed_targets
        else Text(f"blocked {unit}: {reason}", style="yellow")
        for unit, reason in result.blocked
    ]
    if result.unwritten:
        listed = ", ".join(result.unwritten)
        lines.append(Text(f"status of {listed} not written to tasks.json", style="bold red"))
    return lines


def _reported_lines(result: RunResult, *, quiet: bool) -> list[Text]:
    """What the tasks reported back (cost, tokens), which were flaky, and the budget."""
    from ptx.outputs.report import totals  # noqa: PLC0415 - see _failed_statuses

    lines = []
    run = totals(result.tasks)
    if run["cost_usd"] is not None or run["tokens"] is not None:
        lines.append(Text("reported " + _spent(run["cost_usd"], run["tokens"]), style="bold"))
        reporting = [task for task in result.tasks if not quiet and _reported(task)]
        widths = max((len(task.id) for task in reporting), default=0)
        for task in reporting:
            tokens = totals((task,))["tokens"]
            lines.append(Text(f"  {task.id.rjust(widths)}  {_spent(task.cost_usd, tokens)}"))
    for task in result.tasks:
        if task.flaky:
            failures = ", ".join(task.failed_attempts)
            flaky = f"flaky {task.id}: {failures}, then succeeded on attempt {task.attempts}"
            lines.append(Text(flaky, style="yellow"))
    if result.budget_stopped:
        budget = f"${result.max_cost_usd or 0:.2f}"
        text = f"budget {budget} reached (--max-cost): the tasks left were not started"
        lines.append(Text(text, style="bold yellow"))
    return lines


def _reported(task: TaskResult) -> bool:
    reported = (task.cost_usd, task.input_tokens, task.output_tokens)
    return any(value is not None for value in reported)


def _spent(cost: float | None, tokens: dict[str, int] | None) -> str:
    """ "$0.42, 1,200 tokens in, 800 out"; the parts nothing reported are left out."""
    parts = [] if cost is None else [f"${cost:.2f}"]
    tokens = tokens or {}
    if "input" in tokens:
        parts.append(f"{tokens['input']:,} tokens in")
    if "output" in tokens:
        parts.append(f"{tokens['output']:,} {'out' if 'input' in tokens else 'tokens out'}")
    return ", ".join(parts)


def _failed_block(task: TaskResult) -> Text:
    from ptx.outputs.report import log_tail  # noqa: PLC0415 - see _failed_statuses

    code = "" if task.exit_code is None else f" (exit {task.exit_code})"
    if task.status.value == "interrupted":  # stopped, not failed: how far it got
        text = Text(f"INTERRUPTED: {task.id}{code}\n", style="bold magenta")
    else:
        text = Text(f"FAILED: {task.id} {task.status.value}{code}\n", style="bold red")
    text.append(Text(f"{task.command or ''}\n", style="dim"))
    if task.integration is not None and task.reason:
        text.append(Text(f"{task.reason}\n", style="bold red"))
    for line in log_tail(task.log):
        text.append(Text(line + "\n"))
    if task.log and os.path.exists(task.log):  # noqa: PTH110 - report paths are str
        text.append(Text(f"full log: {relative(task.log)}", style="dim"))
    else:  # a log is only kept once something was written to it (see logfile.py)
        text.append(Text("no output", style="dim"))
    return text
