"""`ptx run` as a pipeline of small steps: load, check, select, reap, resume, execute."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ptx.core.errors import ExitCode, PtxError, UsageError
from ptx.core.events import Notice
from ptx.core.model import Severity, counted, id_key
from ptx.executors import base as executors
from ptx.executors import process
from ptx.graph import plan, schedule, validation
from ptx.journal import estimates
from ptx.journal.statedir import STATE_DIR_NAME, run_lock
from ptx.journal.store import DB_NAME, Journal
from ptx.run import commandline, resume, safety
from ptx.run import isolation as isolating
from ptx.run import jobs as jobs_module
from ptx.run.integration import integrated_tasks
from ptx.run.isolation import Isolation
from ptx.run.runner import Run, RunOptions
from ptx.taskmaster import config as config_module
from ptx.taskmaster import reader as taskmaster
from ptx.taskmaster import writeback

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from ptx.core.events import Listener, RunResult
    from ptx.core.model import Finding, Project, TaskId
    from ptx.executors.base import Executor
    from ptx.graph.units import Graph, Selection
    from ptx.journal.schema import RunInfo
    from ptx.taskmaster.config import Config


class TargetsBlockedError(PtxError):
    """No target asked for can run (like make's "no rule to make target"): nothing starts."""

    exit_code = ExitCode.FAILED

    def __init__(self, failed: Sequence[tuple[TaskId, str]]) -> None:
        lines = (f"cannot run target {unit}: {reason}" for unit, reason in failed)
        super().__init__("\n".join(lines))


class ValidationFailedError(PtxError):
    """The task list has errors: nothing may run until they are fixed."""

    exit_code = ExitCode.FAILED

    def __init__(self, findings: Sequence[Finding], path: Path) -> None:
        self.findings, self.path = tuple(findings), path
        errors = counted(len(findings), "validation error")
        super().__init__(f"{errors}: fix them or run `ptx validate`")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRequest:
    file: Path | None
    tag: str | None
    config: Path | None
    cwd: Path
    environ: Mapping[str, str]
    # The options a --resume keeps (resume.KeptOptions): None when not given.
    jobs: int | None = None
    subtasks: bool | None = None
    targets: tuple[TaskId, ...] = ()
    timeout: float | None = None
    retries: int | None = None
    fail_fast: bool = False
    update_status: bool | None = None
    resume: bool = False
    load_average: float | None = None  # --load-average: over the config's max_load_average
    max_cost: float | None = None  # USD: --max-cost, over the config's max_cost_usd
    argv: tuple[str, ...] = ()
    executor: str = "local"  # or "dask"
    scheduler: str | None = None  # a Dask scheduler address; None: DASK_SCHEDULER_ADDRESS
    isolate: bool | None = None  # each attempt in its own git worktree (or config isolation)
    base: str | None = None  # the commit an isolated run starts from; None: HEAD


@dataclass(frozen=True, slots=True, kw_only=True)
class Prepared:
    project: Project
    config: Config
    work: Graph
    estimates: Mapping[TaskId, float]  # only the known ones: history, else estimate_seconds
    jobs: int
    notices: tuple[str, ...] = ()
    request: RunRequest | None = None  # with the options a resume kept filled in
    resumed: RunInfo | None = None  # the run a --resume continues
    blocked: tuple[tuple[TaskId, str], ...] = ()  # left out because of a status, and why
    failed_targets: tuple[TaskId, ...] = ()  # targets asked for that cannot run
    isolation: Isolation | None = None  # continuing the resumed run's integration branch


def load(request: RunRequest) -> tuple[Project, Config]:
    project = taskmaster.load_project(
        file=request.file, start=request.cwd, tag=request.tag, environ=request.environ
    )
    config = config_module.load_config(request.config, root=project.root, environ=request.environ)
    if request.load_average is not None:
        thresholds = dataclasses.replace(
            config.safety_thresholds, max_load_average=request.load_average
        )
        config = dataclasses.replace(config, safety_thresholds=thresholds)
    return project, config


def prepare(  # noqa: PLR0913 - the machine's bound comes as local cores or remote slots
    request: RunRequest,
    project: Project,
    config: Config,
    journal: Journal | None,
    isolation: Isolation | None = None,
    *,
    cores: int | None = None,
    slots: int | None = None,
) -> Prepared:
    """Select the work and the estimates that order it (the caller has refused broken input).
    `slots`: what a remote executor can run at once, which replaces this machine's cores as the
    bound."""
    request, resumed = resumed_request(request, journal, project.tasks.tag)
    # A resumed isolated run is isolated too, its preconditions checked now if not before.
    isolation = continued(isolation or isolation_of(request, project, config), journal, resumed)
    if slots is not None:
        decided = jobs_module.effective_jobs(request.jobs or slots, config)
    else:
        cores = jobs_module.available_cores() if cores is None else cores
        decided = jobs_module.effective_jobs(request.jobs, config, cores)
    # Said only to someone who gave -j: the default is a ceiling, not a promise (plan says it).
    told = request.jobs is not None and decided.why is not None
    notices: tuple[str, ...] = (decided.why,) if told and decided.why else ()
    jobs = decided.jobs
    if slots is None:  # always said: it points at a limit to raise
        fitting = jobs_module.within_descriptors(jobs)
        notices += (fitting.why,) if fitting.why else ()
        jobs = fitting.jobs
    tag, tasks = project.tasks.tag, project.tasks.tasks
    history = estimates.from_journal(journal, tag, tasks, config) if journal else {}
    done = journal.succeeded_tasks(resumed.run_id) if journal and resumed else frozenset()
    if isolation is not None and isolation.branch is not None:  # what reached it is done
        repo = isolation.repo
        done |= integrated_tasks(repo.top, repo.base, isolation.branch)
    selection, known = plan.select_work(
        project.tasks,
        satisfied=config.satisfied_statuses,
        subtasks=bool(request.subtasks),
        targets=request.targets,
        history=history,
        done=done,
        config=config,
    )
    _refuse_unrunnable(selection, config)
    return Prepared(
        project=project,
        config=config,
        work=selection.work,
        estimates=known,
        jobs=jobs,
        notices=notices + isolation_notices(isolation),
        request=request,
        resumed=resumed,
        blocked=selection.blocked,
        failed_targets=tuple(unit for unit, _ in selection.failed_targets),
        isolation=isolation,
    )


def _refuse_unrunnable(selection: Selection, config: Config) -> None:
    """No target can run (exit 1), or a task that would run has no command (exit 2)."""
    if selection.failed_targets and not selection.work.nodes:
        raise TargetsBlockedError(selection.failed_targets)
    missing = commandline.missing_commands(selection.work.nodes.values(), config)
    if missing:
        listed = ", ".join(sorted(missing, key=id_key))
        which = "task" if len(missing) == 1 else "tasks"
        raise UsageError(
            f"no command for {which} {listed}: set metadata.ptx.command, "
            "tasks.<id>.command or the config's command template"
        )


def _refuse_errors(project: Project, config: Config) -> None:
    findings = validation.validate_with_config(project.tasks, config)
    errors = [finding for finding in findings if finding.severity is Severity.ERROR]
    if errors:
        raise ValidationFailedError(errors, project.path)


def resumed_request(
    request: RunRequest, journal: Journal | None, tag: str
) -> tuple[RunRequest, RunInfo | None]:
    """With --resume: the run it continues, and the request with that run's options where
    they were not given again."""
    if not request.resume:
        return request, None
    if journal is None:
        raise UsageError(f"nothing to resume: no earlier run of tag '{tag}'")
    info = resume.run_to_resume(journal, tag)
    stored = resume.KeptOptions.from_json(info.options)
    changes = resume.merged(resume.kept_options(request), stored)
    return dataclasses.replace(request, **changes), info  # type: ignore[arg-type]


def isolation_of(request: RunRequest, project: Project, config: Config) -> Isolation | None:
    """The isolated run asked for, its preconditions checked before anything is written."""
    if not request.isolate and config.isolation != "worktree":
        if request.base is not None:
            raise UsageError("--base needs --isolate (or isolation: worktree)")
        return None
    if request.base is not None and request.resume:
        raise UsageError("--base cannot be used with --resume: it continues the run's branch")
    root = project.root
    repo = isolating.check(
        root=root,
        state_dir=root / STATE_DIR_NAME,
        tasks_file=project.path,
        base_ref=request.base,
        workspace=config.workspace,
    )
    isolating.check_branches(repo.top, config.integration, tag=project.tasks.tag)
    return Isolation(repo=repo, workspace=config.workspace, integration=config.integration)


def continued(
    isolation: Isolation | None, journal: Journal | None, resumed: RunInfo | None
) -> Isolation | None:
    """A resumed isolated run continues the integration branch of the run it resumes."""
    found = journal.integration(resumed.run_id) if journal and resumed and isolation else None
    if isolation is None or found is None:
        return isolation
    branch, base = found
    return dataclasses.replace(
        isolation, branch=branch, repo=dataclasses.replace(isolation.repo, base=base)
    )


def isolation_notices(isolation: Isolation | None) -> tuple[str, ...]:
    if isolation is None or not isolation.repo.dirty:
        return ()
    repo = isolation.repo
    message = (
        f"{repo.dirty} uncommitted change(s) in {repo.top} are not seen by tasks:"
        f" they start from commit {repo.base[:12]}"
    )
    return (message,)


def reap_orphans(journal: Journal, grace: float) -> int:
    """Kill what a ptx killed with SIGKILL left running, before anything is rerun."""
    orphans = journal.orphaned_attempts()
    # All at once: one grace period in all, however many groups a dead run left.
    killed = process.kill_stale_groups(
        (
            (record.pgid, record.pgid_create_time)
            for record in orphans
            if record.pgid is not None and record.pgid_create_time is not None
        ),
        grace,
    )
    # Always called: it also closes runs that died between attempts, with nothing left running.
    journal.mark_orphans_reaped(orphans, ended_at=time.time())
    return killed


def put_back_crashed(
    journal: Journal, project: Project, config: Config, listener: Listener
) -> list[TaskId]:
    """Tasks the last run of this tag left `in-progress` in tasks.json when it crashed go
    back to `pending` (its previous status died with it): no task looks taken by a run that
    is gone. A run stopped by Ctrl-C leaves them `in-progress` on purpose (see README)."""
    last = journal.last_run()
    if last is None or last.status != "crashed" or last.tag != project.tasks.tag:
        return []
    if not _updated_statuses(last.argv, config):
        return []
    interrupted = {r.task for r in journal.attempts(last.run_id) if r.status == "interrupted"}
    stuck = sorted(
        (t.id for t in project.tasks.tasks if t.id in interrupted and t.status == "in-progress"),
        key=id_key,
    )
    if stuck:
        try:
            writeback.set_statuses(
                project.path, project.tasks.tag, dict.fromkeys(stuck, "pending"), cascade=False
            )
        except PtxError as error:
            listener(
                Notice(message=f"status of {', '.join(stuck)} not put back: {error}", warning=True)
            )
            return []
        listed = ", ".join(stuck)
        listener(Notice(message=f"run {last.run_id} crashed: {listed} put back to pending"))
    return stuck


def _updated_statuses(argv: Sequence[str], config: Config) -> bool:
    """Whether a run wrote statuses, from its command line and the config as it is now."""
    if "--no-update-status" in argv:
        return False
    return "--update-status" in argv or config.update_status


def execute(
    request: RunRequest, listener: Listener, probe: safety.SystemProbe | None = None
) -> RunResult:
    """Run the request; `probe` reads the machine (psutil unless a test sets the readings)."""
    project, config = load(request)
    state_dir = project.root / STATE_DIR_NAME
    _refuse_errors(project, config)  # before a cluster is started for nothing
    isolation = isolation_of(request, project, config)
    with (
        run_lock(state_dir),
        Journal.open(state_dir) as journal,
        contextlib.closing(_executor(request, config, listener)) as executor,
    ):
        remote = executor.slots is not None
        probe = probe or (safety.IdleProbe() if remote else safety.PsutilProbe())
        slots, cores = executor.slots, probe.cores()
        prepared = prepare(request, project, config, journal, isolation, cores=cores, slots=slots)
        reap_orphans(journal, config.kill_grace_seconds)
        request = prepared.request or request
        put_back_crashed(journal, project, config, listener)
        run = Run(
            project=project,
            config=config,
            work=prepared.work,
            # Known estimates only: a task without one gets no derived timeout rather than one
            # from the others' mean; the ranking fills in the mean by itself.
            estimates=prepared.estimates,
            journal=journal,
            state_dir=state_dir,
            options=RunOptions(
                jobs=prepared.jobs,
                timeout=request.timeout,
                retries=request.retries,
                fail_fast=request.fail_fast or config.failure_policy == "fail-fast",
                update_status=(
                    config.update_status if request.update_status is None else request.update_status
                ),
                resumed_from=prepared.resumed.run_id if prepared.resumed else None,
                kept=resume.kept_options(request).to_json(),
                max_cost_usd=config.max_cost_usd if request.max_cost is None else request.max_cost,
                argv=request.argv,
                notices=prepared.notices,
                blocked=prepared.blocked,
                failed_targets=prepared.failed_targets,
                isolation=prepared.isolation,
            ),
            listener=listener,
            probe=probe,
            executor=executor,
        )
        return run.execute()


def _executor(request: RunRequest, config: Config, listener: Listener) -> Executor:
    def notify(message: str, warning: bool) -> None:
        listener(Notice(message=message, warning=warning))

    settings = executors.Settings(
        address=request.scheduler,
        environ=request.environ,
        worker_wait=config.dask_worker_wait_seconds,
        notify=notify,
    )
    return executors.open_executor(request.executor, settings)


def dry_run(request: RunRequest) -> tuple[Prepared, list[tuple[TaskId, str]]]:
    """What would start, in the order the scheduler would start it, with each command."""
    project, config = load(request)
    _refuse_errors(project, config)
    isolation = isolation_of(request, project, config)
    state_dir = project.root / STATE_DIR_NAME
    # Read only: a dry run never creates the journal.
    with (
        Journal.open(state_dir)
        if request.resume and (state_dir / DB_NAME).is_file()
        else contextlib.nullcontext()
    ) as journal:
        prepared = prepare(request, project, config, journal, isolation)
    work = prepared.work
    simulation = schedule.simulate(work, prepared.estimates, prepared.jobs)
    order = sorted(simulation.slots, key=lambda slot: (slot.start, id_key(slot.unit)))
    # The real run's first attempts, as it builds them; no run, so no run id or environment.
    context = commandline.RunContext(
        root=prepared.project.root, tag=prepared.project.tasks.tag, run_id="", base_env={}
    )
    lines = []
    for slot in order:
        files = commandline.AttemptFiles(task_json="", result="")
        call = commandline.invocation(
            work.nodes[slot.unit], config, context, attempt=1, files=files
        )
        lines.append((slot.unit, commandline.display(call.argv)))
    return prepared, lines
