"""Which kseries process started a container: a label "BOOT_ID:PID", so that the containers
a killed run (kill -9, a lost terminal) left running can be found and stopped by the next run."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

OWNER = "org.kseries.owner"  # label: "BOOT_ID:PID" of the kseries process that started the container


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def owner(pid: int | None = None) -> str:
    return f"{boot_id()}:{pid or os.getpid()}"


def orphaned(label: str) -> bool:
    """Was the container started by a kseries process of this machine that is gone (kill -9)?"""
    boot, _, pid = label.rpartition(":")
    if boot != boot_id() or not pid.isdigit():
        return False  # another machine's engine or an unknown label: not ours to judge
    try:
        os.kill(int(pid), 0)
        return False
    except ProcessLookupError:
        return True
    except PermissionError:
        return False


@dataclass(frozen=True)
class Reaped:
    name: str
    writable: tuple[str, ...]  # host directories it could write
    started: float  # epoch seconds; 0: unknown (then everything in them is suspect)


def epoch(started: str) -> float:
    """Docker's StartedAt (RFC 3339 with nanoseconds) as epoch seconds; 0 when unreadable."""
    import datetime

    try:
        return datetime.datetime.fromisoformat(started[:26].rstrip("Z") + "+00:00").timestamp()
    except ValueError:
        return 0.0
