"""Value rules shared by the config and tasks.json, and the one parser of per-task options."""

from __future__ import annotations

import difflib
import json
import math
import re
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ptx.core.model import Command, TaskOptions, frozen_map

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping

    Parser = Callable[[Any], Any]  # returns the checked value or raises BadValueError
    Problem = tuple[str, str]  # (key path below the value, message)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")
_NO_OPTIONS = TaskOptions()
_DECIMAL = r"(?:[0-9]{1,30}(?:\.[0-9]{0,30})?|\.[0-9]{1,30})"
_BYTE_UNITS = {"": 1, "k": 1000} | {
    unit: base**power
    for power, letter in enumerate("KMGTPE", start=1)
    for unit, base in ((letter, 1000), (letter + "i", 1024))
}
_QUANTITY = re.compile(rf"({_DECIMAL})({'|'.join(sorted(_BYTE_UNITS, key=len, reverse=True))})")
_CORES = re.compile(rf"({_DECIMAL})(m?)")  # "500m" is half a core


class BadValueError(Exception):
    """A value broke its rule; callers turn it into problems and never let it escape ptx."""

    def __init__(self, requirement: str, value: object) -> None:
        super().__init__(requirement)
        self.requirement = requirement
        self.problems: list[Problem] = [("", f"{requirement}, got {show(value)}")]


# --- naming values and keys ------------------------------------------------------------------


def show(value: object) -> str:
    """A value for a one-line message: short, and safe for anything YAML or JSON can hold."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int) and value.bit_length() > 64:
        return "a very large integer"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 60 else text[:56] + '..."'
    if isinstance(value, list | dict):
        return "a list" if isinstance(value, list) else "a mapping"
    return f"a value of type {type(value).__name__}"


def key_text(key: object) -> str:
    """A key as one step of a key path: quoted when it is not a plain word or number."""
    text = key if isinstance(key, str) else show(key)
    return text if _PLAIN_KEY.fullmatch(text) else json.dumps(text, ensure_ascii=False)


def join(path: str, sub: str) -> str:
    if not path or not sub:
        return path or sub
    return path + sub if sub.startswith("[") else f"{path}.{sub}"


def unknown_key(key: object, allowed: Collection[str]) -> str:
    """The message for a key that is not allowed: the likely one meant, else all allowed ones."""
    close = difflib.get_close_matches(str(key), list(allowed), n=1)
    if close:
        return f"unknown key (did you mean {close[0]!r}?)"
    return "unknown key (allowed: " + ", ".join(sorted(allowed)) + ")"


# --- rules -----------------------------------------------------------------------------------


def real(value: object) -> float:
    """`value` as a float when it is a finite number (never a bool), else NaN: NaN fails tests."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    try:
        number = float(value)
    except OverflowError:
        return math.nan
    return number if math.isfinite(number) else math.nan


def whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def rule(requirement: str, test: Callable[[Any], object], convert: Parser | None = None) -> Parser:
    def parse(value: object) -> object:
        if test(value):
            return convert(value) if convert else value
        raise BadValueError(requirement, value)

    return parse


def as_is(value: object) -> object:
    return value


def or_null(parse: Parser) -> Parser:
    return lambda value: None if value is None else parse(value)


def attempt(parse: Parser, value: object, at: str) -> tuple[Any, list[Problem]]:
    """`parse(value)` and no problems, or None and the problems, placed under `at`."""
    try:
        return parse(value), []
    except BadValueError as exc:
        return None, [(join(at, sub), message) for sub, message in exc.problems]


def raise_any(problems: list[Problem]) -> None:
    if problems:
        error = BadValueError("", None)
        error.problems = problems
        raise error


def mapping_of(check_key: Parser, check_value: Parser) -> Parser:
    """A rule for a mapping that reports every bad entry, each at its own key."""

    def parse(value: object) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise BadValueError("must be a mapping", value)
        keys = [attempt(check_key, key, key_text(key)) for key in value]
        items = [attempt(check_value, item, key_text(key)) for key, item in value.items()]
        raise_any([problem for _, problems in keys + items for problem in problems])
        return frozen_map({key: item for (key, _), (item, _) in zip(keys, items, strict=True)})

    return parse


positive_int = rule("must be a positive integer", lambda v: whole(v) and v >= 1)
count = rule("must be an integer >= 0", lambda v: whole(v) and v >= 0)
seconds = rule("must be a number > 0", lambda v: real(v) > 0, real)
non_negative = rule("must be a number >= 0", lambda v: real(v) >= 0, real)
flag = rule("must be true or false", lambda v: isinstance(v, bool))
text = rule(
    "must be a non-empty string", lambda v: isinstance(v, str) and v.strip() and "\0" not in v
)
resources = mapping_of(
    rule(
        f"resource names must match {_NAME.pattern}",
        lambda v: isinstance(v, str) and _NAME.fullmatch(v),
    ),
    positive_int,
)


def cores(value: object) -> float:
    """A number of CPU cores: a number > 0, or a Kubernetes-style quantity such as "500m"."""
    number = real(value)
    match = _CORES.fullmatch(value.strip()) if isinstance(value, str) else None
    if match:
        number = float(match[1]) / (1000 if match[2] else 1)
    if 0 < number < math.inf:
        return number
    raise BadValueError('must be a number of cores > 0 such as 0.5, "0.5" or "500m"', value)


def byte_size(value: object) -> int:
    """A byte count: a positive integer, or a quantity such as "512Mi" (1024s) or "2G" (1000s)."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _QUANTITY.fullmatch(value.strip()) if isinstance(value, str) else None
    amount = math.ceil(Decimal(match[1]) * _BYTE_UNITS[match[2]]) if match else 0
    if amount > 0:
        return amount
    raise BadValueError('must be a byte count > 0 or a quantity such as "512Mi" or "2G"', value)


def command(value: object) -> Command:
    """A shell string, or an argv whose program is named; never a NUL byte, which exec refuses."""
    if isinstance(value, str) and value.strip() and "\0" not in value:
        return value
    if isinstance(value, list) and value and isinstance(value[0], str) and value[0].strip():
        argv = tuple(arg for arg in value if isinstance(arg, str) and "\0" not in arg)
        if len(argv) == len(value):
            return argv
    raise BadValueError("must be a command string or a non-empty list of strings", value)


_env = mapping_of(
    rule(
        "variable names must be strings without '='",
        lambda v: isinstance(v, str) and v and "=" not in v and "\0" not in v,
    ),
    # booleans are refused: YAML reads `yes` and `on` as true, and "true" is rarely what was meant
    rule(
        "must be a string or a number",
        lambda v: real(v) == real(v) or (isinstance(v, str) and "\0" not in v),
        str,
    ),
)
RESULT_FORMATS = ("claude-json",)
result_format = rule("must be one of " + ", ".join(RESULT_FORMATS), lambda v: v in RESULT_FORMATS)
OPTION_RULES: Mapping[str, Parser] = MappingProxyType(
    {
        "command": or_null(command),
        "timeout_seconds": or_null(seconds),
        "retries": or_null(count),
        "resources": or_null(resources),
        "cwd": or_null(text),
        "env": or_null(_env),
        "estimate_seconds": or_null(non_negative),
        "memory_limit": or_null(byte_size),
        "result": or_null(result_format),
        "keep_daemons": or_null(flag),
    }
)


# --- mappings of settings --------------------------------------------------------------------


def parse_mapping(
    raw: object, path: str, parsers: Mapping[str, Parser]
) -> tuple[dict[str, Any], list[str]]:
    """The entries of mapping `raw` that pass their parser, and one "key.path: message" per
    problem (unknown keys included); null reads as an empty mapping."""
    if raw is None:
        return {}, []
    if not isinstance(raw, dict):
        return {}, [_problem(path, f"must be a mapping, got {show(raw)}")]
    values: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in raw.items():
        where = join(path, key_text(key))
        if key not in parsers:
            problems.append(_problem(where, unknown_key(key, parsers)))
            continue
        checked, found = attempt(parsers[key], value, where)
        if found:
            problems += [_problem(at, message) for at, message in found]
        else:
            values[key] = checked
    return values, problems


def parse_options(raw: object, path: str) -> tuple[TaskOptions, list[str]]:
    """Per-task options from `raw` (metadata.ptx or the config's tasks.<id>) under key path
    `path`; a bad value is left out and reported, the good ones still count."""
    values, problems = parse_mapping(raw, path, OPTION_RULES)
    present = {key: value for key, value in values.items() if value is not None}
    return (TaskOptions(**present) if present else _NO_OPTIONS), problems


def _problem(path: str, message: str) -> str:
    return f"{path}: {message}" if path else message
