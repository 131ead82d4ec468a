"""The state directory `.ptx/`: the SQLite journal, its schema, and estimates from history."""
