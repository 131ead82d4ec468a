"""The terminal: one stdout console for data, one stderr console for messages, Rich views."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, TextIO

from ptx.core.model import Severity, counted

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.console import Console
    from rich.text import Text

    from ptx.core.events import RunResult
    from ptx.core.model import Finding
    from ptx.graph.plan import Plan


class Ui:
    """Everything ptx prints goes through here; markup is off so task text stays literal."""

    def __init__(self, *, out: Console | None = None, err: Console | None = None) -> None:
        self._out, self._err = out, err  # made when first needed: Rich's console loads slowly

    @property
    def out(self) -> Console:
        if self._out is None:
            self._out = _console(stderr=False)
        return self._out

    @property
    def err(self) -> Console:
        if self._err is None:
            self._err = _console(stderr=True)
        return self._err

    def live_console(self) -> Console:
        """A console for the live table on stdout (print's soft wrapping would not do)."""
        from rich.console import Console  # noqa: PLC0415 - see __init__

        return Console(file=self.out.file, markup=False, highlight=False)

    def _print(self, line: str, style: str, *, err: bool) -> None:
        """One line: through Rich where it would style it, else written as is, so that a
        command printing a few plain lines (validate, a usage error) never loads Rich."""
        console = self._err if err else self._out
        stream = sys.stderr if err else sys.stdout
        if console is None and not styled(stream):
            stream.write(line + "\n")
            stream.flush()
        else:
            from rich.text import Text  # noqa: PLC0415 - see the docstring

            (self.err if err else self.out).print(Text(line, style=style))

    def data(self, text: str) -> None:
        """Machine-readable output: written as is, never styled or wrapped."""
        self.out.file.write(text if text.endswith("\n") else text + "\n")
        self.out.file.flush()

    def notice(self, message: str) -> None:
        self._print("ptx: " + message, "cyan", err=True)

    def warning(self, message: str) -> None:
        self._print("ptx: warning: " + message, "yellow", err=True)

    def error(self, message: str) -> None:
        for line in message.splitlines() or [""]:
            self._print("ptx: error: " + line, "bold red", err=True)

    def lines(self, text: Text) -> None:
        """Styled lines on a terminal; elsewhere Rich would only take the styles off again, at
        a cost that shows in a big plan (BENCHMARKS.md)."""
        if self._out.is_terminal if self._out is not None else styled(sys.stdout):
            self.out.print(text, overflow="ignore", crop=False)
        else:
            self.data(text.plain)

    def display_findings(
        self, file: str, findings: Sequence[Finding], task_count: int, subtask_count: int = 0
    ) -> None:
        """The findings, then a summary that counts tasks as `ptx plan` does: top-level tasks,
        with their subtasks counted apart."""
        from ptx.outputs.export import finding_line  # noqa: PLC0415 - only validate shows findings

        for finding in findings:
            style = "red" if finding.severity is Severity.ERROR else "yellow"
            self._print(finding_line(file, finding), style, err=False)
        errors = sum(1 for finding in findings if finding.severity is Severity.ERROR)
        summary = (
            f"{_count(errors, 'error')}, {_count(len(findings) - errors, 'warning')} "
            f"in {_count(task_count, 'task')}"
        )
        if subtask_count:
            summary += f" and {_count(subtask_count, 'subtask')}"
        self._print(summary, "bold red" if errors else "green", err=True)

    def display_report(self, result: RunResult, *, quiet: bool = False, width: int = 80) -> None:
        from ptx.cli.render import run_report  # noqa: PLC0415 - only a run's report draws them

        for part in run_report(result, quiet=quiet, width=width):
            self.out.print(part, overflow="ignore", crop=False)

    def report_width(self, *, plain: bool = False) -> int:
        """The timeline's width: the terminal's, or 80 where nobody watches a terminal."""
        return self.out.width if self.out.is_terminal and not plain else 80

    def display_runs(self, rows: Sequence[Sequence[str]]) -> None:
        from rich.text import Text  # noqa: PLC0415 - only a table of runs needs it here

        header = ("run", "started", "status", "tasks", "wall", "speedup")
        widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
        self.out.print(Text(_columns(header, widths), style="bold"))
        for row in rows:
            style = STATUS_STYLE.get(row[2], "")
            self.out.print(Text(_columns(row, widths), style=style), overflow="ignore", crop=False)

    def display_plan(self, plan: Plan) -> None:
        from rich.text import Text  # noqa: PLC0415 - only a plan and a run draw with Rich

        from ptx.cli.render import (  # noqa: PLC0415 - see above
            critical_path_text,
            groups_table,
            plan_header,
            prediction_text,
        )

        self.out.print(plan_header(plan))
        if plan.groups:
            self.lines(groups_table(plan))
        self.out.print(critical_path_text(plan))
        self.out.print(prediction_text(plan))
        if plan.jobs_reason is not None:
            self.out.print(Text(plan.jobs_reason))
        for unit, reason in plan.blocked:
            self.out.print(Text(f"blocked {unit}: {reason}", style="yellow"))


_count = counted


def _console(*, stderr: bool) -> Console:
    from rich.console import Console  # noqa: PLC0415 - see Ui.__init__

    return Console(stderr=stderr, markup=False, highlight=False, soft_wrap=True)


def styled(stream: TextIO) -> bool:
    """Whether Rich's console would style what it writes to `stream` (its `is_terminal`, as
    Rich decides it: TTY_COMPATIBLE, then FORCE_COLOR, then isatty)."""
    compatible = os.environ.get("TTY_COMPATIBLE", "")
    if compatible in {"0", "1"}:
        return compatible == "1"
    force = os.environ.get("FORCE_COLOR")
    if force is not None:
        return force != ""
    try:
        return stream.isatty()
    except ValueError:  # closed
        return False


STATUS_STYLE = {  # one colour per state, wherever a task's or a run's state is shown
    "queued": "dim",
    "waiting": "yellow",
    "running": "bold cyan",
    "retry": "yellow",
    "succeeded": "green",
    "failed": "bold red",
    "timeout": "bold red",
    "memory-exceeded": "bold red",
    "skipped": "yellow",
    "interrupted": "magenta",
    "not-run": "dim",
    "conflict": "bold red",
    "integrating": "cyan",
}


def _columns(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()


def short_duration(seconds: float) -> str:
    """For a live display: "4.2s", "42s", "4m02s", "1h04m"."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{rest:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def short_size(count: int) -> str:
    """Bytes as "512B", "12K", "340M", "2G"."""
    for unit in ("B", "K", "M", "G"):
        if count < 1024:
            return f"{count}{unit}"
        count //= 1024
    return f"{count}T"
