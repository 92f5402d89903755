"""The real tier's own cache, so that what a user ran before cannot change a test's outcome.

The real tier runs kseries against KSERIES_TEST_CACHE (default: `kseries-tests` beside the
user's cache, ~/.cache/kseries-tests). Before the first test, entries it lacks are seeded
from the user's cache where that saves builds: every store there is content-addressed (its
key is what decides its content), so a seeded entry is exactly what the test would have
computed. Nothing is ever written back:

- immutable files (git objects and packs, downloaded sources) are hard-linked;
- everything else is copied (make and ccache rewrite files in place), with its mtimes, so
  a copied O= directory is as up to date as the original;
- the base's build directories (build/base-*) are seeded; a series' are not: each test
  series starts from the base's build, as a new series of a user does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

STORES = ("git", "downloads", "lanes", "steps", "suites", "derived", "checkpatch", "ccache",
          "ccache-series", "kvm-probe.json")
LINKED = ("downloads",)  # files written once, never changed in place
GIT_OBJECTS = "objects"  # inside a git directory: loose objects and packs are never changed in place


def user_cache() -> Path:
    from pipeline.infra.context import cache_root

    return cache_root()


def tier_cache(user: Path) -> Path:
    return Path(os.environ.get("KSERIES_TEST_CACHE") or user.parent / "kseries-tests")


def _copy(src: Path, dst: Path, link: bool) -> None:
    tmp = dst.with_name(dst.name + ".seeding")
    shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", "--link" if link else "--reflink=auto", str(src), str(tmp)], check=True)
    tmp.rename(dst)


def _seed_git(src: Path, dst: Path) -> None:
    """A git directory: objects hard-linked, refs, config and the rest copied."""
    tmp = dst.with_name(dst.name + ".seeding")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for entry in src.iterdir():
        _copy(entry, tmp / entry.name, link=entry.name == GIT_OBJECTS)
    tmp.rename(dst)


def seed(user: Path, own: Path) -> list[str]:
    """Seed `own` from `user` with what it lacks; returns what was seeded, for the log."""
    if not user.is_dir() or user.resolve() == own.resolve():
        return []
    wanted = []  # (source, target): a store's entries one by one, so a partly seeded store is completed
    for name in STORES:
        src = user / name
        if src.is_dir():
            wanted += [(e, own / name / e.name) for e in sorted(src.iterdir())]
        elif src.is_file():
            wanted.append((src, own / name))
    wanted += [(d, own / "build" / d.name) for d in sorted((user / "build").glob("base-*")) if d.is_dir()]
    seeded = []
    for src, dst in wanted:
        if dst.exists() or src.name.endswith((".seeding", ".tmp", ".lock")):
            continue
        if src.is_dir() and (src / GIT_OBJECTS).is_dir() and (src / "HEAD").is_file():
            _seed_git(src, dst)
        else:
            _copy(src, dst, link=src.parent.name in LINKED)
        seeded.append(str(dst.relative_to(own)))
    return seeded


def prepare() -> Path:
    """Point KSERIES_CACHE at the tier's cache, seeded; returns it."""
    user = user_cache()
    own = tier_cache(user)
    start = time.monotonic()
    seeded = seed(user, own)
    if seeded:
        print(f"\nreal tier: cache {own}, seeded from {user} in {time.monotonic() - start:.0f} s: "
              f"{len(seeded)} entr(ies), e.g. {', '.join(seeded[:4])}")
    os.environ["KSERIES_CACHE"] = str(own)
    return own
