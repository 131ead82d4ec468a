"""The root of the Typer command line: the app, its global options and the `ptx` script."""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from typing import Annotated, NoReturn

import typer

# Start-up is paid by every invocation (2,000 times in the no-op benchmark): only what most
# commands need is imported here; what one command or option needs is imported where it is used.
from ptx import __version__
from ptx.cli import STARTING, check, clean, config, dashboard, history, run, streams
from ptx.cli.common import State
from ptx.core.errors import ExitCode

app = typer.Typer(
    name="ptx",
    help="Run a Taskmaster project's tasks in parallel, in dependency order, safely.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: it wraps at any width, where Rich's panels cut long option names.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
# One module per command group; each command is a plain function, registered here in the
# order `ptx --help` lists them.
app.command()(check.validate)
app.command()(check.plan)
app.command()(run.run)
app.command()(history.report)
app.command()(history.runs)
app.command()(dashboard.dashboard)
app.command("config")(config.show_config)
app.command()(clean.clean)

if STARTING:  # every module the command line needs is loaded: Ctrl-C is KeyboardInterrupt again
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _version(value: bool) -> None:
    if value:
        State.ui.data(f"ptx {__version__}")
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
