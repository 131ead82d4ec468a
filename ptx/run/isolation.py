"""Isolated runs: the checks before one starts, and each attempt's git worktree from its
creation at the integration branch's tip to the commit of what the task left."""

from __future__ import annotations

import dataclasses
import functools
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ptx.core.errors import UsageError
from ptx.core.events import TaskIntegration
from ptx.executors import git
from ptx.executors.git import GitError
from ptx.executors.logfile import LogFile
from ptx.executors.processtypes import ProcessOutcome
from ptx.run import commandline

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from ptx.core.model import Task
    from ptx.run.commandline import Invocation
    from ptx.taskmaster.isolation import Integration, Workspace

WORKTREES = "worktrees"  # under the state directory: worktrees/<run>/<task>[.<attempt>]
INTEGRATION_WORKTREE = "integration"


@dataclass(frozen=True, slots=True, kw_only=True)
class Repo:
    """The user's checkout as an isolated run sees it; every path relative to `top`."""

    top: Path  # the work tree's root
    project: str  # the project root, "" when it is the top
    state: str  # the state directory (.ptx)
    tasks_file: str
    base: str  # the commit the run starts from
    dirty: int  # changed paths in the checkout, which tasks do not see


def check(
    *, root: Path, state_dir: Path, tasks_file: Path, base_ref: str | None, workspace: Workspace
) -> Repo:
    """Every precondition of an isolated run, each refused with one line before anything
    starts: git present and new enough, a work tree, a commit to start from."""
    found = git.version()
    if found is None:
        raise UsageError("--isolate needs git, which is not on PATH")
    if found < git.MIN_VERSION:
        need = ".".join(map(str, git.MIN_VERSION))
        raise UsageError(f"--isolate needs git {need} or newer, found {found[0]}.{found[1]}")
    inside = git.git(root, "rev-parse", "--show-toplevel", check=False)
    if inside.code != 0:
        raise UsageError(f"--isolate needs a git repository: {root} is not in a git work tree")
    top = Path(inside.out.strip()).resolve()
    ref = base_ref or "HEAD"
    base = git.git(top, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    if base.code != 0:
        raise UsageError(
            f"--base {base_ref}: not a commit in {top}"
            if base_ref
            else f"--isolate needs a commit to start from: HEAD of {top} has no commits yet"
        )
    state = _relative(state_dir, top)
    dirty = _changed_paths(top, state)
    if dirty and workspace.refuse_dirty:
        raise UsageError(
            f"{dirty} uncommitted change(s) in {top}: commit or stash them"
            " (workspace.refuse_dirty is set)"
        )
    return Repo(
        top=top,
        project=_relative(root, top),
        state=state,
        tasks_file=_relative(tasks_file, top),
        base=base.out.strip(),
        dirty=dirty,
    )


def branch_name(template: str, *, tag: str, run_id: str = "", unit: str = "") -> str:
    return template.replace("{tag}", tag).replace("{run}", run_id).replace("{id}", unit)


def check_branches(top: Path, integration: Integration, *, tag: str) -> None:
    """Refuse templates that make names git does not accept as branches."""
    for key, name in (
        ("branch", branch_name(integration.branch, tag=tag, run_id="20260101-000000-0000")),
        ("task_branch", branch_name(integration.task_branch, tag=tag, unit="1")),
    ):
        if git.git(top, "check-ref-format", "--branch", name, check=False).code != 0:
            raise UsageError(f"integration.{key}: {name!r} is not a valid git branch name")


def exclude_state(top: Path, state: str) -> None:
    """Keep `.ptx/` out of git in the user's checkout and every worktree (they share the file),
    never by editing the user's .gitignore."""
    exclude = Path(git.git(top, "rev-parse", "--git-path", "info/exclude").out.strip())
    exclude = exclude if exclude.is_absolute() else top / exclude
    line = f"/{state}/"
    text = exclude.read_text(encoding="utf-8") if exclude.exists() else ""
    if line in text.splitlines():
        return
    exclude.parent.mkdir(parents=True, exist_ok=True)
    with exclude.open("a", encoding="utf-8") as stream:
        stream.write(("" if not text or text.endswith("\n") else "\n") + line + "\n")


def _relative(path: Path, top: Path) -> str:
    try:
        relative = path.resolve().relative_to(top)
    except ValueError as exc:
        raise UsageError(f"--isolate: {path} is outside the git work tree {top}") from exc
    return "" if str(relative) == "." else relative.as_posix()


def _changed_paths(top: Path, state: str) -> int:
    listed = git.lines(top, "status", "--porcelain", "--untracked-files=normal")
    own = f"{state}/"
    return sum(1 for line in listed if not line[3:].startswith(own))


@dataclass(frozen=True, slots=True, kw_only=True)
class Isolation:
    """An isolated run as decided before it starts."""

    repo: Repo
    workspace: Workspace
    integration: Integration
    branch: str | None = None  # the integration branch a resumed run continues

    def worktrees(self, run_id: str, tag: str) -> Worktrees:
        template = self.integration.branch
        branch = self.branch or branch_name(template, tag=tag, run_id=run_id)
        return Worktrees(
            self.repo,
            branch=branch,
            run_id=run_id,
            tag=tag,
            workspace=self.workspace,
            integration=self.integration,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Lease:
    """One attempt's worktree."""

    path: Path
    base: str  # the integration tip it was made at
    branch: str  # the task branch its work goes to
    cwd: Path  # the project root inside it

    def env(self) -> dict[str, str]:
        return {
            "PTX_WORKTREE": str(self.path),
            "PTX_BASE_COMMIT": self.base,
            "PTX_BRANCH": self.branch,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Work:
    """What a task left, committed on its branch (`commit` None: it changed nothing)."""

    commit: str | None
    paths: tuple[str, ...]
    insertions: int
    deletions: int
    dropped: tuple[str, ...]  # protected paths whose changes were left out


class Worktrees:
    """The worktrees of one isolated run; its methods are called from pool threads."""

    def __init__(  # noqa: PLR0913 - the run's repository, names and settings
        self,
        repo: Repo,
        *,
        branch: str,
        run_id: str,
        tag: str,
        workspace: Workspace,
        integration: Integration,
    ) -> None:
        self.repo, self.branch, self.run_id, self.tag = repo, branch, run_id, tag
        self.workspace, self.integration = workspace, integration
        self.folder = repo.top / repo.state / WORKTREES / run_id
        # `git worktree add` run twice at once can read the other's half-made entry under
        # .git/worktrees ("failed to read .../commondir"): adding and removing take turns.
        self.admin = threading.Lock()

    @functools.cached_property
    def identity(self) -> dict[str, str]:
        """The environment for ptx's commits, worked out once per run: three git calls."""
        return git.identity_env(self.repo.top)

    def tip(self) -> str:
        return git.git(self.repo.top, "rev-parse", f"refs/heads/{self.branch}").out.strip()

    def task_branch(self, unit: str) -> str:
        return branch_name(self.integration.task_branch, tag=self.tag, unit=unit)

    def lease(self, unit: str, attempt: int) -> Lease:
        """A fresh worktree at the integration branch's tip, with the configured files copied."""
        path = self.folder / (unit if attempt == 1 else f"{unit}.{attempt}")
        if path.exists():  # an earlier run's, recorded under the same run id: never reused
            remove(self.repo.top, path)
        base = self.tip()
        with self.admin:
            git.git(self.repo.top, "worktree", "add", "--detach", "--quiet", str(path), base)
        lease = Lease(
            path=path, base=base, branch=self.task_branch(unit), cwd=path / self.repo.project
        )
        self._copy_into(lease)
        return lease

    def _copy_into(self, lease: Lease) -> None:
        source = self.repo.top / self.repo.project
        for pattern in self.workspace.copy:
            for found in sorted(source.glob(pattern)):
                target = lease.cwd / found.relative_to(source)
                if found.is_file() and not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(found, target)

    def collect(self, lease: Lease, *, unit: str, title: str) -> Work:
        """Commit what the task left (its commits, changes and untracked files, not ignored
        ones) minus the tasks file and the state directory, and point its branch at it."""
        where = lease.path
        git.git(where, "add", "--all")
        dropped = self._drop_protected(lease)
        staged = git.git(where, "diff", "--cached", "--quiet", check=False).code != 0
        if staged:
            trailers = (("Ptx-Task", unit), ("Ptx-Run", self.run_id))
            message = git.commit_message(title or f"task {unit}", trailers)
            env = self.identity
            git.git(where, "commit", "--quiet", "--no-verify", "-F", "-", env=env, stdin=message)
        head = git.git(where, "rev-parse", "HEAD").out.strip()
        if head == lease.base:
            return Work(commit=None, paths=(), insertions=0, deletions=0, dropped=dropped)
        git.git(where, "update-ref", f"refs/heads/{lease.branch}", head)
        paths, insertions, deletions = changes(where, lease.base, head)
        return Work(
            commit=head, paths=paths, insertions=insertions, deletions=deletions, dropped=dropped
        )

    def _drop_protected(self, lease: Lease) -> tuple[str, ...]:
        """Unstage changes to the tasks file and `.ptx/` (also ones the task committed)."""
        protected = [self.repo.tasks_file, self.repo.state]
        changed = git.lines(
            lease.path, "diff", "--cached", "--name-only", lease.base, "--", *protected
        )
        if changed:
            git.git(lease.path, "reset", "--quiet", lease.base, "--", *protected)
        return tuple(changed)

    def release(self, lease: Lease) -> None:
        with self.admin:
            remove(self.repo.top, lease.path)


def changes(where: Path, old: str, new: str) -> tuple[tuple[str, ...], int, int]:
    """The paths changed from `old` to `new`, and the lines inserted and deleted."""
    paths, insertions, deletions = [], 0, 0
    for line in git.lines(where, "diff", "--numstat", "--no-renames", old, new):
        added, removed, path = line.split("\t", 2)
        paths.append(path)
        insertions += int(added) if added.isdigit() else 0
        deletions += int(removed) if removed.isdigit() else 0
    return tuple(paths), insertions, deletions


def remove(top: Path, path: Path) -> None:
    """Remove a worktree through git; a folder git no longer knows is pruned from its list."""
    gone = git.git(top, "worktree", "remove", "--force", "--force", str(path), check=False)
    if gone.code != 0 and not path.exists():
        git.git(top, "worktree", "prune")


def worktrees_of(top: Path) -> Mapping[Path, str | None]:
    """Every worktree git knows, with the branch checked out in it (None: detached)."""
    listed: dict[Path, str | None] = {}
    path: Path | None = None
    for line in git.lines(top, "worktree", "list", "--porcelain"):
        if line.startswith("worktree "):
            path = Path(line.removeprefix("worktree "))
            listed[path] = None
        elif line.startswith("branch ") and path is not None:
            listed[path] = line.removeprefix("branch refs/heads/")
    return listed


def note(log: str, text: str) -> None:
    """A `[ptx]` line in the attempt's log."""
    written = LogFile(log)
    try:
        written.note(text)
    finally:
        written.close()


class IsolatedAttempt:
    """One attempt in its own worktree: made at the integration tip, set up, run, and what
    the task left committed on its branch. Runs in a pool thread."""

    def __init__(self, worktrees: Worktrees, *, task: Task, attempt: int, log: str) -> None:
        self.worktrees, self.task, self.attempt, self.log = worktrees, task, attempt, log
        self.lease: Lease | None = None
        self.work: Work | None = None
        # Set by the integration thread before it hands the attempt back:
        self.integration: TaskIntegration | None = None
        self.reason: str | None = None

    def pending(self) -> tuple[Lease, Work]:
        """The worktree and the committed work waiting for integration."""
        if self.lease is None or self.work is None or self.work.commit is None:
            raise ValueError(f"task {self.task.id} has no committed work to integrate")
        return self.lease, self.work

    def described(self) -> TaskIntegration:
        """The report's view of this attempt's work so far."""
        if self.integration is not None:
            kept = None if self.lease is None else str(self.lease.path)
            return dataclasses.replace(self.integration, worktree=kept)
        work, lease = self.work, self.lease
        if work is not None and work.commit is None:
            return TaskIntegration(result="no changes")
        return TaskIntegration(
            result="not integrated",
            branch=None if work is None or lease is None else lease.branch,
            commit=None if work is None else work.commit,
            paths=() if work is None else work.paths,
            worktree=None if lease is None else str(lease.path),
        )

    def run(
        self, call: Invocation, execute: Callable[[Invocation], ProcessOutcome]
    ) -> ProcessOutcome:
        """`execute` runs an invocation to its end (the task's, or workspace.setup's)."""
        started = time.time()
        try:
            self.lease = lease = self.worktrees.lease(self.task.id, self.attempt)
        except (GitError, OSError) as error:
            return ProcessOutcome.never_ran(f"could not create the worktree: {error}", exit_code=1)
        call = self._inside(call, lease)
        setup = self.worktrees.workspace.setup
        if setup is not None:
            fields = {"id": self.task.id, "title": self.task.title, "tag": self.worktrees.tag}
            argv = commandline.render(setup, {**fields, "attempt": str(self.attempt)})
            note(self.log, f"workspace.setup: {commandline.display(argv)}")
            done = execute(dataclasses.replace(call, argv=argv))
            if done.exit_code != 0 or done.interrupted or done.timed_out:
                note(self.log, "setup failed: the task did not run")
                return dataclasses.replace(done, error="setup failed", started_at=started)
        outcome = execute(call)
        if outcome.exit_code == 0 and not (outcome.interrupted or outcome.timed_out):
            return self._collect(lease, outcome)
        return outcome

    def _inside(self, call: Invocation, lease: Lease) -> Invocation:
        """The invocation moved into the worktree: a per-task cwd is relative to it."""
        home = self.worktrees.repo.top / self.worktrees.repo.project
        try:
            relative = Path(call.cwd).resolve().relative_to(home.resolve())
        except ValueError:
            relative = Path()
        env = {k: v for k, v in call.env.items() if k not in git.LOCATION_VARIABLES}
        return dataclasses.replace(call, cwd=str(lease.cwd / relative), env=env | lease.env())

    def _collect(self, lease: Lease, outcome: ProcessOutcome) -> ProcessOutcome:
        try:
            self.work = work = self.worktrees.collect(
                lease, unit=self.task.id, title=self.task.title
            )
        except (GitError, OSError) as error:
            note(self.log, f"could not commit the task's work: {error}")
            return dataclasses.replace(outcome, exit_code=1, error=f"commit failed: {error}")
        if work.dropped:
            shown = ", ".join(work.dropped)
            note(self.log, f"left out of the task's commit (ptx owns them): {shown}")
        if work.commit is None:
            note(self.log, "the task changed nothing: no changes to integrate")
            self.worktrees.release(lease)
            self.lease = None
        else:
            note(self.log, f"committed on {lease.branch} at {work.commit[:12]}")
        return outcome
