"""What `--resume` continues, and the options it keeps from the run it continues."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ptx.core.errors import UsageError

if TYPE_CHECKING:
    from ptx.core.model import TaskId
    from ptx.journal.schema import RunInfo
    from ptx.journal.store import Journal


@dataclass(frozen=True, slots=True, kw_only=True)
class KeptOptions:
    """The options of a run that a `--resume` of it keeps unless they are given again; None
    (or no targets) means "not given". The journal keeps them as JSON in the run's row.

    This is the one place a new option joins them: add its field here, as it is on
    `RunRequest`, and `kept_options`, `merged` and the journal all follow."""

    jobs: int | None = None
    update_status: bool | None = None
    timeout: float | None = None
    retries: int | None = None
    subtasks: bool | None = None
    targets: tuple[TaskId, ...] = ()
    isolate: bool | None = None  # a resumed isolated run continues its integration branch
    load_average: float | None = None
    max_cost: float | None = None  # the budget goes on: a resume is the same run's work

    def to_json(self) -> str:
        return json.dumps(
            {name.name: getattr(self, name.name) for name in dataclasses.fields(self)},
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | None) -> KeptOptions:
        """What a run kept; a run recorded before the journal kept options kept none."""
        data: dict[str, Any] = json.loads(text) if text else {}
        known = {name.name for name in dataclasses.fields(cls)}
        found = {key: value for key, value in data.items() if key in known}
        if "targets" in found:
            found["targets"] = tuple(found["targets"])
        return cls(**found)


def kept_options(request: object) -> KeptOptions:
    """The request's values of the kept options (the request has a field of each name)."""
    return KeptOptions(
        **{name.name: getattr(request, name.name) for name in dataclasses.fields(KeptOptions)}
    )


def merged(given: KeptOptions, stored: KeptOptions) -> dict[str, object]:
    """Each option as given, else as the resumed run had it: the changes to the request."""
    changes: dict[str, object] = {}
    for name in dataclasses.fields(KeptOptions):
        value = getattr(given, name.name)
        if value is None or value == ():
            changes[name.name] = getattr(stored, name.name)
    return changes


def run_to_resume(journal: Journal, tag: str) -> RunInfo:
    """The latest run of `tag` with unfinished work that no later run resumed; a usage error
    when there is none, so that `--resume` and `--resume -n` fail alike."""
    found = journal.unfinished_run(tag)
    if found is not None:
        return found
    if not journal.runs(1, tag=tag):
        raise UsageError(f"nothing to resume: no earlier run of tag '{tag}'")
    raise UsageError(f"nothing to resume: every run of tag '{tag}' finished its work")
