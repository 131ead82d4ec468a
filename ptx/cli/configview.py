"""`ptx config`: the effective settings as key paths, each with where its value came from."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ptx.core.errors import InputError
from ptx.core.model import TaskOptions
from ptx.taskmaster import config as config_module
from ptx.taskmaster import discovery
from ptx.taskmaster.isolation import Settings

if TYPE_CHECKING:
    from pathlib import Path

    from ptx.taskmaster.config import Config

DEFAULT = "default"


@dataclass(frozen=True, slots=True, kw_only=True)
class Setting:
    key: str  # "retries", "circuit_breaker.timeout_seconds"
    value: Any  # as JSON would hold it: bytes and cores as numbers, statuses as a sorted list
    source: str  # "default", the config file, a PTX_* variable or "flag --jobs"


@dataclass(frozen=True, slots=True, kw_only=True)
class Effective:
    file: str | None  # the config file that was read, None for built-in defaults only
    settings: tuple[Setting, ...]


def effective(
    *,
    tasks_file: Path | None,
    config_file: Path | None,
    jobs: int | None,
    cwd: Path,
    environ: Mapping[str, str],
) -> Effective:
    """What `ptx run` would use in `cwd` with these flags (precedence: flag > PTX_* > file >
    default). Outside a project the config is looked for under `cwd`."""
    root = _root(tasks_file, cwd)
    config, sources = config_module.load_config_sources(config_file, root=root, environ=environ)
    if jobs is not None:
        config = dataclasses.replace(config, max_concurrency=jobs)
        sources["max_concurrency"] = "flag --jobs"
    file = None if config.source is None else discovery.shown_path(config.source, root)
    return Effective(file=file, settings=settings(config, sources))


def _root(tasks_file: Path | None, cwd: Path) -> Path:
    try:
        path = discovery.given_file(tasks_file) if tasks_file else discovery.find_tasks_file(cwd)
    except InputError:
        return cwd
    return discovery.project_root(path)


def settings(config: Config, sources: Mapping[str, str]) -> tuple[Setting, ...]:
    """Every setting of `config` in declaration order, sections split into their keys."""
    found: list[Setting] = []
    # The isolation keys come from Config's base class, so first among its fields; they are
    # shown last, where the shipped file has them.
    later = {field.name for field in dataclasses.fields(Settings)}
    for field in sorted(dataclasses.fields(config), key=lambda field: field.name in later):
        if field.name == "source":
            continue
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            pairs = [
                (f"{field.name}.{sub.name}", getattr(value, sub.name))
                for sub in dataclasses.fields(value)
            ]
        else:
            pairs = [(field.name, value)]
        found += [
            Setting(key=key, value=_plain(item), source=sources.get(key, DEFAULT))
            for key, item in pairs
        ]
    return tuple(found)


def _plain(value: object) -> Any:  # noqa: ANN401 - whatever JSON can hold
    if isinstance(value, frozenset):
        return sorted(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, TaskOptions):
        return {
            field.name: _plain(item)
            for field in dataclasses.fields(value)
            if (item := getattr(value, field.name)) is not None and item != {}
        }
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    return value


def render_text(view: Effective) -> str:
    """One `key = value  (source)` line per setting, under the file that was read."""
    width = max(len(setting.key) for setting in view.settings)
    head = f"# config file: {view.file or 'none (built-in defaults)'}"
    lines = [f"{item.key:<{width}} = {_shown(item)}  ({item.source})" for item in view.settings]
    return "\n".join([head, *lines])


_SIZES = frozenset({"resource_limits.memory_per_task"})
_UNITS = (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10))
_UNITS_1000 = (("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3))


def _shown(setting: Setting) -> str:
    """A value as a config file would hold it: sizes as a quantity ("512Mi"), not bytes."""
    if setting.key in _SIZES and isinstance(setting.value, int):
        return size_text(setting.value)
    return json.dumps(setting.value, ensure_ascii=False)


def size_text(count: int) -> str:
    """Bytes as the shortest exact quantity (512Mi, 2G; 1Gi, not 1024Mi), else bytes."""
    exact = [(count // size, unit) for unit, size in (*_UNITS, *_UNITS_1000) if count % size == 0]
    if not exact:
        return str(count)
    number, unit = min(exact)
    return f"{number}{unit}"


def render_json(view: Effective) -> str:
    settings_ = {
        setting.key: {"value": setting.value, "source": setting.source} for setting in view.settings
    }
    return json.dumps({"file": view.file, "settings": settings_}, indent=2, ensure_ascii=False)
