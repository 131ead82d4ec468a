"""What an attempt reports back: the JSON file at PTX_RESULT, or Claude Code's JSON result in
the task's output (`result: claude-json`), read into one frozen record."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any

from ptx.core.model import Reported

MAX_BYTES = 1 << 20  # of a result file, or of the end of a log searched for Claude's result
SUMMARY_CHARS = 2000  # of Claude's final message kept as the summary
# Claude Code bills the prompt cache's reads and writes as input tokens too.
_CLAUDE_INPUT = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


NOTHING = Reported()


def read(result_path: str, log_path: str, result_format: str | None) -> Reported:
    """What the attempt reported: its PTX_RESULT file over (field by field) what its output
    said, when `result_format` is "claude-json". Never raises: a malformed report is a
    warning, and the run goes on."""
    claude = _claude_result(log_path) if result_format == "claude-json" else NOTHING
    own = _result_file(result_path)
    if own.empty or claude.empty:
        return claude if own.empty else own
    if own.data is None:  # a malformed file: what the output said still counts
        return _warned(claude, own.warning)
    if claude.data is None:
        return _warned(own, claude.warning)
    return checked({**claude.data, **own.data})


def _warned(reported: Reported, warning: str | None) -> Reported:
    both = "; ".join(text for text in (reported.warning, warning) if text)
    return dataclasses.replace(reported, warning=both or None)


def _result_file(path: str) -> Reported:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:  # most attempts report nothing
        return NOTHING
    except OSError as error:
        return Reported(warning=f"cannot read its PTX_RESULT file: {error.strerror}")
    try:
        data = os.read(fd, MAX_BYTES + 1)
    except OSError as error:
        return Reported(warning=f"cannot read its PTX_RESULT file: {error.strerror}")
    finally:
        os.close(fd)
    return _document(data)


def _document(data: bytes) -> Reported:
    if len(data) > MAX_BYTES:
        return Reported(warning=f"its PTX_RESULT file is larger than {MAX_BYTES} bytes: ignored")
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        return Reported(warning=f"its PTX_RESULT file is not JSON ({error}): ignored")
    if not isinstance(document, dict):
        return Reported(warning="its PTX_RESULT file is not a JSON object: ignored")
    return checked(document)


def checked(document: dict[str, Any]) -> Reported:
    """The known fields of a PTX_RESULT document; a field of the wrong type is left out and
    named in the warning, the others still count."""
    problems: list[str] = []
    cost = _number(document.get("cost_usd"), "cost_usd", problems)
    tokens = document.get("tokens")
    if tokens is not None and not isinstance(tokens, dict):
        problems.append("tokens must be an object")
        tokens = None
    tokens = tokens or {}
    session = _text(document.get("session_id"), "session_id", problems)
    summary = _text(document.get("summary"), "summary", problems)
    return Reported(
        cost_usd=cost,
        input_tokens=_count(tokens.get("input"), "tokens.input", problems),
        output_tokens=_count(tokens.get("output"), "tokens.output", problems),
        session_id=session,
        summary=summary,
        data=document,
        warning="reported " + ", ".join(problems) + ": left out" if problems else None,
    )


def _number(value: object, name: str, problems: list[str]) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        problems.append(f"{name} must be a number")
        return None
    if value < 0:
        problems.append(f"{name} must not be negative")
        return None
    return float(value)


def _count(value: object, name: str, problems: list[str]) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        problems.append(f"{name} must be a whole number >= 0")
        return None
    return value


def _text(value: object, name: str, problems: list[str]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        problems.append(f"{name} must be a string")
        return None
    return value


def _claude_result(log_path: str) -> Reported:
    """Claude Code's `--output-format json` result: the last line of the output that is a JSON
    object (stderr may follow it in the log), or the whole end of the output as one object."""
    try:
        with open(log_path, "rb") as handle:  # noqa: PTH123 - per attempt: kept lean
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - MAX_BYTES))
            tail = handle.read().decode("utf-8", "replace")
    except OSError as error:
        return Reported(warning=f"cannot read its output for claude-json: {error.strerror}")
    for candidate in (*reversed(tail.splitlines()), tail):
        text = candidate.strip()
        if not text.startswith("{"):
            continue
        try:
            document = json.loads(text)
        except ValueError:
            continue
        if isinstance(document, dict):
            return checked(from_claude(document))
    return Reported(warning="its output holds no claude-json result (a JSON object)")


def from_claude(document: dict[str, Any]) -> dict[str, Any]:
    """A Claude Code result as a PTX_RESULT document; Claude's own fields are kept beside."""
    usage = document.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    counts = [usage.get(name) for name in _CLAUDE_INPUT]
    whole = [value for value in counts if isinstance(value, int) and not isinstance(value, bool)]
    tokens = {"input": sum(whole) if whole else None, "output": usage.get("output_tokens")}
    summary = document.get("result")
    return {
        **document,
        "cost_usd": document.get("total_cost_usd"),
        "tokens": {key: value for key, value in tokens.items() if value is not None},
        "summary": summary[:SUMMARY_CHARS] if isinstance(summary, str) else None,
    }
