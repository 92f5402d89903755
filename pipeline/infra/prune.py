"""The cache stays within its budget. What kseries keeps per series and per base (their
worktrees, O= directories and compiler caches: gigabytes each, per arch) goes, least
recently used first, once the cache holds more than KSERIES_CACHE_MAX (default 50G) or the
disk keeps less than KSERIES_CACHE_FREE (default 10G) free. It runs after a run, in the
process that makes the spares (infra/background.py).

A name a run is using (its series or directories lock held) is never touched, nor the names
of the run that asked. Whatever goes is made again when needed: a series' directories from
its base's in seconds (stages/seed.py), a base's by building it. Results, lane records,
the git store and the downloads are kept: they are small, or the sources themselves."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

from pipeline.infra import background, diskwatch, locks
from pipeline.infra.context import Context
from pipeline.infra.errors import UserError
from pipeline.model.strict import size_bytes

STORES = ("build", "trees", "ccache-series")  # <store>/<name>[+steps...]; build and trees have .spare/<base>
USED = "used"  # <cache>/used/<name>: touched by every run that uses name
PRUNED = "pruned.log"  # <cache>/used/pruned.log: what was removed, when, and why
DEFAULT_MAX, DEFAULT_FREE = "50G", "10G"
CHECK_EVERY = 600  # seconds between two sums of the cache's size (the disk's free space: every run)


def touch(cache: Path, *names: str) -> None:
    """name is in use now (a run's series, its base's directories)."""
    for name in names:
        mark = cache / USED / name
        try:
            mark.parent.mkdir(parents=True, exist_ok=True)
            mark.touch()
        except OSError:  # a full disk: the directories' own dates stand in (last_used)
            pass


def begin(cache: Path, series: str) -> None:
    """A run of series begins: its budget settings are checked now (not after the run) and the
    series is in use, so pruning leaves it to the last."""
    budget()
    touch(cache, series)


def budget() -> tuple[int, int]:
    """(most bytes the cache may hold, least bytes the disk keeps free): KSERIES_CACHE_MAX/_FREE."""
    sizes = []
    for name, default in (("KSERIES_CACHE_MAX", DEFAULT_MAX), ("KSERIES_CACHE_FREE", DEFAULT_FREE)):
        text = os.environ.get(name) or default
        try:
            sizes.append(size_bytes(text))
        except (ValueError, KeyError):
            raise UserError(f"{name}={text!r} is not a size: it is how much the kseries cache may hold "
                            f"(_MAX) or the disk must keep free (_FREE). Give a size such as 80G or 500M, or "
                            f"unset it for the default ({default}).") from None
    return sizes[0], sizes[1]


def kept(cache: Path) -> dict[str, list[Path]]:
    """Every name's directories: a series' or base's own, its steps', and a base's spares. A base
    whose spare a live process is making (infra/background.py: no lock covers that) is left out."""
    out: dict[str, list[Path]] = {}
    busy = set()
    for store in STORES:
        for path in sorted((cache / store).glob("*")):
            if path.name == ".spare":
                for spare in sorted(path.iterdir()):
                    name, _, pid = spare.name.partition(".making-")
                    out.setdefault(name, []).append(spare)
                    if pid and background.alive(pid):
                        busy.add(name)
            elif not path.name.startswith("."):
                out.setdefault(path.name.split("+steps")[0], []).append(path)
    return {name: paths for name, paths in out.items() if name not in busy}


def last_used(cache: Path, name: str, paths: list[Path]) -> float:
    """When a run last used name (for a cache older than the marks: its directories' dates)."""
    mark = cache / USED / name
    if mark.exists():
        return mark.stat().st_mtime
    return max((p.stat().st_mtime for p in paths if p.exists()), default=0.0)


def freed_by(paths: list[Path]) -> int:
    """The bytes removing paths frees: its files no other path links to."""
    return sum(diskwatch.size(path, alone=True) for path in paths)


def due(cache: Path) -> bool:
    """Time to check: the disk has less free than it keeps, or the cache's size was last summed
    more than CHECK_EVERY ago (summing it reads every file's size: seconds for a large cache)."""
    mark = cache / USED / ".checked"
    return (shutil.disk_usage(cache).free < budget()[1] or not mark.exists()
            or time.time() - mark.stat().st_mtime > CHECK_EVERY)


def over(cache: Path) -> int:
    """How many bytes the cache is over its budget (0: within it)."""
    most, free = budget()
    excess = max(0, diskwatch.size(cache) - most, free - shutil.disk_usage(cache).free)
    touch(cache, ".checked")
    return excess


def in_use(cache: Path, name: str) -> list[str]:
    """The locks a run using name holds: its series' and those of its directories (its worktree's,
    each arch's build directories', its steps')."""
    held = {f"series-{name}", locks.dirs(name)}
    held.update(p.name.removesuffix(".lock") for p in (cache / "locks").glob(f"{locks.dirs(name)}[-+]*.lock"))
    return sorted(held)


def prune(ctx: Context, *spare: str) -> list[str]:
    """Remove the least recently used names' directories until the cache is within its budget;
    never a name in spare or one a run holds. The names removed."""
    excess = over(ctx.cache) if due(ctx.cache) else 0
    if not excess:
        return []
    gone, names = [], kept(ctx.cache)
    for name in sorted(names, key=lambda n: last_used(ctx.cache, n, names[n])):
        if excess <= 0:
            break
        if name in spare:
            continue
        with contextlib.ExitStack() as held:
            if not all(held.enter_context(locks.attempt(ctx.cache, lock, "cache prune")) for lock in in_use(ctx.cache, name)):
                continue  # a run is using it
            freed = freed_by(names[name])
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(last_used(ctx.cache, name, names[name])))
            for path in names[name]:
                shutil.rmtree(path, ignore_errors=True)
        (ctx.cache / USED / name).unlink(missing_ok=True)
        excess -= freed
        gone.append(name)
        said = f"cache over its budget: removed {name} (last used {when}, {freed >> 20} MiB freed)"
        ctx.runner.note(f"# {said}")
        with open(ctx.cache / USED / PRUNED, "a") as log:  # kept: the process's own log goes when it ends well
            log.write(f"{time.strftime('%Y-%m-%d %H:%M')} {said}\n")
    for repo in sorted((ctx.cache / "git").glob("*.git")) if gone else []:  # the removed worktrees' records
        ctx.runner.git(repo, "worktree", "prune", check=False)
    return gone
