"""What CI systems read of a run: JUnit XML and the GitHub Actions step summary (Markdown)."""

from __future__ import annotations

import html
import os
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from ptx.core import events
from ptx.core.events import Status
from ptx.core.model import counted
from ptx.graph.units import PATH_ENDS, path_text
from ptx.journal.statedir import log_path
from ptx.outputs.report import figures, log_tail, totals

if TYPE_CHECKING:
    from ptx.core.events import RunResult, TaskResult

# An interrupted task did not pass either: CI shows it as a failed test case.
FAILURES = events.FAILURES | {Status.INTERRUPTED}
SKIPS = frozenset({Status.SKIPPED, Status.NOT_RUN})
TAIL_LINES = 20
# XML 1.0 allows no control characters but tab, newline and carriage return, and no
# surrogates or U+FFFE/U+FFFF; a task's log can hold any byte.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")


def xml_text(text: str) -> str:
    """`text` without ANSI colour codes and without the characters XML 1.0 forbids."""
    return _NOT_XML.sub("", _ANSI.sub("", text))


def junit_xml(result: RunResult, *, tag: str) -> str:
    """One testsuite for the run, one testcase per task, as GitHub, GitLab and Jenkins read."""
    counts = {
        "tests": str(len(result.tasks)),
        "failures": str(sum(task.status in FAILURES for task in result.tasks)),
        "errors": "0",
        "skipped": str(sum(task.status in SKIPS for task in result.tasks)),
        "time": f"{result.ended_at - result.started_at:.3f}",
    }
    root = ET.Element("testsuites", {"name": "ptx", **counts})
    started = datetime.fromtimestamp(result.started_at, tz=timezone.utc)
    suite = ET.SubElement(
        root,
        "testsuite",
        {
            "name": f"ptx run {result.run_id}",
            **counts,
            "timestamp": started.isoformat(timespec="seconds"),
        },
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (("run_id", result.run_id), ("tag", tag), ("jobs", str(result.jobs))):
        ET.SubElement(properties, "property", {"name": name, "value": xml_text(value)})
    for task in result.tasks:
        _testcase(suite, task, tag)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _testcase(suite: ET.Element, task: TaskResult, tag: str) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        {
            "name": xml_text(f"{task.id}: {task.title}"),
            "classname": xml_text(f"ptx.{tag}"),
            "time": f"{task.duration or 0.0:.3f}",
        },
    )
    tail = xml_text("\n".join(log_tail(task.log, TAIL_LINES)))
    if task.status in FAILURES:
        failure = ET.SubElement(
            case, "failure", {"message": xml_text(outcome(task)), "type": _failure_type(task)}
        )
        failure.text = tail
    elif task.status in SKIPS:
        reason = task.reason or task.status.value
        ET.SubElement(case, "skipped", {"message": xml_text(reason)})
    elif task.flaky:
        _flaky_failures(case, task)
    if task.log is not None:
        ET.SubElement(case, "system-out").text = tail


def _flaky_failures(case: ET.Element, task: TaskResult) -> None:
    """A pass after failed attempts, as Maven Surefire writes a test that passed on a rerun:
    one `flakyFailure` per failed attempt inside the passing testcase, which Jenkins, GitLab
    and the JUnit viewers show as a flaky pass."""
    logs = os.path.dirname(task.log) if task.log else None  # noqa: PTH120 - str paths here
    for number, failure in enumerate(task.failed_attempts, start=1):
        kind = failure.split(" ", 1)[0]
        message = f"attempt {number} of {task.attempts}: {failure}"
        element = ET.SubElement(case, "flakyFailure", {"message": message, "type": kind})
        log = None if logs is None else log_path(logs, task.id, number)
        ET.SubElement(element, "stackTrace").text = xml_text("\n".join(log_tail(log, TAIL_LINES)))


def _failure_type(task: TaskResult) -> str:
    if task.status is Status.FAILED:
        return "failed" if task.exit_code is None else f"exit {task.exit_code}"
    return str(task.status.value)


def outcome(task: TaskResult) -> str:
    """A failed task's outcome in a few words: "failed (exit 3)", "timeout"."""
    code = "" if task.exit_code is None else f" (exit {task.exit_code})"
    return f"{task.status.value}{code}"


# --- GitHub Actions step summary ---------------------------------------------------------------


def step_summary(result: RunResult) -> str:
    """The run as Markdown for `$GITHUB_STEP_SUMMARY`: counts, figures, and each failed task
    with its log tail folded in a `<details>` block."""
    numbers = figures(result)
    counts = {status: sum(task.status is status for task in result.tasks) for status in Status}
    summary = ", ".join(f"{n} {status.value}" for status, n in counts.items() if n)
    path = path_text(numbers.critical_path, PATH_ENDS, " → ") or "-"
    tasks = counted(len(result.tasks), "task")
    lines = [
        f"### ptx run `{result.run_id}`: {result.status}",
        "",
        f"{tasks} on {counted(result.jobs, 'worker')}: {summary or 'nothing to run'}",
        "",
        "| figure | value |",
        "| --- | --- |",
        f"| wall | {numbers.wall:.1f} s |",
        f"| work | {numbers.work:.1f} s |",
        f"| speedup | {numbers.speedup:.2f}x |",
        f"| efficiency | {numbers.efficiency:.0%} |",
        f"| critical path | {path} ({numbers.critical_seconds:.1f} s) |",
        f"| optimality | {numbers.optimality:.0%} |",
        *_reported_rows(result),
    ]
    failed = [task for task in result.tasks if task.status in FAILURES]
    if failed:
        lines += ["", "#### Failed tasks", ""]
    for task in failed:
        lines += _failed_details(task)
    return "\n".join(lines) + "\n"


def _reported_rows(result: RunResult) -> list[str]:
    """Rows for what the tasks reported back, the flaky tasks and the budget, where any."""
    run = totals(result.tasks)
    rows = []
    if run["cost_usd"] is not None:
        rows.append(f"| reported cost | ${run['cost_usd']:.2f} |")
    tokens = run["tokens"] or {}
    if tokens:
        counts = ", ".join(f"{count:,} {kind}" for kind, count in tokens.items())
        rows.append(f"| reported tokens | {counts} |")
    flaky = [task.id for task in result.tasks if task.flaky]
    if flaky:
        rows.append(f"| flaky (passed on a retry) | {', '.join(flaky)} |")
    if result.budget_stopped:
        rows.append(f"| budget | ${result.max_cost_usd or 0:.2f} reached: the rest not started |")
    return rows


def _failed_details(task: TaskResult) -> list[str]:
    tail = "\n".join(log_tail(task.log, TAIL_LINES))
    tail = _ANSI.sub("", tail)
    # A fence longer than any run of backticks in the log, so the log cannot close it.
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall("`+", tail)), default=0))
    title = html.escape(f"{task.id}: {task.title}")
    return [
        f"<details><summary><b>{title}</b>: {html.escape(outcome(task))}</summary>",
        "",
        fence,
        tail or "(no output)",
        fence,
        "",
        "</details>",
        "",
    ]


def append_step_summary(result: RunResult, path: Path) -> None:
    """Append, never overwrite: other steps of the job write to the same file."""
    with Path(path).open("a", encoding="utf-8") as handle:
        handle.write(step_summary(result))
