"""Locks on what runs share in the cache: the git store, the kept trees and O= directories,
the images. Kernel flock(2) locks: a run that dies (kill -9, a lost machine) releases them
with its last file descriptor, so no lock is ever stale. The file names the last holder,
for the message a waiting run prints."""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator


@contextmanager
def _lock(cache: Path, name: str, say: Callable[[str], None], holder: str, wait: bool) -> Iterator[bool]:
    path = cache / "locks" / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                yield False
                return
            lock.seek(0)
            other = lock.read().strip() or "another kseries run"
            say(f"waiting for {other}, which holds {name}")
            began = time.monotonic()
            fcntl.flock(lock, fcntl.LOCK_EX)
            say(f"{name} is free after {time.monotonic() - began:.0f} s")
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}{' (' + holder + ')' if holder else ''}\n")
        lock.flush()
        yield True


@contextmanager
def hold(cache: Path, name: str, say: Callable[[str], None] = lambda text: None, holder: str = "") -> Iterator[None]:
    """Hold the lock `name` under cache/locks; if another process holds it, say so and wait."""
    with _lock(cache, name, say, holder, wait=True):
        yield


@contextmanager
def attempt(cache: Path, name: str, holder: str = "") -> Iterator[bool]:
    """Hold the lock `name` if it is free (True), else go on without it (False): for work that
    is worth doing only now, such as a spare copy for later."""
    with _lock(cache, name, lambda text: None, holder, wait=False) as held:
        yield held


def dirs(name: str, arch: str = "") -> str:
    """The lock of kept directories: a worktree's (no arch) or one arch's build directories of
    `name`, so a lane never waits for another arch's build."""
    return f"dirs-{name}" + (f"-{arch}" if arch else "")
