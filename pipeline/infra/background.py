"""Work a run does beside its stages that only saves time later (a spare worktree or O=
directory for the next new series): a thread that never fails the run. The run waits
for these threads before it ends (settle), so nothing is left half-made by a clean exit;
what a killed run leaves half-made is made aside and removed by the next one."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable

from pipeline.infra.context import Context

_threads: list[threading.Thread] = []


def start(ctx: Context, name: str, work: Callable[[], None]) -> None:
    def guarded() -> None:
        try:
            work()
        except Exception as exc:  # noqa: BLE001 - a saving for later, never a failure of this run
            ctx.runner.note(f"# {name} not made: {type(exc).__name__}: {exc}")

    thread = threading.Thread(target=guarded, name=name)
    _threads.append(thread)
    thread.start()


def settle() -> None:
    """Wait for every thread started."""
    while _threads:
        _threads.pop().join()


def making(path: Path) -> Path:
    """Where this process makes what goes to path, to be moved there whole when done."""
    return path.with_name(f"{path.name}.making-{os.getpid()}")


def stale(path: Path) -> list[Path]:
    """What a killed run left half-made for path (its process is gone)."""
    return [p for p in path.parent.glob(f"{path.name}.making-*") if not _alive(p.name.rsplit("-", 1)[1])]


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        pass
    return True
