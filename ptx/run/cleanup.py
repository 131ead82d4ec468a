"""`ptx clean`: the worktrees and branches finished isolated runs left, removed through git."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ptx.core.errors import UsageError
from ptx.executors import git
from ptx.journal.statedir import STATE_DIR_NAME, run_lock
from ptx.journal.store import DB_NAME, Journal
from ptx.run.isolation import WORKTREES, branch_name, remove, worktrees_of
from ptx.run.workflow import reap_orphans

if TYPE_CHECKING:
    from ptx.taskmaster.isolation import Integration


@dataclass(frozen=True, slots=True, kw_only=True)
class Cleaned:
    worktrees: tuple[str, ...]
    task_branches: tuple[str, ...]
    integration_branches: tuple[str, ...]


def clean(root: Path, integration: Integration, *, grace: float, everything: bool) -> Cleaned:
    """Remove the worktrees of finished runs and the task branches (`everything`: the runs'
    integration branches too); never a branch checked out anywhere. No run may be active; a
    run whose ptx was killed is closed first, its leftover processes ended (`grace`)."""
    state_dir = root / STATE_DIR_NAME
    inside = git.git(root, "rev-parse", "--show-toplevel", check=False)
    if inside.code != 0:
        raise UsageError(f"ptx clean works on git repositories: {root} is not in a git work tree")
    top = Path(inside.out.strip())
    if not (state_dir / DB_NAME).is_file():
        return Cleaned(worktrees=(), task_branches=(), integration_branches=())
    with run_lock(state_dir), Journal.open(state_dir) as journal:
        reap_orphans(journal, grace)
        runs = [info for info in journal.runs(limit=1_000_000) if info.ended_at is not None]
        finished = {info.run_id: journal.integration(info.run_id) for info in runs}
    folder = state_dir.resolve() / WORKTREES
    removed = []
    for path in worktrees_of(top):
        if path.parent.parent == folder and path.parent.name in finished:
            remove(top, path)
            removed.append(str(path))
    git.git(top, "worktree", "prune")
    for run_id in finished:
        with contextlib.suppress(OSError):  # still holds something git did not put there
            (folder / run_id).rmdir()
    pattern = branch_name(integration.task_branch, tag="*", unit="*")
    tasks = _delete(
        top, git.lines(top, "for-each-ref", "--format=%(refname:short)", f"refs/heads/{pattern}")
    )
    kept = [entry[0] for entry in finished.values() if entry is not None] if everything else []
    return Cleaned(
        worktrees=tuple(removed), task_branches=tasks, integration_branches=_delete(top, kept)
    )


def _delete(top: Path, branches: list[str]) -> tuple[str, ...]:
    """Delete the branches that exist and are checked out nowhere; the names deleted."""
    checked_out = set(worktrees_of(top).values())
    deleted = []
    for name in dict.fromkeys(branches):
        if name in checked_out:
            continue
        if git.git(top, "branch", "-D", "--quiet", name, check=False).code == 0:
            deleted.append(name)
    return tuple(deleted)
