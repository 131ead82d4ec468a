"""The terminal: Typer commands, the console and the views that render a run's events."""
