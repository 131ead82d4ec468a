"""The config keys of isolated runs: `isolation`, `workspace:` and `integration:`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from ptx.taskmaster import options as rules

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ptx.core.model import Command

Mode = Literal["none", "worktree"]
Strategy = Literal["merge", "squash"]
MODES: tuple[Mode, ...] = ("none", "worktree")
STRATEGIES: tuple[Strategy, ...] = ("merge", "squash")
# {tag} and {run} in the integration branch, {tag} and {id} in a task's.
DEFAULT_BRANCH = "ptx/{tag}/{run}"
DEFAULT_TASK_BRANCH = "ptx/{tag}/task-{id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Workspace:
    copy: tuple[str, ...] = ()  # globs of untracked files copied into each fresh worktree
    setup: Command | None = None  # run in the fresh worktree before the task
    refuse_dirty: bool = False  # refuse to start when the user's checkout has changes


@dataclass(frozen=True, slots=True, kw_only=True)
class Integration:
    strategy: Strategy = "merge"
    verify: Command | None = None  # run in the integration worktree after each merge
    branch: str = DEFAULT_BRANCH
    task_branch: str = DEFAULT_TASK_BRANCH


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """The isolation keys of `Config` (its base class), kept with their rules."""

    isolation: Mode = "none"  # "worktree": each attempt in its own git worktree
    workspace: Workspace = field(default_factory=Workspace)
    integration: Integration = field(default_factory=Integration)


def _globs(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise rules.BadValueError("must be a list of glob patterns", value)
    return tuple(value)


def _template(*needed: str) -> rules.Parser:
    names = " and ".join("{" + name + "}" for name in needed)
    return rules.rule(
        f"must be a branch name template containing {names}",
        lambda v: isinstance(v, str) and all("{" + name + "}" in v for name in needed),
    )


_boolean = rules.rule("must be true or false", lambda v: isinstance(v, bool))
MODE = rules.rule("must be one of " + ", ".join(MODES), MODES.__contains__)
SECTIONS: Mapping[str, tuple[type, Mapping[str, rules.Parser]]] = {
    "workspace": (
        Workspace,
        {
            "copy": _globs,
            "setup": rules.or_null(rules.command),
            "refuse_dirty": _boolean,
        },
    ),
    "integration": (
        Integration,
        {
            "strategy": rules.rule("must be one of merge, squash", STRATEGIES.__contains__),
            "verify": rules.or_null(rules.command),
            "branch": _template("run"),
            "task_branch": _template("id"),
        },
    ),
}
