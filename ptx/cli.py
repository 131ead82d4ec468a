"""Typer command line: parse options, call one core function, map errors to exit codes."""

from __future__ import annotations


def main() -> int:
    return 0
