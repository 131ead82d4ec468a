"""Where an attempt's process runs (one module per backend) and the one owner of processes."""
