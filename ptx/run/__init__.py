"""A run: the workflow's steps, the loop that owns scheduler state, attempts and guards."""
