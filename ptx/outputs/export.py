"""Machine formats of findings and plans: JSON, GitHub annotations, Mermaid and Graphviz dot."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ptx.core.model import Severity

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ptx.core.model import Finding
    from ptx.graph.plan import Plan


def finding_dict(finding: Finding) -> dict[str, Any]:
    return {
        "code": finding.code.value,
        "severity": finding.severity.value,
        "tag": finding.tag,
        "task": finding.task,
        "message": finding.message,
    }


def findings_json(file: str, tags: Sequence[str], findings: Sequence[Finding]) -> str:
    errors = sum(1 for finding in findings if finding.severity is Severity.ERROR)
    document = {
        "file": file,
        "tags": list(tags),
        "errors": errors,
        "warnings": len(findings) - errors,
        "findings": [finding_dict(finding) for finding in findings],
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def findings_github(file: str, findings: Sequence[Finding]) -> str:
    """GitHub Actions workflow commands, one annotation per finding."""
    lines = []
    for finding in findings:
        level = "error" if finding.severity is Severity.ERROR else "warning"
        title = f"{finding.code.value} {_where(finding)}".strip()
        properties = f"file={_escape_property(file)},title={_escape_property(title)}"
        lines.append(f"::{level} {properties}::{_escape_data(finding.message)}")
    return "\n".join(lines)


def finding_line(file: str, finding: Finding) -> str:
    """`path [tag] task 7: error PTX102: message`, the one-line text form."""
    where = f" {_where(finding)}" if _where(finding) else ""
    return f"{file}{where}: {finding.severity.value} {finding.code.value}: {finding.message}"


def _where(finding: Finding) -> str:
    parts = []
    if finding.tag is not None:
        parts.append(f"[{finding.tag}]")
    if finding.task is not None:  # the message never names it again
        kind = "subtask" if "." in finding.task else "task"
        parts.append(f"{kind} {finding.task}")
    return " ".join(parts)


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def plan_dict(plan: Plan) -> dict[str, Any]:
    predicted = None
    if plan.predicted is not None:
        predicted = {
            "makespan_seconds": round(plan.predicted.makespan_seconds, 3),
            "work_seconds": round(plan.predicted.work_seconds, 3),
            "speedup": round(plan.predicted.speedup, 3),
            "best_jobs": plan.predicted.best_jobs,
        }
    seconds = plan.critical_path.seconds
    return {
        "tag": plan.tag,
        "jobs": plan.jobs,
        "jobs_reason": plan.jobs_reason,
        "groups": [list(group) for group in plan.groups],
        "critical_path": {
            "tasks": list(plan.critical_path.tasks),
            "seconds": None if seconds is None else round(seconds, 3),
            "steps": plan.critical_path.steps,
        },
        "predicted": predicted,
        "blocked": [{"id": unit, "reason": reason} for unit, reason in plan.blocked],
    }


def plan_json(plan: Plan) -> str:
    return json.dumps(plan_dict(plan), indent=2, ensure_ascii=False)


def plan_mermaid(plan: Plan) -> str:
    """A flowchart with one subgraph per parallel group; renders on GitHub."""
    critical = set(plan.critical_path.tasks)
    lines = ["flowchart LR"]
    for number, group in enumerate(plan.groups, start=1):
        lines.append(f'  subgraph group{number} ["group {number}"]')
        lines.extend(f'    {_node(unit)}["{_mermaid_label(plan, unit)}"]' for unit in group)
        lines.append("  end")
    lines.extend(
        f"  {_node(dep)} --> {_node(unit)}"
        for unit in _ordered(plan)
        for dep in plan.work.deps.get(unit, ())
    )
    if critical:
        lines.append("  classDef critical stroke:#d33,stroke-width:3px")
        lines.append(f"  class {','.join(_node(unit) for unit in sorted(critical))} critical")
    return "\n".join(lines)


def plan_dot(plan: Plan) -> str:
    """Graphviz: edges point from a dependency to its dependent; each group shares a rank."""
    critical = set(plan.critical_path.tasks)
    lines = ["digraph ptx {", "  rankdir=LR;", "  node [shape=box];"]
    for group in plan.groups:
        members = " ".join(_dot_id(unit) for unit in group)
        lines.append(f"  {{ rank=same; {members} }}")
    for unit in _ordered(plan):
        style = ", color=red, penwidth=2" if unit in critical else ""
        lines.append(f"  {_dot_id(unit)} [label={_dot_id(_label(plan, unit))}{style}];")
    lines.extend(
        f"  {_dot_id(dep)} -> {_dot_id(unit)};"
        for unit in _ordered(plan)
        for dep in plan.work.deps.get(unit, ())
    )
    lines.append("}")
    return "\n".join(lines)


def _ordered(plan: Plan) -> list[str]:
    return [unit for group in plan.groups for unit in group]


def _label(plan: Plan, unit: str) -> str:
    return f"{unit}: {plan.work.nodes[unit].title}"


def _node(unit: str) -> str:
    return "t" + unit.replace(".", "_")


def _mermaid_label(plan: Plan, unit: str) -> str:
    # Mermaid has no backslash escapes; entity codes keep quotes and brackets literal.
    text = _label(plan, unit)
    for raw, code in (("&", "#amp;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(raw, code)
    return text


def _dot_id(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
