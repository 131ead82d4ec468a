"""The root of the Typer command line: the app, its global options and the `ptx` script."""

from __future__ import annotations

import atexit
import importlib
import os
import signal
import sys
import threading
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup
from typer.models import CommandInfo

# Start-up is paid by every invocation (2,000 times in the no-op benchmark): only what most
# commands need is imported here; what one command or option needs is imported where it is used.
from ptx import __version__
from ptx.cli import STARTING, streams
from ptx.cli.common import State
from ptx.core.errors import ExitCode

if TYPE_CHECKING:
    from collections.abc import Iterator

    from typer._click import Command  # typer's own copy of click, which its commands are

# One module per command group; each command is a plain function, listed here in the order
# `ptx --help` lists them. A command's module is imported only when that command is asked
# for (or `ptx --help` lists them all): building a command reads its function's signature, and
# importing every module and building every command is most of what starting ptx costs.
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("ptx.cli.check", "validate"),
    "plan": ("ptx.cli.check", "plan"),
    "run": ("ptx.cli.run", "run"),
    "report": ("ptx.cli.history", "report"),
    "runs": ("ptx.cli.history", "runs"),
    "dashboard": ("ptx.cli.dashboard", "dashboard"),
    "config": ("ptx.cli.config", "show_config"),
    "clean": ("ptx.cli.clean", "clean"),
}


class _Commands(MutableMapping[str, "Command"]):
    """The group's commands by name, each built the first time it is looked up."""

    def __init__(self) -> None:
        self.built: dict[str, Command] = {}

    def __getitem__(self, name: str) -> Command:
        if name not in self.built:
            module, function = COMMANDS[name]
            callback = getattr(importlib.import_module(module), function)
            self.built[name] = typer.main.get_command_from_info(
                CommandInfo(name=name, callback=callback),
                pretty_exceptions_short=app.pretty_exceptions_short,
                rich_markup_mode=app.rich_markup_mode,
            )
        return self.built[name]

    def __setitem__(self, name: str, command: Command) -> None:
        raise TypeError(f"commands are listed in COMMANDS, not added: {name}")

    def __delitem__(self, name: str) -> None:
        raise TypeError(f"commands are listed in COMMANDS: {name}")

    def __iter__(self) -> Iterator[str]:
        return iter(COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS)


class _Group(TyperGroup):
    """ptx's command group: its commands come from COMMANDS, built as they are used."""

    def __init__(self, **attrs: Any) -> None:  # noqa: ANN401 - Typer's own keyword arguments
        super().__init__(**attrs)
        self.commands = _Commands()


app = typer.Typer(
    name="ptx",
    cls=_Group,
    help="Run a Taskmaster project's tasks in parallel, in dependency order, safely.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: it wraps at any width, where Rich's panels cut long option names.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

if STARTING:  # every module the command line needs is loaded: Ctrl-C is KeyboardInterrupt again
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"ptx {__version__}\n")  # as Ui.data writes, without loading Rich
        sys.stdout.flush()
        raise typer.Exit


@app.callback()
def _root(
    *,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    _version_flag: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    State.debug = debug


def main(argv: list[str] | None = None) -> int:
    """Run ptx in this process; returns the exit code (usage errors are 2)."""
    try:
        app(args=argv, prog_name="ptx")
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else ExitCode.BAD_INPUT
    return ExitCode.OK


def console() -> NoReturn:
    """Entry point of the `ptx` script and `python -m ptx`: `main`, then exit without tearing
    the interpreter down: freeing every object one by one is work for nothing when the
    process ends anyway (BENCHMARKS.md). Exit handlers run and the output is flushed first,
    as at any exit; if another thread still runs, Python exits as usual (waiting for it).
    The standard streams are guarded first (see streams.py): losing them never changes what
    ptx does, only, for stdout, possibly the exit code."""
    streams.guard()
    code = main()
    if threading.active_count() > 1:
        sys.exit(streams.settle(code))
    atexit._run_exitfuncs()  # noqa: SLF001 - what the normal exit would run, run now
    os._exit(streams.settle(code))
