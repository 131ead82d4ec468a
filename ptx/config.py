"""The parallel-execution YAML file and PTX_* variables, checked into a frozen Config."""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import yaml

from ptx.errors import ConfigError
from ptx.model import DEFAULT_SATISFIED, KNOWN_STATUSES, Command, TaskId, TaskOptions, frozen_map

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping

    _Parser = Callable[[Any], Any]  # returns the checked value or raises _Invalid
    _Problem = tuple[str, str]  # (key path below the value, message)

FailurePolicy = Literal["continue", "fail-fast"]
FAILURE_POLICIES: tuple[FailurePolicy, ...] = ("continue", "fail-fast")
DEFAULT_PATH = "config/parallel-execution.yaml"
MAX_FILE_BYTES = 1_000_000
MAX_NODES = 100_000  # counted with aliases expanded: this is what stops a "billion laughs"
MAX_DEPTH = 32

_SECTION = "parallel_execution"
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")
_TASK_ID = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_DECIMAL = r"(?:[0-9]{1,30}(?:\.[0-9]{0,30})?|\.[0-9]{1,30})"
_CORES = re.compile(rf"({_DECIMAL})(m?)")
_BYTE_UNITS = {"": 1, "k": 1000} | {
    unit: base**power
    for power, letter in enumerate("KMGTPE", start=1)
    for unit, base in ((letter, 1000), (letter + "i", 1024))
}
_QUANTITY = re.compile(rf"({_DECIMAL})({'|'.join(sorted(_BYTE_UNITS, key=len, reverse=True))})")
_ENV_BOOLEANS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


@dataclass(frozen=True, slots=True, kw_only=True)
class SafetyThresholds:
    max_failure_rate: float = 0.1
    max_resource_utilization: float = 0.8
    timeout_multiplier: float = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitBreaker:
    failure_threshold: int = 5
    timeout_seconds: float = 60.0
    half_open_timeout_seconds: float = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceLimits:
    cpu_per_task: float = 0.5  # cores
    memory_per_task: int = 512 * 2**20  # bytes
    max_concurrent_tasks: int = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class Monitoring:
    metrics_enabled: bool = True
    detailed_logging: bool = True
    performance_tracking: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """Every setting of `parallel_execution:`; `source` is the file it came from, if any."""

    enabled: bool = True
    max_concurrency: int = 10
    safety_thresholds: SafetyThresholds = field(default_factory=SafetyThresholds)
    circuit_breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    resource_limits: ResourceLimits = field(default_factory=ResourceLimits)
    monitoring: Monitoring = field(default_factory=Monitoring)
    command: Command | None = None
    default_timeout_seconds: float | None = None
    kill_grace_seconds: float = 5.0
    retries: int = 0
    retry_backoff_seconds: float = 1.0
    failure_policy: FailurePolicy = "continue"
    satisfied_statuses: frozenset[str] = DEFAULT_SATISFIED
    update_status: bool = False
    resources: Mapping[str, int] = field(default_factory=lambda: frozen_map(None))
    tasks: Mapping[TaskId, TaskOptions] = field(default_factory=lambda: frozen_map(None))
    source: Path | None = field(default=None, compare=False)


def default_config() -> Config:
    return Config()


def load_config(path: Path | None, *, root: Path, environ: Mapping[str, str]) -> Config:
    """The config that applies (--config, PTX_CONFIG, the project's file or none) under PTX_*."""
    source = _locate(path, root=root, environ=environ)
    problems: list[str] = []
    config = Config()
    if source is not None:
        reader = _Reader(_display(source, root))
        config = dataclasses.replace(_build(reader, _parse(source, reader.where)), source=source)
        problems += reader.problems
    config = _apply_env(config, environ, problems)
    if problems:
        raise ConfigError(problems)
    return config


def _locate(path: Path | None, *, root: Path, environ: Mapping[str, str]) -> Path | None:
    if path is not None:
        if not path.exists():
            raise ConfigError(f"{path}: config file not found")
        return path
    if environ.get("PTX_CONFIG"):
        named = Path(environ["PTX_CONFIG"])
        if not named.exists():
            raise ConfigError(f"PTX_CONFIG: config file not found: {named}")
        return named
    candidate = root / DEFAULT_PATH
    return candidate if candidate.exists() else None


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


# --- reading YAML ----------------------------------------------------------------------------


def _parse(path: Path, where: str) -> object:
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
        text = data.decode("utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where}: not UTF-8 text (at byte offset {exc.start})") from exc
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{where}: larger than {MAX_FILE_BYTES} bytes, too big for a config")
    try:
        _check_size(text, where)
        loader = _LOADER(text)
        try:
            return cast("object", loader.get_single_data())
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        what = ", ".join(part for part in (exc.context, exc.problem) if part)
        raise ConfigError(f"{where}{at}: invalid YAML: {what}") from exc
    except (yaml.YAMLError, ValueError, LookupError, TypeError, AttributeError) as exc:
        # PyYAML's constructors raise these on tagged nonsense: 2024-13-45, !!bool maybe
        raise ConfigError(f"{where}: invalid YAML: {exc}") from exc


def _check_size(text: str, where: str) -> None:
    """Refuse a document whose aliases expand, or whose nesting runs, far beyond any config."""
    sizes: dict[str, int] = {}
    frames: list[list[Any]] = [[None, 0]]  # [anchor, values so far] per open collection
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.CollectionStartEvent):
            frames.append([event.anchor, 1])
            if len(frames) > MAX_DEPTH:
                raise ConfigError(f"{where}: nested deeper than {MAX_DEPTH} levels")
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            anchor, values = frames.pop()
        elif isinstance(event, yaml.AliasEvent):
            anchor, values = None, sizes.get(event.anchor or "", 1)
        elif isinstance(event, yaml.ScalarEvent):
            anchor, values = event.anchor, 1
        else:
            continue
        if anchor:
            sizes[anchor] = values
        frames[-1][1] += values
        if frames[-1][1] > MAX_NODES:
            raise ConfigError(f"{where}: more than {MAX_NODES} values once aliases are expanded")


# --- rules for values ------------------------------------------------------------------------


class _Invalid(Exception):  # noqa: N818 - an internal signal that never leaves this module
    def __init__(self, requirement: str, value: object) -> None:
        super().__init__(requirement)
        self.requirement = requirement
        self.problems: list[_Problem] = [("", f"{requirement}, got {_show(value)}")]


def _show(value: object) -> str:
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


def _key(key: object) -> str:
    text = key if isinstance(key, str) else _show(key)
    return text if _PLAIN_KEY.fullmatch(text) else json.dumps(text, ensure_ascii=False)


def _join(path: str, sub: str) -> str:
    if not path or not sub:
        return path or sub
    return path + sub if sub.startswith("[") else f"{path}.{sub}"


def _real(value: object) -> float:
    """`value` as a float when it is a finite YAML number, else NaN (which fails every test)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    try:
        number = float(value)
    except OverflowError:
        return math.nan
    return number if math.isfinite(number) else math.nan


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _rule(
    requirement: str, test: Callable[[Any], object], convert: _Parser | None = None
) -> _Parser:
    def parse(value: object) -> object:
        if test(value):
            return convert(value) if convert else value
        raise _Invalid(requirement, value)

    return parse


def _or_null(parse: _Parser) -> _Parser:
    return lambda value: None if value is None else parse(value)


_boolean = _rule("must be true or false", lambda v: isinstance(v, bool))
_positive_int = _rule("must be a positive integer", lambda v: _whole(v) and v >= 1)
_count = _rule("must be an integer >= 0", lambda v: _whole(v) and v >= 0)
_rate = _rule("must be a number from 0 to 1", lambda v: 0 <= _real(v) <= 1, _real)
_seconds = _rule("must be a number > 0", lambda v: _real(v) > 0, _real)
_non_negative = _rule("must be a number >= 0", lambda v: _real(v) >= 0, _real)
_text = _rule(
    "must be a non-empty string", lambda v: isinstance(v, str) and v.strip() and "\0" not in v
)
_failure_policy = _rule(
    "must be one of " + ", ".join(FAILURE_POLICIES), FAILURE_POLICIES.__contains__
)
_status = _rule(
    "must be a known status (" + ", ".join(sorted(KNOWN_STATUSES)) + ")",
    lambda v: isinstance(v, str) and v.lower() in KNOWN_STATUSES,
    str.lower,
)
_resource_name = _rule(
    f"resource names must match {_NAME.pattern}",
    lambda v: isinstance(v, str) and _NAME.fullmatch(v),
)
_env_name = _rule(
    "variable names must be strings without '='",
    lambda v: isinstance(v, str) and v and "=" not in v and "\0" not in v,
)
_env_value = _rule(
    "must be a string or a number",
    lambda v: _real(v) == _real(v) or (isinstance(v, str) and "\0" not in v),
    str,
)


def _cores(value: object) -> float:
    number = _real(value)
    match = _CORES.fullmatch(value.strip()) if isinstance(value, str) else None
    if match:
        number = float(match[1]) / (1000 if match[2] else 1)
    if 0 < number < math.inf:
        return number
    raise _Invalid('must be a number of cores > 0 such as 0.5, "0.5" or "500m"', value)


def _bytes(value: object) -> int:
    if _whole(value) and cast("int", value) > 0:
        return cast("int", value)
    match = _QUANTITY.fullmatch(value.strip()) if isinstance(value, str) else None
    amount = math.ceil(Decimal(match[1]) * _BYTE_UNITS[match[2]]) if match else 0
    if amount > 0:
        return amount
    raise _Invalid('must be a byte count > 0 or a quantity such as "512Mi" or "2G"', value)


def _command(value: object) -> Command:
    if isinstance(value, str) and value.strip() and "\0" not in value:
        return value
    if isinstance(value, list) and value and isinstance(value[0], str) and value[0].strip():
        argv = tuple(arg for arg in value if isinstance(arg, str) and "\0" not in arg)
        if len(argv) == len(value):
            return argv
    raise _Invalid("must be a command string or a non-empty list of strings", value)


def _attempt(parse: _Parser, value: object, at: str) -> tuple[Any, list[_Problem]]:
    """`parse(value)` and no problems, or None and the problems, placed under `at`."""
    try:
        return parse(value), []
    except _Invalid as exc:
        return None, [(_join(at, sub), message) for sub, message in exc.problems]


def _raise_any(problems: list[_Problem]) -> None:
    if problems:
        error = _Invalid("", None)
        error.problems = problems
        raise error


def _statuses(value: object) -> frozenset[str]:
    if not isinstance(value, list):
        raise _Invalid("must be a list of statuses", value)
    checked = [_attempt(_status, item, f"[{index}]") for index, item in enumerate(value)]
    _raise_any([problem for _, problems in checked for problem in problems])
    return frozenset(status for status, _ in checked)


def _mapping_of(check_key: _Parser, check_value: _Parser) -> _Parser:
    """A rule for a mapping that reports every bad entry, each at its own key."""

    def parse(value: object) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise _Invalid("must be a mapping", value)
        keys = [_attempt(check_key, key, _key(key)) for key in value]
        items = [_attempt(check_value, item, _key(key)) for key, item in value.items()]
        _raise_any([problem for _, problems in keys + items for problem in problems])
        return frozen_map({key: item for (key, _), (item, _) in zip(keys, items, strict=True)})

    return parse


_resources = _mapping_of(_resource_name, _positive_int)
_SETTINGS: Mapping[str, _Parser] = {
    "enabled": _boolean,
    "max_concurrency": _positive_int,
    "command": _or_null(_command),
    "default_timeout_seconds": _or_null(_seconds),
    "kill_grace_seconds": _seconds,
    "retries": _count,
    "retry_backoff_seconds": _non_negative,
    "failure_policy": _failure_policy,
    "satisfied_statuses": _statuses,
    "update_status": _boolean,
    "resources": _resources,
}
_SECTIONS: Mapping[str, tuple[type, Mapping[str, _Parser]]] = {
    "safety_thresholds": (
        SafetyThresholds,
        {
            "max_failure_rate": _rate,
            "max_resource_utilization": _rate,
            "timeout_multiplier": _seconds,
        },
    ),
    "circuit_breaker": (
        CircuitBreaker,
        {
            "failure_threshold": _positive_int,
            "timeout_seconds": _seconds,
            "half_open_timeout_seconds": _seconds,
        },
    ),
    "resource_limits": (
        ResourceLimits,
        {"cpu_per_task": _cores, "memory_per_task": _bytes, "max_concurrent_tasks": _positive_int},
    ),
    "monitoring": (
        Monitoring,
        dict.fromkeys(("metrics_enabled", "detailed_logging", "performance_tracking"), _boolean),
    ),
}
_TASK_OPTIONS: Mapping[str, _Parser] = {
    "command": _or_null(_command),
    "timeout_seconds": _or_null(_seconds),
    "retries": _or_null(_count),
    "resources": _resources,
    "cwd": _or_null(_text),
    "env": _mapping_of(_env_name, _env_value),
    "estimate_seconds": _or_null(_non_negative),
}


# --- walking the document --------------------------------------------------------------------


class _Reader:
    """Walks one file's document, collecting every problem instead of stopping at the first."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.problems: list[str] = []

    def report(self, path: str, message: str) -> None:
        self.problems.append(
            f"{self.where}: {path}: {message}" if path else f"{self.where}: {message}"
        )

    def mapping(self, raw: object, path: str, allowed: Collection[str]) -> dict[str, Any]:
        """The entries of `raw` whose keys are allowed, reporting the others; null is empty."""
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.report(path, f"must be a mapping, got {_show(raw)}")
            return {}
        for key in raw:
            if key not in allowed:
                self.report(_join(path, _key(key)), _unknown_key(key, allowed))
        return {key: value for key, value in raw.items() if key in allowed}

    def values(self, raw: object, path: str, parsers: Mapping[str, _Parser]) -> dict[str, Any]:
        """The entries of mapping `raw`, each checked by its parser; bad ones reported, left out."""
        data = self.mapping(raw, path, parsers)
        checked = {key: _attempt(parsers[key], value, key) for key, value in data.items()}
        for _, problems in checked.values():
            for at, message in problems:
                self.report(_join(path, at), message)
        return {key: value for key, (value, problems) in checked.items() if not problems}


def _unknown_key(key: object, allowed: Collection[str]) -> str:
    close = difflib.get_close_matches(str(key), list(allowed), n=1)
    if close:
        return f"unknown key (did you mean {close[0]!r}?)"
    return "unknown key (allowed: " + ", ".join(sorted(allowed)) + ")"


def _build(reader: _Reader, document: object) -> Config:
    if document is not None and not isinstance(document, dict):
        reader.report("", f"must be a mapping with a {_SECTION!r} key, got {_show(document)}")
        return Config()
    section = reader.mapping(document, "", (_SECTION,)).get(_SECTION)
    data = reader.mapping(section, _SECTION, (*_SETTINGS, *_SECTIONS, "tasks"))
    values = reader.values({k: v for k, v in data.items() if k in _SETTINGS}, _SECTION, _SETTINGS)
    for name, (cls, parsers) in _SECTIONS.items():
        values[name] = cls(**reader.values(data.get(name), f"{_SECTION}.{name}", parsers))
    values["tasks"] = _task_overrides(reader, data.get("tasks"), f"{_SECTION}.tasks")
    return Config(**values)


def _task_overrides(reader: _Reader, raw: object, path: str) -> Mapping[TaskId, TaskOptions]:
    if raw is not None and not isinstance(raw, dict):
        reader.report(path, f"must be a mapping of task ids to options, got {_show(raw)}")
    tasks: dict[TaskId, TaskOptions] = {}
    for key, options in raw.items() if isinstance(raw, dict) else ():
        where, task_id = _join(path, _key(key)), _task_id(key)
        if task_id is None:
            reader.report(
                where, f'must be a task id such as 7 or "7.2" (quote subtask ids), got {_show(key)}'
            )
        elif task_id in tasks:
            reader.report(where, f"task {task_id} appears twice")
        else:
            tasks[task_id] = TaskOptions(**reader.values(options, where, _TASK_OPTIONS))
    return frozen_map(tasks)


def _task_id(key: object) -> TaskId | None:
    """`key` as a normalised id; floats are refused because YAML reads 7.10 as 7.1."""
    if _whole(key) and cast("int", key) >= 0:
        return str(key)
    if isinstance(key, str) and _TASK_ID.fullmatch(key.strip()):
        return ".".join(str(int(part)) for part in key.strip().split("."))
    return None


# --- environment -----------------------------------------------------------------------------


def _whole_or_text(text: str) -> object:
    return int(text) if re.fullmatch(r"[0-9]{1,18}", text) else text


def _real_or_text(text: str) -> object:
    try:
        return float(text)
    except ValueError:
        return text


_ENVIRONMENT: Mapping[str, tuple[str, _Parser]] = {
    "PTX_JOBS": ("max_concurrency", lambda text: _positive_int(_whole_or_text(text))),
    "PTX_TIMEOUT": ("default_timeout_seconds", lambda text: _seconds(_real_or_text(text))),
    "PTX_RETRIES": ("retries", lambda text: _count(_whole_or_text(text))),
    "PTX_FAILURE_POLICY": ("failure_policy", _failure_policy),
    "PTX_UPDATE_STATUS": (
        "update_status",
        _rule(
            "must be one of 1, 0, true, false, yes, no",
            lambda text: text.lower() in _ENV_BOOLEANS,
            lambda text: _ENV_BOOLEANS[text.lower()],
        ),
    ),
    "PTX_COMMAND": ("command", _text),
}


def _apply_env(config: Config, environ: Mapping[str, str], problems: list[str]) -> Config:
    """`config` with the PTX_* variables that are set (and not empty) laid over it."""
    changes: dict[str, Any] = {}
    for name, (setting, parse) in _ENVIRONMENT.items():
        text = environ.get(name, "").strip()
        try:
            changes.update({setting: parse(text)} if text else {})
        except _Invalid as exc:
            problems.append(f"{name}: {exc.requirement}, got {_show(text)}")
    return dataclasses.replace(config, **changes)
