"""A process that ignores SIGTERM and, on each one, appends how many of its peers still run.

Usage: counts_peers_on_term.py PIDS TERMS. It appends its own pid to PIDS, then sleeps; on
SIGTERM it appends to TERMS the number of pids in PIDS that are running (not zombies). When a
reaper sends SIGTERM to all of them before any SIGKILL, every line says how many there are.
"""

import os
import signal
import sys
import time
from pathlib import Path

PIDS, TERMS = Path(sys.argv[1]), Path(sys.argv[2])


def running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def on_term(*_: object) -> None:
    peers = [int(word) for word in PIDS.read_text().split()]
    with TERMS.open("a") as terms:
        terms.write(f"{sum(map(running, peers))}\n")


signal.signal(signal.SIGTERM, on_term)
with PIDS.open("a") as pids:
    pids.write(f"{os.getpid()}\n")
while True:
    time.sleep(1)
