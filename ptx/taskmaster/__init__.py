"""The edge: finding, reading and locking tasks.json, the config, status write-back."""
