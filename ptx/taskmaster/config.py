"""The parallel-execution YAML file and PTX_* variables, checked into a frozen Config."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from ptx.core.errors import ConfigError
from ptx.core.model import (
    DEFAULT_HELD,
    DEFAULT_SATISFIED,
    KNOWN_STATUSES,
    Command,
    TaskId,
    TaskOptions,
    frozen_map,
)
from ptx.taskmaster import isolation as isolation_keys
from ptx.taskmaster import options as rules
from ptx.taskmaster import yamlfile
from ptx.taskmaster.discovery import shown_path

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

FailurePolicy = Literal["continue", "fail-fast"]
FAILURE_POLICIES: tuple[FailurePolicy, ...] = ("continue", "fail-fast")
DEFAULT_PATH = "config/parallel-execution.yaml"

_SECTION = "parallel_execution"
_TASK_ID = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_ENV_BOOLEANS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


@dataclass(frozen=True, slots=True, kw_only=True)
class SafetyThresholds:
    max_failure_rate: float = 0.1  # 1.0: never fall back to sequential
    failure_rate_min_tasks: int = 10  # finished tasks before the failure rate is judged
    max_resource_utilization: float = 0.8  # of memory; 1.0: the memory guard holds nothing
    max_load_average: float | None = None  # opt-in, like make -l: hold starts at this load
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
class Config(isolation_keys.Settings):
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
    held_statuses: frozenset[str] = DEFAULT_HELD  # never scheduled; what waits on them neither
    update_status: bool = False
    dask_worker_wait_seconds: float = 30.0  # a Dask cluster without any worker, before giving up
    resources: Mapping[str, int] = field(default_factory=lambda: frozen_map(None))
    result: str | None = None  # "claude-json": every task's output holds its report
    max_cost_usd: float | None = None  # no task starts once the run's reported cost reaches it
    tasks: Mapping[TaskId, TaskOptions] = field(default_factory=lambda: frozen_map(None))
    source: Path | None = field(default=None, compare=False)


def default_config() -> Config:
    return Config()


def load_config(path: Path | None, *, root: Path, environ: Mapping[str, str]) -> Config:
    """The config that applies (--config, PTX_CONFIG, the project's file or none) under PTX_*."""
    return load_config_sources(path, root=root, environ=environ)[0]


def load_config_sources(
    path: Path | None, *, root: Path, environ: Mapping[str, str]
) -> tuple[Config, dict[str, str]]:
    """`load_config`, and the source (file or PTX_* variable) of each key path not a default:
    "retries", "circuit_breaker.timeout_seconds"; `resources` and `tasks` count as one key."""
    source = _locate(path, root=root, environ=environ)
    problems: list[str] = []
    config, sources = Config(), {}
    if source is not None:
        reader = _Reader(shown_path(source, root))
        document = yamlfile.parse(source, reader.where)
        config = dataclasses.replace(_build(reader, document), source=source)
        sources = dict.fromkeys(_keys_set(document), reader.where)
        problems += reader.problems
    config = _apply_env(config, environ, problems, sources)
    if problems:
        raise ConfigError(problems)
    return config, sources


def _keys_set(document: object) -> list[str]:
    section = document.get(_SECTION) if isinstance(document, dict) else None
    keys: list[str] = []
    for key, value in section.items() if isinstance(section, dict) else ():
        if key in _SECTIONS and isinstance(value, dict):
            keys += [f"{key}.{sub}" for sub in value]
        elif not (key in _SECTIONS and value is None):  # an empty section sets nothing
            keys.append(str(key))
    return keys


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


# --- rules for values of the config alone --------------------------------------------------


_boolean = rules.flag
_rate = rules.rule("must be a number from 0 to 1", lambda v: 0 <= rules.real(v) <= 1, rules.real)
_failure_policy = rules.rule(
    "must be one of " + ", ".join(FAILURE_POLICIES), FAILURE_POLICIES.__contains__
)
_status = rules.rule(
    "must be a known status (" + ", ".join(sorted(KNOWN_STATUSES)) + ")",
    lambda v: isinstance(v, str) and v.lower() in KNOWN_STATUSES,
    str.lower,
)


def _statuses(value: object) -> frozenset[str]:
    if not isinstance(value, list):
        raise rules.BadValueError("must be a list of statuses", value)
    checked = [rules.attempt(_status, item, f"[{index}]") for index, item in enumerate(value)]
    rules.raise_any([problem for _, problems in checked for problem in problems])
    return frozenset(status for status, _ in checked)


_SETTINGS: Mapping[str, rules.Parser] = {
    "enabled": _boolean,
    "max_concurrency": rules.positive_int,
    "command": rules.or_null(rules.command),
    "default_timeout_seconds": rules.or_null(rules.seconds),
    "kill_grace_seconds": rules.seconds,
    "retries": rules.count,
    "retry_backoff_seconds": rules.non_negative,
    "failure_policy": _failure_policy,
    "satisfied_statuses": _statuses,
    "held_statuses": _statuses,
    "update_status": _boolean,
    "dask_worker_wait_seconds": rules.seconds,
    "resources": rules.resources,
    "isolation": isolation_keys.MODE,
    "result": rules.or_null(rules.result_format),
    "max_cost_usd": rules.or_null(rules.non_negative),
}
_SECTIONS: Mapping[str, tuple[type, Mapping[str, rules.Parser]]] = {
    "safety_thresholds": (
        SafetyThresholds,
        {
            "max_failure_rate": _rate,
            "failure_rate_min_tasks": rules.positive_int,
            "max_resource_utilization": _rate,
            "max_load_average": rules.or_null(rules.non_negative),
            "timeout_multiplier": rules.seconds,
        },
    ),
    "circuit_breaker": (
        CircuitBreaker,
        {
            "failure_threshold": rules.positive_int,
            "timeout_seconds": rules.seconds,
            "half_open_timeout_seconds": rules.seconds,
        },
    ),
    "resource_limits": (
        ResourceLimits,
        {
            "cpu_per_task": rules.cores,
            "memory_per_task": rules.byte_size,
            "max_concurrent_tasks": rules.positive_int,
        },
    ),
    "monitoring": (
        Monitoring,
        dict.fromkeys(("metrics_enabled", "detailed_logging", "performance_tracking"), _boolean),
    ),
    **isolation_keys.SECTIONS,
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

    def add(self, problems: list[str]) -> None:
        self.problems += [f"{self.where}: {problem}" for problem in problems]

    def values(self, raw: object, path: str, parsers: Mapping[str, rules.Parser]) -> dict[str, Any]:
        """The entries of mapping `raw`, each checked by its parser; bad ones reported, left out."""
        values, problems = rules.parse_mapping(raw, path, parsers)
        self.add(problems)
        return values

    def mapping(self, raw: object, path: str, allowed: Collection[str]) -> dict[str, Any]:
        """The entries of `raw` whose keys are allowed, reporting the others; null is empty."""
        return self.values(raw, path, dict.fromkeys(allowed, rules.as_is))


def _build(reader: _Reader, document: object) -> Config:
    if document is not None and not isinstance(document, dict):
        reader.report("", f"must be a mapping with a {_SECTION!r} key, got {rules.show(document)}")
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
        reader.report(path, f"must be a mapping of task ids to options, got {rules.show(raw)}")
    tasks: dict[TaskId, TaskOptions] = {}
    for key, options in raw.items() if isinstance(raw, dict) else ():
        where, task_id = rules.join(path, rules.key_text(key)), _task_id(key)
        if task_id is None:
            reader.report(
                where,
                f'must be a task id such as 7 or "7.2" (quote subtask ids), got {rules.show(key)}',
            )
        elif task_id in tasks:
            reader.report(where, f"task {task_id} appears twice")
        else:
            tasks[task_id], problems = rules.parse_options(options, where)
            reader.add(problems)
    return frozen_map(tasks)


def _task_id(key: object) -> TaskId | None:
    """`key` as a normalised id; floats are refused because YAML reads 7.10 as 7.1."""
    if rules.whole(key) and cast("int", key) >= 0:
        return str(key)
    if isinstance(key, str) and _TASK_ID.fullmatch(key.strip()):
        return ".".join(str(int(part)) for part in key.strip().split("."))
    return None


# --- environment: PTX_* variables over the file ---------------------------------------------
def _whole_or_text(text: str) -> object:
    return int(text) if re.fullmatch(r"[0-9]{1,18}", text) else text


def _real_or_text(text: str) -> object:
    try:
        return float(text)
    except ValueError:
        return text


_ENVIRONMENT: Mapping[str, tuple[str, rules.Parser]] = {
    "PTX_JOBS": ("max_concurrency", lambda text: rules.positive_int(_whole_or_text(text))),
    "PTX_TIMEOUT": ("default_timeout_seconds", lambda text: rules.seconds(_real_or_text(text))),
    "PTX_RETRIES": ("retries", lambda text: rules.count(_whole_or_text(text))),
    "PTX_FAILURE_POLICY": ("failure_policy", _failure_policy),
    "PTX_UPDATE_STATUS": (
        "update_status",
        rules.rule(
            "must be one of 1, 0, true, false, yes, no",
            lambda text: text.lower() in _ENV_BOOLEANS,
            lambda text: _ENV_BOOLEANS[text.lower()],
        ),
    ),
    "PTX_COMMAND": ("command", rules.text),
    "PTX_LOAD_AVERAGE": (
        "safety_thresholds.max_load_average",
        lambda text: rules.non_negative(_real_or_text(text)),
    ),
}


def _apply_env(
    config: Config, environ: Mapping[str, str], problems: list[str], sources: dict[str, str]
) -> Config:
    """`config` with the PTX_* variables that are set (and not empty) laid over it."""
    changes: dict[str, Any] = {}
    for name, (setting, parse) in _ENVIRONMENT.items():
        text = environ.get(name, "").strip()
        if not text:
            continue
        try:
            changes[setting] = parse(text)
        except rules.BadValueError as exc:
            problems.append(f"{name}: {exc.requirement}, got {rules.show(text)}")
        else:
            sources[setting] = name
    for setting in [setting for setting in changes if "." in setting]:  # a section's key
        section, key = setting.split(".")
        base = changes.get(section, getattr(config, section))
        changes[section] = dataclasses.replace(base, **{key: changes.pop(setting)})
    return dataclasses.replace(config, **changes)
