"""How process.py starts a command: `subprocess.Popen` in a session of its own.

Only process.py imports this. Popen searches the child's own PATH, says exactly why a
command cannot start, resets the signals Python ignores (SIGPIPE, SIGXFSZ) to their default
in the child and closes every descriptor but the three standard ones.
"""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

Process = subprocess.Popen[bytes]


def start(argv: Sequence[str], cwd: str, env: Mapping[str, str], log: int) -> Process:
    """Start `argv` in a new session, stdin from /dev/null, stdout and stderr to the open
    file descriptor `log`."""
    # No preexec_fn: it would disable CPython's vfork fast path.
    return subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        close_fds=True,
    )
