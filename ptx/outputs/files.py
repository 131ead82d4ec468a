"""The machine-readable files a finished run is written to, and its export in any format."""

from __future__ import annotations

import dataclasses
import enum
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ptx.core.errors import PtxError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from ptx.core.events import RunResult
    from ptx.journal.schema import AttemptRecord
    from ptx.journal.store import Journal


class OutputError(PtxError):
    """A file the run was asked to write cannot be written."""


class Format(str, enum.Enum):
    """What `ptx report --format` prints; text and json are the report itself."""

    text = "text"
    json = "json"
    junit = "junit"
    trace = "trace"
    metrics = "metrics"


@dataclass(frozen=True, slots=True, kw_only=True)
class Outputs:
    """Where a run's result goes besides the screen; None: not wanted."""

    junit: Path | None = None
    trace: Path | None = None
    metrics_file: Path | None = None
    pushgateway: str | None = None
    step_summary: Path | None = None  # $GITHUB_STEP_SUMMARY, appended to

    def any_wanted(self) -> bool:
        return any(getattr(self, field.name) is not None for field in dataclasses.fields(self))

    def check(self) -> None:
        """Refuse before the run what could only fail after it."""
        if self.metrics_file is not None or self.pushgateway is not None:
            from ptx.outputs import metrics  # noqa: PLC0415 - only metrics outputs need it

            metrics.require_library()


@dataclass(frozen=True, slots=True, kw_only=True)
class Recorded:
    """What the journal knows of a run beyond its report."""

    tag: str
    attempts: tuple[AttemptRecord, ...]


def recorded(journal: Journal, run_id: str) -> Recorded:
    info = journal.run(run_id)
    return Recorded(tag=info.tag if info else "", attempts=tuple(journal.attempts(run_id)))


def render(output: Format, result: RunResult, record: Recorded) -> str:
    """The run as JUnit XML, a Chrome trace or Prometheus text (not text or json)."""
    # Each format's module is imported once asked for, so a run that exports nothing skips them.
    from ptx.outputs import ci, metrics, trace  # noqa: PLC0415 - only an export needs these

    if output is Format.junit:
        return ci.junit_xml(result, tag=record.tag)
    if output is Format.trace:
        return trace.chrome_trace(result, record.attempts)
    if output is Format.metrics:
        return metrics.prometheus_text(result, record.attempts)
    raise PtxError(f"no export in format {output.value}")


def write_outputs(result: RunResult, record: Recorded, outputs: Outputs) -> list[str]:
    """Write every output asked for, each even when another fails; return what failed."""
    problems = (_problem(write) for write in _writers(result, record, outputs))
    return [problem for problem in problems if problem is not None]


def _problem(write: Callable[[], None]) -> str | None:
    try:
        write()
    except PtxError as error:
        return str(error)
    return None


def _writers(result: RunResult, record: Recorded, outputs: Outputs) -> list[Callable[[], None]]:
    from ptx.outputs import ci, metrics, trace  # noqa: PLC0415 - only runs with outputs need these

    writers: list[Callable[[], None]] = []
    if outputs.junit is not None:
        junit = functools.partial(ci.junit_xml, result, tag=record.tag)
        writers.append(functools.partial(_write, junit, outputs.junit))
    if outputs.trace is not None:
        chrome = functools.partial(trace.chrome_trace, result, record.attempts)
        writers.append(functools.partial(_write, chrome, outputs.trace))
    if outputs.metrics_file is not None:
        writers.append(
            functools.partial(
                metrics.write_metrics_file, result, record.attempts, outputs.metrics_file
            )
        )
    if outputs.pushgateway is not None:
        writers.append(
            functools.partial(metrics.push_metrics, result, record.attempts, outputs.pushgateway)
        )
    if outputs.step_summary is not None:
        writers.append(functools.partial(_append_summary, result, outputs.step_summary))
    return writers


def _write(text: Callable[[], str], path: Path) -> None:
    from ptx.outputs.report import write_text_atomically  # noqa: PLC0415 - brings ptx.core.events

    try:
        write_text_atomically(text(), path)
    except OSError as error:
        raise OutputError(f"cannot write {path}: {error}") from error


def _append_summary(result: RunResult, path: Path) -> None:
    from ptx.outputs import ci  # noqa: PLC0415 - only GitHub Actions runs need it

    try:
        ci.append_step_summary(result, path)
    except OSError as error:
        raise OutputError(f"cannot append to the step summary {path}: {error}") from error
