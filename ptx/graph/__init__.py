"""Pure logic on the task graph: units, checks, validation, levels, plan and schedule."""
