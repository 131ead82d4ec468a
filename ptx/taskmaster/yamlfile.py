"""A config file's YAML, read safely: bounded in bytes, nesting and alias expansion."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from ptx.core.errors import ConfigError
from ptx.taskmaster.discovery import read_regular

if TYPE_CHECKING:
    from pathlib import Path

MAX_FILE_BYTES = 1_000_000
MAX_NODES = 100_000  # counted with aliases expanded: this is what stops a "billion laughs"
MAX_DEPTH = 32

# --- reading YAML ----------------------------------------------------------------------------
# PyYAML is imported only below, once a config file exists: most start-ups do without it.


def parse(path: Path, where: str) -> object:
    """The YAML document in `path`, refused with one line when it is no sane config."""
    try:
        data = read_regular(path, MAX_FILE_BYTES)
        text = data.decode("utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where}: not UTF-8 text (at byte offset {exc.start})") from exc
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{where}: larger than {MAX_FILE_BYTES} bytes, too big for a config")
    import yaml  # noqa: PLC0415 - only a config file needs it

    loader_class: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        _check_size(text, where, loader_class)
        loader = loader_class(text)
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


def _check_size(text: str, where: str, loader_class: type[Any]) -> None:
    """Refuse a document whose aliases expand, or whose nesting runs, far beyond any config."""
    import yaml  # noqa: PLC0415 - only a config file needs it

    sizes: dict[str, int] = {}
    frames: list[list[Any]] = [[None, 0]]  # [anchor, values so far] per open collection
    for event in yaml.parse(text, Loader=loader_class):
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
