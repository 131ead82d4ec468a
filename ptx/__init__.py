"""ptx: run a Taskmaster project's tasks in parallel, in dependency order, safely."""

__version__ = "0.1.0"
