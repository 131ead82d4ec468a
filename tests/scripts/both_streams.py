"""Print a line to stdout and one to stderr, then exit with the code argv[1]."""

from __future__ import annotations

import sys

print("to out")
print("to err", file=sys.stderr)
sys.exit(int(sys.argv[1]))
