"""A run's figures as Prometheus metrics: text exposition, node_exporter's textfile, Pushgateway."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ptx.core.errors import PtxError
from ptx.core.events import FAILURES, Status
from ptx.outputs.report import figures, totals

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from prometheus_client import CollectorRegistry
    from prometheus_client.core import Metric

    from ptx.core.events import RunResult
    from ptx.journal.schema import AttemptRecord

JOB = "ptx"
PUSH_TIMEOUT_SECONDS = 10.0
# Tasks range from a one-second script to an hour-long coding agent.
DURATION_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


class MetricsError(PtxError):
    """Metrics cannot be made (the optional library is missing), written or pushed."""


def require_library() -> None:
    """Fail before a run, not after it, when metrics are asked for and cannot be made."""
    _registry_class()


def _registry_class() -> type[CollectorRegistry]:
    try:
        from prometheus_client import CollectorRegistry  # noqa: PLC0415 - optional extra
    except ImportError:
        raise MetricsError(
            "metrics need the prometheus-client library: pip install 'ptx[metrics]'"
        ) from None
    return CollectorRegistry


def registry_of(result: RunResult, attempts: Sequence[AttemptRecord]) -> CollectorRegistry:
    """A fresh registry holding the run and nothing of the process that made it."""
    registry = _registry_class()(auto_describe=True)
    families = _task_families(result) + _figure_families(result, attempts)
    registry.register(_Snapshot(families + _reported_families(result)))
    return registry


class _Snapshot:
    """A collector of fixed families: a finished run's numbers never change, and families
    built here carry no `_created` series (a counter object would add one per label)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def _task_families(result: RunResult) -> list[Metric]:
    from prometheus_client.core import (  # noqa: PLC0415 - optional extra
        CounterMetricFamily,
        HistogramMetricFamily,
        InfoMetricFamily,
    )

    info = InfoMetricFamily(
        "ptx_run",
        "The run these metrics describe.",
        {"run_id": result.run_id, "status": result.status},
    )
    tasks = CounterMetricFamily("ptx_tasks", "Tasks of the run by final status.", labels=["status"])
    for status in Status:  # every status, zero or not, so that queries find the series
        tasks.add_metric([status.value], sum(task.status is status for task in result.tasks))
    durations = [task.duration for task in result.tasks if task.duration is not None]
    buckets = [(str(bound), sum(d <= bound for d in durations)) for bound in DURATION_BUCKETS]
    histogram = HistogramMetricFamily(
        "ptx_task_duration_seconds",
        "Duration of each task that ran, first start to last end.",
        buckets=[*buckets, ("+Inf", len(durations))],
        sum_value=sum(durations),
    )
    return [info, tasks, histogram]


def _figure_families(result: RunResult, attempts: Sequence[AttemptRecord]) -> list[Metric]:
    from prometheus_client.core import GaugeMetricFamily  # noqa: PLC0415 - optional extra

    numbers = figures(result)
    ran = [task for task in result.tasks if task.started_at is not None]
    failed = sum(task.status in FAILURES for task in ran)
    busy = sum((record.ended_at or result.ended_at) - record.started_at for record in attempts)
    values = {
        "wall_seconds": ("Makespan of the run.", numbers.wall),
        "work_seconds": ("Sum of the task durations (W).", numbers.work),
        "critical_path_seconds": ("Longest dependency chain (L).", numbers.critical_seconds),
        "speedup": ("W / wall.", numbers.speedup),
        "efficiency_ratio": ("Speedup / workers.", numbers.efficiency),
        "optimality_ratio": ("max(L, W / workers) / wall; 1 is perfect.", numbers.optimality),
        "failure_ratio": ("Share of the tasks that ran that failed.", failed / max(1, len(ran))),
        "utilization_ratio": (
            "Attempt time / (wall x workers): how busy the workers were.",
            busy / (numbers.wall * result.jobs),
        ),
        "jobs": ("Workers of the run.", float(result.jobs)),
        "end_timestamp_seconds": ("When the run ended (Unix time).", result.ended_at),
    }
    return [
        GaugeMetricFamily(f"ptx_run_{name}", help_text, value=value)
        for name, (help_text, value) in values.items()
    ]


def _reported_families(result: RunResult) -> list[Metric]:
    """What the tasks reported back (PTX_RESULT, claude-json): cost and tokens per task that
    reported them and for the run, and how many tasks were flaky."""
    from prometheus_client.core import GaugeMetricFamily  # noqa: PLC0415 - optional extra

    run = totals(result.tasks)
    cost = GaugeMetricFamily("ptx_run_cost_usd", "Cost the tasks reported, in USD.")
    cost.add_metric([], run["cost_usd"] or 0.0)
    tokens = GaugeMetricFamily("ptx_run_tokens", "Tokens the tasks reported.", labels=["kind"])
    task_cost = GaugeMetricFamily(
        "ptx_task_cost_usd", "Cost a task reported, in USD (its attempts summed).", labels=["task"]
    )
    task_tokens = GaugeMetricFamily(
        "ptx_task_tokens", "Tokens a task reported (its attempts summed).", labels=["task", "kind"]
    )
    for kind in ("input", "output"):
        tokens.add_metric([kind], (run["tokens"] or {}).get(kind, 0))
    for task in result.tasks:
        if task.cost_usd is not None:
            task_cost.add_metric([task.id], task.cost_usd)
        for kind, count in (("input", task.input_tokens), ("output", task.output_tokens)):
            if count is not None:
                task_tokens.add_metric([task.id, kind], count)
    flaky = GaugeMetricFamily(
        "ptx_run_flaky_tasks", "Tasks that failed, then succeeded on a retry."
    )
    flaky.add_metric([], sum(task.flaky for task in result.tasks))
    return [cost, tokens, task_cost, task_tokens, flaky]


def prometheus_text(result: RunResult, attempts: Sequence[AttemptRecord]) -> str:
    """The Prometheus text exposition format of the run."""
    from prometheus_client import generate_latest  # noqa: PLC0415 - optional extra

    return generate_latest(registry_of(result, attempts)).decode()


def write_metrics_file(result: RunResult, attempts: Sequence[AttemptRecord], path: Path) -> None:
    """Written to a temporary file and renamed, as node_exporter's textfile collector needs."""
    registry = registry_of(result, attempts)
    from prometheus_client import write_to_textfile  # noqa: PLC0415 - optional extra

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(path), registry)
    except OSError as error:
        raise MetricsError(f"cannot write metrics to {path}: {error}") from error


def push_metrics(result: RunResult, attempts: Sequence[AttemptRecord], url: str) -> None:
    """PUT the run's metrics to a Pushgateway under job "ptx", replacing the previous run's."""
    registry = registry_of(result, attempts)
    from prometheus_client import push_to_gateway  # noqa: PLC0415 - optional extra

    try:
        push_to_gateway(url, job=JOB, registry=registry, timeout=PUSH_TIMEOUT_SECONDS)
    except (OSError, ValueError) as error:
        raise MetricsError(f"cannot push metrics to {url}: {error}") from error
