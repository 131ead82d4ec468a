"""Keep a core busy for at most SECONDS (default 60), so a burner a test forgot still ends.

Usage: burn_cpu.py [SECONDS]
"""

from __future__ import annotations

import sys
import time

end = time.monotonic() + float(sys.argv[1] if len(sys.argv) > 1 else 60)
while time.monotonic() < end:
    pass
