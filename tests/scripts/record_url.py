"""A stand-in browser for `$BROWSER`: writes the URL it was asked to open to ./opened."""

from __future__ import annotations

import sys
from pathlib import Path

Path("opened").write_text(sys.argv[1])
