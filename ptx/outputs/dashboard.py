"""`ptx dashboard`: the journal's history as one self-contained HTML file, with Bokeh charts
whose JavaScript is inlined, so the page opens with no network at all."""

from __future__ import annotations

import html
import time
from typing import TYPE_CHECKING, Any

from ptx.core.errors import UsageError
from ptx.core.model import id_key
from ptx.outputs.history import SLOT_REASON

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from bokeh.models import Model
    from bokeh.plotting import figure as Figure  # noqa: N812 - the class, named as Bokeh does

    from ptx.outputs.history import History, RunDetail, TaskHistory

EXTRA = "dashboard"
TOP = 20  # tasks in each of the "worst" bar charts
TOOLS = "pan,xwheel_zoom,box_zoom,reset,save"  # no help tool: it links to a web page
STATUS_COLORS = {
    "succeeded": "#2ca02c",
    "failed": "#d62728",
    "timeout": "#ff7f0e",
    "memory-exceeded": "#8c564b",
    "interrupted": "#9467bd",
    "running": "#7f7f7f",
}
CRITICAL_LINE = "#111111"
REASON_COLORS = ("#1f77b4", "#17becf", "#bcbd22", "#e377c2", "#8c564b", "#7f7f7f")


class DashboardError(UsageError):
    """The dashboard cannot be made: its optional library is missing."""


def require_library() -> None:
    try:
        import bokeh  # noqa: F401, PLC0415 - optional extra
    except ImportError:
        raise DashboardError(
            f"the dashboard needs the bokeh library: pip install 'ptx[{EXTRA}]'"
        ) from None


def dashboard_html(history: History, *, project: str) -> str:
    """The page: a header, the runs over time, the chosen run, and the tasks across runs."""
    require_library()
    from bokeh.embed import file_html  # noqa: PLC0415 - optional extra
    from bokeh.layouts import column  # noqa: PLC0415 - optional extra
    from bokeh.resources import INLINE  # noqa: PLC0415 - optional extra

    parts: list[Model] = [_div(_header(history, project))]
    if history.runs:
        parts += [_div("<h2>Runs over time</h2>"), *_runs_charts(history)]
    if history.detail is not None:
        parts += [_div(_run_heading(history.detail)), *_run_charts(history.detail)]
    if history.tasks:
        parts += [_div("<h2>Tasks across runs</h2>"), *_task_charts(history.tasks)]
    layout = column(*parts, sizing_mode="stretch_width")
    return file_html(layout, INLINE, title=f"ptx dashboard: {project}")


def _div(text: str) -> Model:
    from bokeh.models.widgets import Div  # noqa: PLC0415 - optional extra

    div: Model = Div(text=text, sizing_mode="stretch_width")
    return div


def _header(history: History, project: str) -> str:
    made = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    heading = f"<h1>ptx dashboard: {html.escape(project)}</h1>"
    if not history.runs:
        return heading + "<p>No runs recorded yet: run <code>ptx run</code>, then come back.</p>"
    latest = history.runs[-1]
    cost = sum(run.cost_usd or 0.0 for run in history.runs)
    return heading + (
        f"<p>{len(history.runs)} runs, the latest {html.escape(latest.run_id)}"
        f" ({html.escape(latest.status)}); reported cost ${cost:.2f} in all; made {made}.</p>"
    )


def _run_heading(detail: RunDetail) -> str:
    path = " → ".join(detail.critical_path) or "-"
    held = len(detail.held)
    return (
        f"<h2>Run {html.escape(detail.run_id)}: {html.escape(detail.status)}</h2>"
        f"<p>{detail.jobs} workers, wall {detail.wall:.1f} s; critical path (outlined) "
        f"{html.escape(path)}; {held} starts held. Attempts that were retried are hatched.</p>"
    )


def _figure(title: str, **options: Any) -> Figure:  # noqa: ANN401 - Bokeh's own options
    from bokeh.plotting import figure  # noqa: PLC0415 - optional extra

    return figure(
        title=title, tools=TOOLS, height=options.pop("height", 260), sizing_mode="stretch_width",
        **options,
    )  # fmt: skip


def _hover(chart: Figure, tips: Sequence[tuple[str, str]], **options: Any) -> None:  # noqa: ANN401
    from bokeh.models import HoverTool  # noqa: PLC0415 - optional extra

    chart.add_tools(HoverTool(tooltips=list(tips), **options))


def _runs_charts(history: History) -> list[Figure]:
    from bokeh.models import ColumnDataSource  # noqa: PLC0415 - optional extra

    runs = history.runs
    source = ColumnDataSource(
        {
            "at": [run.started_at * 1000 for run in runs],
            "run": [run.run_id for run in runs],
            "status": [run.status for run in runs],
            "wall": [_num(run.wall) for run in runs],
            "work": [_num(run.work) for run in runs],
            "speedup": [_num(run.speedup) for run in runs],
            "optimality": [_num(run.optimality) for run in runs],
            "failures": [run.failures or 0 for run in runs],
            "flaky": [run.flaky or 0 for run in runs],
            "cost": [_num(run.cost_usd) or 0.0 for run in runs],
        }
    )
    tips = [("run", "@run"), ("status", "@status"), ("wall", "@wall s"), ("work", "@work s")]
    more = [("speedup", "@speedup"), ("optimality", "@optimality"), ("failures", "@failures")]
    charts = []
    for title, fields in (
        ("Wall and work (seconds)", ("wall", "work")),
        ("Speedup and optimality (bound / wall)", ("speedup", "optimality")),
        ("Failed and flaky tasks; cost (USD)", ("failures", "flaky", "cost")),
    ):
        chart = _figure(title, x_axis_type="datetime")
        for index, name in enumerate(fields):
            color = REASON_COLORS[index]
            chart.line("at", name, source=source, color=color, legend_label=name, line_width=2)
            chart.scatter("at", name, source=source, color=color, legend_label=name, size=6)
        chart.legend.location = "top_left"
        _hover(chart, [*tips, *more, ("cost", "$@cost")], mode="vline")
        charts.append(chart)
    return charts


def _num(value: float | None) -> float | None:
    """Rounded: a thousandth is all a chart shows, and the file stays small."""
    return None if value is None else round(value, 3)


def _run_charts(detail: RunDetail) -> list[Model]:
    return [_gantt(detail), *([_held_chart(detail)] if detail.held else [])]


def _gantt(detail: RunDetail) -> Model:
    from bokeh.models import ColumnDataSource  # noqa: PLC0415 - optional extra

    slots = sorted({bar.slot for bar in detail.bars}) or [1]
    names = [f"worker {slot}" for slot in slots]
    bars = detail.bars
    source = ColumnDataSource(
        {
            "worker": [f"worker {bar.slot}" for bar in bars],
            "start": [round(bar.start, 3) for bar in bars],
            "end": [round(bar.end, 3) for bar in bars],
            "seconds": [round(bar.end - bar.start, 3) for bar in bars],
            "task": [bar.task for bar in bars],
            "title": [bar.title for bar in bars],
            "attempt": [bar.attempt for bar in bars],
            "status": [bar.status for bar in bars],
            "color": [STATUS_COLORS.get(bar.status, "#7f7f7f") for bar in bars],
            "line": [CRITICAL_LINE if bar.critical else "white" for bar in bars],
            "width": [3 if bar.critical else 1 for bar in bars],
            "hatch": ["x" if bar.retried else " " for bar in bars],
            "critical": ["yes" if bar.critical else "" for bar in bars],
            "cost": ["" if bar.cost_usd is None else f"${bar.cost_usd:.4f}" for bar in bars],
        }
    )
    chart = _figure(
        "Attempts on their worker slots (seconds from the start)",
        y_range=list(reversed(names)),
        height=max(160, 40 + 28 * len(names)),
    )
    chart.hbar(
        y="worker", left="start", right="end", height=0.8, source=source, fill_color="color",
        line_color="line", line_width="width", hatch_pattern="hatch", hatch_color="white",
        hatch_alpha=0.8,
    )  # fmt: skip
    tips = [("task", "@task: @title"), ("attempt", "@attempt"), ("status", "@status")]
    more = [("seconds", "@seconds"), ("critical path", "@critical"), ("cost", "@cost")]
    _hover(chart, [*tips, *more])
    return chart


def _held_chart(detail: RunDetail) -> Model:
    from bokeh.models import ColumnDataSource  # noqa: PLC0415 - optional extra

    held = detail.held
    reasons = sorted({entry.reason for entry in held}, key=lambda r: (r != SLOT_REASON, r))
    colors = {r: REASON_COLORS[i % len(REASON_COLORS)] for i, r in enumerate(reasons)}
    tasks = list(dict.fromkeys(entry.task for entry in held))
    chart = _figure(
        "Starts held: from ready (dependencies done) to start, and why",
        y_range=list(reversed(tasks)),
        height=max(160, 40 + 18 * len(tasks)),
    )
    for reason in reasons:
        mine = [entry for entry in held if entry.reason == reason]
        source = ColumnDataSource(
            {
                "task": [entry.task for entry in mine],
                "ready": [round(entry.ready, 3) for entry in mine],
                "start": [round(entry.start, 3) for entry in mine],
                "waited": [round(entry.start - entry.ready, 3) for entry in mine],
                "reason": [entry.reason for entry in mine],
            }
        )
        chart.hbar(
            y="task", left="ready", right="start", height=0.6, source=source,
            color=colors[reason], legend_label=f"waited for {reason}",
        )  # fmt: skip
    _hover(chart, [("task", "@task"), ("waited", "@waited s"), ("for", "@reason")])
    return chart


def _task_charts(tasks: Sequence[TaskHistory]) -> list[Model]:
    from bokeh.layouts import gridplot  # noqa: PLC0415 - optional extra

    # Each ranks its tasks by key, lowest first; a zero means nothing to show but for rates.
    worst: list[tuple[str, Callable[[TaskHistory], float], str]] = [
        ("Lowest success rate", lambda t: t.success_rate, "success rate"),
        ("Highest flip rate (flaky, or flipped pass/fail)", lambda t: -t.flip_rate, "flip rate"),
        ("Slowest (mean seconds)", lambda t: -t.mean_duration, "seconds"),
        ("Costliest (USD, all runs)", lambda t: -t.cost_usd, "USD"),
    ]
    charts = [_ranking(tasks, title, key, unit) for title, key, unit in worst]
    rows: list[list[Any]] = [charts[:2], charts[2:]]
    grid = gridplot(rows, sizing_mode="stretch_width", toolbar_location=None)
    return [_trend(tasks), grid]


def _trend(tasks: Sequence[TaskHistory]) -> Model:
    from bokeh.models import ColumnDataSource  # noqa: PLC0415 - optional extra

    source = ColumnDataSource(
        {
            "xs": [[at * 1000 for at in task.started] for task in tasks],
            "ys": [[_num(seconds) for seconds in task.durations] for task in tasks],
            "task": [f"{task.task}: {task.title}" for task in tasks],
        }
    )
    chart = _figure("Duration of each task across runs (seconds)", x_axis_type="datetime")
    chart.multi_line("xs", "ys", source=source, line_alpha=0.5, line_width=1.5)
    _hover(chart, [("task", "@task")])
    return chart


def _ranking(
    tasks: Sequence[TaskHistory], title: str, key: Callable[[TaskHistory], float], unit: str
) -> Figure:
    from bokeh.models import ColumnDataSource  # noqa: PLC0415 - optional extra

    shown = [task for task in tasks if unit == "success rate" or key(task) != 0]
    ranked = sorted(shown, key=lambda task: (key(task), id_key(task.task)))[:TOP]
    values = [abs(key(task)) for task in ranked]
    names = [task.task for task in ranked]
    source = ColumnDataSource(
        {
            "task": names,
            "value": [round(value, 4) for value in values],
            "title": [task.title for task in ranked],
            "runs": [len(task.outcomes) for task in ranked],
        }
    )
    chart = _figure(title, y_range=list(reversed(names)), height=max(160, 40 + 16 * len(names)))
    chart.hbar(y="task", right="value", height=0.7, source=source, color="#1f77b4")
    _hover(chart, [("task", "@task: @title"), (unit, "@value"), ("runs", "@runs")])
    return chart
