"""What every command shares: the consoles, the one error handler, the common options."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ptx.core.errors import ExitCode, PtxError, disk_problem

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ptx.cli.ui import Ui


class _MadeOnFirstUse:
    """`State.ui`, made the first time it is used: Rich is most of what the consoles cost to
    load, and `ptx --version` or a command's usage error never needs them."""

    def __get__(self, instance: object, owner: type[State]) -> Ui:
        from ptx.cli.ui import Ui  # noqa: PLC0415 - the point of this class

        made = Ui()
        setattr(owner, "ui", made)  # noqa: B010 - from now on a plain class attribute
        return made


class State:
    debug = False
    ui = _MadeOnFirstUse()


FileOption = Annotated[
    Path | None,
    typer.Option("--file", "-f", help="tasks.json to read (default: found from the current dir)."),
]
TagOption = Annotated[
    str | None, typer.Option("--tag", help="Tag to use (default: Taskmaster's current tag).")
]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Config file (default: config/parallel-execution.yaml)."),
]
JobsOption = Annotated[
    int | None,
    typer.Option("--jobs", "-j", min=1, help="Tasks at once (default: config max_concurrency)."),
]
SubtasksOption = Annotated[
    bool, typer.Option("--subtasks", help="Run subtasks as the units instead of whole tasks.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Same as --format json.")]
# For the commands without --format: a help text must never name an option its command lacks.
PrintJsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """The one place where errors become messages and exit codes."""
    try:
        yield
    except PtxError as error:
        if State.debug:
            raise
        State.ui.error(str(error))
        raise typer.Exit(error.exit_code) from None
    except KeyboardInterrupt:
        State.ui.error("interrupted")
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    except typer.Exit:
        raise
    except Exception as error:
        if State.debug:
            raise
        problem = disk_problem(error)
        if problem is not None:  # wherever ptx writes, a full or read-only disk is no bug
            State.ui.error(problem)
            raise typer.Exit(ExitCode.BAD_INPUT) from None
        # A bug, not bad input: say so, and keep the traceback one flag away.
        State.ui.error(f"internal error: {type(error).__name__}: {error} (rerun with --debug)")
        raise typer.Exit(ExitCode.INTERNAL) from None


def display_path(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    return str(path)
