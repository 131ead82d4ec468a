"""Ask for the Dask executor where `distributed` cannot be imported; print the error's type,
exit code and message."""

from __future__ import annotations

import sys

sys.modules["distributed"] = None  # type: ignore[assignment]  # what a missing package does

from ptx.core.errors import PtxError  # noqa: E402 - after the import is made to fail
from ptx.executors.base import Settings, open_executor  # noqa: E402

try:
    open_executor("dask", Settings())
except PtxError as exc:
    print(type(exc).__name__, exc.exit_code.value, exc)
