"""A disk limit for a container's writable mounts (Container.disk): a build that fills the
disk is stopped and loses its lane, never the machine."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable


def size(path: Path, alone: bool = False) -> int:
    """Bytes under path (allocated blocks; hard links once), without following symlinks.
    alone: only the files nothing else links to (what removing path frees)."""
    total, seen = 0, set()
    for root, dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if alone and st.st_nlink > 1:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


class DiskWatch:
    """Polls what a container's writable mounts hold and stops it past its limit: a build that
    fills the disk loses its lane, not the machine. The first poll is the baseline (an O=
    directory kept from earlier builds); the limit is on what this container adds."""

    def __init__(self, spec, every: float = 10.0):
        self.spec, self.every = spec, every
        self.paths = [m.host for m in spec.mounts if m.writable]
        self.start = sum(size(p) for p in self.paths) if spec.disk else 0
        self.exceeded = threading.Event()

    def over(self) -> bool:
        return bool(self.spec.disk) and sum(size(p) for p in self.paths) - self.start > self.spec.disk

    def watch(self, stop: Callable[[], None], finished: threading.Event) -> None:
        while self.spec.disk and not finished.wait(self.every):
            if self.over():
                self.exceeded.set()
                stop()
                return

    def check(self) -> None:
        """Once more when the container has exited: a build quicker than one poll is measured too."""
        if not self.exceeded.is_set() and self.over():
            self.exceeded.set()
