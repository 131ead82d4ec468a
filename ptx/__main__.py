"""`python -m ptx`."""

from ptx.cli.app import console

console()
