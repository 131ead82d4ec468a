"""The integration branch of an isolated run: its own worktree, and task branches merged into
it one at a time, with the optional verification after each merge."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ptx.core.errors import UsageError
from ptx.core.events import RunIntegration, Status, TaskIntegration
from ptx.executors import git, process
from ptx.executors.git import GitError
from ptx.run import commandline
from ptx.run.isolation import INTEGRATION_WORKTREE, exclude_state, note, remove, worktrees_of

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from ptx.core.model import Command
    from ptx.journal.store import Journal
    from ptx.run.attempt import Finished
    from ptx.run.isolation import IsolatedAttempt, Work, Worktrees
    from ptx.run.runner import Run

VERIFY_TIMEOUT = None  # a verification runs as long as it needs; Ctrl-C stops it


@dataclass(frozen=True, slots=True, kw_only=True)
class Merged:
    """How the integration of one task's work ended."""

    status: Status
    integration: TaskIntegration
    reason: str | None = None  # "conflicted in a.py", "verification failed"


class Integrator:
    """Owns the integration worktree; `integrate` is called from one thread at a time."""

    def __init__(
        self, worktrees: Worktrees, *, log_dir: str, stop: process.Stop, grace: float
    ) -> None:
        self.worktrees, self.log_dir, self.stop, self.grace = worktrees, log_dir, stop, grace
        self.top = worktrees.repo.top
        self.path = worktrees.folder / INTEGRATION_WORKTREE
        self.strategy = worktrees.integration.strategy
        self.verify: Command | None = worktrees.integration.verify

    def open(self, *, existing: bool) -> None:
        """Create the branch at the base (or, `existing`, continue it) and check it out in the
        run's integration worktree, taking it from a worktree a crashed run left."""
        branch = self.worktrees.branch
        present = git.git(
            self.top, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False
        )
        if existing and present.code != 0:
            raise UsageError(f"cannot resume: integration branch {branch} no longer exists")
        if not existing:
            if present.code == 0:
                raise UsageError(f"integration branch {branch} already exists")
            git.git(self.top, "branch", "--no-track", branch, self.worktrees.repo.base)
        state = self.top / self.worktrees.repo.state
        for path, checked_out in worktrees_of(self.top).items():
            if checked_out == branch and path.is_relative_to(state):
                remove(self.top, path)
        git.git(self.top, "worktree", "prune")
        git.git(self.top, "worktree", "add", "--quiet", str(self.path), branch)

    def close(self) -> None:
        """Remove the integration worktree; the branch stays for the user to adopt."""
        if self.path.exists():
            with self.worktrees.admin:
                remove(self.top, self.path)

    def integrate(self, unit: str, title: str, work: Work, branch: str) -> Merged:
        """Merge one task's committed work, verify the result, then commit it: the branch
        only ever moves to a verified merge, and a conflict or failed verification leaves it
        exactly where it was (even a kill -9 in between does)."""
        commit = work.commit or ""  # only work with a commit comes here
        conflict = self._merge(commit)
        if conflict is not None:
            found = TaskIntegration(result="conflict", branch=branch, commit=commit, paths=conflict)
            shown = ", ".join(conflict) or "the merge"
            reason = f"conflicted in {shown}"
            return Merged(status=Status.CONFLICT, integration=found, reason=reason)
        if self.verify is not None and not self._verified(unit):
            self._undo()
            failed = TaskIntegration(
                result="verify failed", branch=branch, commit=commit, paths=work.paths
            )
            if self.stop.requested:  # the run was interrupted, not the work found wanting
                return Merged(status=Status.INTERRUPTED, integration=failed, reason="interrupted")
            reason = f"verification failed: see {self.verify_log(unit)}"
            return Merged(status=Status.FAILED, integration=failed, reason=reason)
        trailers = (("Ptx-Task", unit), ("Ptx-Run", self.worktrees.run_id))
        self._commit(git.commit_message(f"ptx: integrate task {unit}: {title}", trailers))
        kept = TaskIntegration(
            result="merged",
            branch=branch,
            commit=commit,
            paths=work.paths,
            insertions=work.insertions,
            deletions=work.deletions,
        )
        return Merged(status=Status.SUCCEEDED, integration=kept)

    def _merge(self, commit: str) -> tuple[str, ...] | None:
        """Merge (or squash) `commit` into the worktree without committing; on a conflict,
        the conflicting paths, the attempt undone."""
        how = ("--squash",) if self.strategy == "squash" else ("--no-ff", "--no-commit")
        env = self.worktrees.identity
        if git.git(self.path, "merge", "--quiet", *how, commit, env=env, check=False).code == 0:
            return None
        paths = git.lines(self.path, "diff", "--name-only", "--diff-filter=U")
        self._undo()
        return tuple(paths)

    def _undo(self) -> None:
        """Back to the branch's tip, with nothing a merge or verification left behind."""
        if self.strategy == "merge":
            git.git(self.path, "merge", "--abort", check=False)
        git.git(self.path, "reset", "--quiet", "--hard", "HEAD")
        git.git(self.path, "clean", "--quiet", "-d", "--force")

    def _commit(self, message: str) -> None:
        """Commit the merged work (a squash that changed nothing has nothing to commit)."""
        squash = self.strategy == "squash"
        if squash and git.git(self.path, "diff", "--cached", "--quiet", check=False).code == 0:
            return
        env = self.worktrees.identity
        git.git(self.path, "commit", "--quiet", "--no-verify", "-F", "-", env=env, stdin=message)
        git.git(self.path, "clean", "--quiet", "-d", "--force")  # what verification left

    def _verified(self, unit: str) -> bool:
        """Run integration.verify in the integration worktree, its output in the task's
        verify log."""
        assert self.verify is not None  # noqa: S101 - the caller checked
        argv = commandline.render(self.verify, {"id": unit, "title": "", "tag": "", "attempt": "1"})
        spec = process.ProcessSpec(
            argv=argv,
            cwd=str(self.path / self.worktrees.repo.project),
            env={**os.environ, "PTX_TASK_ID": unit, "PTX_RUN_ID": self.worktrees.run_id},
            log_path=self.verify_log(unit),
            timeout=VERIFY_TIMEOUT,
            grace=self.grace,
        )
        outcome = process.run_process(spec, self.stop)
        verified = outcome.exit_code == 0 and not outcome.interrupted
        if not verified:  # the run's reason names this log: it exists even when nothing printed
            note(spec.log_path, "verification failed: the merge is undone")
        return verified

    def verify_log(self, unit: str) -> str:
        return f"{self.log_dir}/{unit}.verify.log"


class Session:
    """An isolated run's integration, driven by the scheduler thread: `submit` hands a task's
    committed work to the one integration thread, whose result comes back through `post` as
    the attempt's final `Finished`."""

    def __init__(
        self,
        worktrees: Worktrees,
        *,
        journal: Journal,
        stop: process.Stop,
        post: Callable[[Finished], None],
    ) -> None:
        self.worktrees, self.journal, self.post, self.stop = worktrees, journal, post, stop
        self.integrator: Integrator | None = None
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="ptx-integrate")

    def open(self, *, existing: bool, log_dir: str, grace: float) -> None:
        """Create or continue the branch, check it out in the integration worktree."""
        integrator = Integrator(self.worktrees, log_dir=log_dir, stop=self.stop, grace=grace)
        repo = self.worktrees.repo
        exclude_state(repo.top, repo.state)
        integrator.open(existing=existing)
        self.integrator = integrator  # from here on, close() has a branch to report
        self.journal.record_integration(
            self.worktrees.run_id, branch=self.worktrees.branch, base=repo.base
        )

    def submit(self, finished: Finished, isolated: IsolatedAttempt, title: str) -> None:
        self.pool.submit(self._integrate, finished, isolated, title)

    def _integrate(self, finished: Finished, isolated: IsolatedAttempt, title: str) -> None:
        """In the integration thread; the attempt always comes back, whatever happens."""
        status = Status.FAILED
        try:
            lease, work = isolated.pending()
            if self.integrator is None:
                raise ValueError("integration before the session was opened")  # noqa: TRY301
            merged = self.integrator.integrate(finished.unit, title, work, lease.branch)
            isolated.integration, isolated.reason = merged.integration, merged.reason
            status = merged.status
            if status is Status.SUCCEEDED:
                self.worktrees.release(lease)
                isolated.lease = None
            self._record(finished, status, merged.integration)
        except Exception as error:  # noqa: BLE001 - the task fails with the reason
            status = Status.FAILED
            isolated.integration = TaskIntegration(result="not integrated")
            isolated.reason = f"integration failed: {error}"
        finally:
            self.post(dataclasses.replace(finished, status=status))

    def _record(self, finished: Finished, status: Status, integration: TaskIntegration) -> None:
        self.journal.attempt_integrated(
            run_id=self.worktrees.run_id,
            task=finished.unit,
            attempt=finished.attempt,
            status=status.value,
            branch=integration.branch,
            commit=integration.commit,
            result=integration.result,
        )

    def close(self) -> RunIntegration | None:
        """Wait for the integration thread, remove the integration worktree; the branch."""
        self.pool.shutdown(wait=True)
        if self.integrator is None:
            return None
        self.integrator.close()
        return RunIntegration(
            branch=self.worktrees.branch,
            base=self.worktrees.repo.base,
            commit=self.worktrees.tip(),
        )


def open_session(
    run: Run, post: Callable[[Finished], None]
) -> tuple[Session | None, Worktrees | None]:
    """The integration session and worktrees of `run`, opened, when it is isolated; `post`
    hands each integrated attempt back to the run's loop."""
    isolation = run.options.isolation
    if isolation is None:
        return None, None
    worktrees = isolation.worktrees(run.run_id, run.project.tasks.tag)
    session = Session(worktrees, journal=run.journal, stop=run.stop, post=post)
    grace = run.config.kill_grace_seconds
    session.open(existing=isolation.branch is not None, log_dir=run.log_dir, grace=grace)
    return session, worktrees


def integrated_tasks(top: Path, base: str, branch: str) -> frozenset[str]:
    """Tasks whose work is on `branch` since `base`, read from the Ptx-Task trailers."""
    with contextlib.suppress(GitError):
        found = git.lines(
            top, "log", "--format=%(trailers:key=Ptx-Task,valueonly)", f"{base}..{branch}"
        )
        return frozenset(line.strip() for line in found)
    return frozenset()
