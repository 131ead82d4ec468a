"""`python -m ptx`."""

from ptx.cli import console

console()
