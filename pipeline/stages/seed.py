"""A series' first build on an arch starts from a copy of the base's O= directory.

A new series differs from its base in a few files, yet its first build used to
compile the whole kernel (15 min for x86_64 here). Instead:

- a base's worktree is dated old when it is made, and a series' new worktree is
  hard-linked from it (stages/worktree.py) when no O= directory of that series exists
  yet, so the base's objects, built later, are up to date for every file the series
  leaves alone;
- its first build on an arch copies the base's finished O= directory (under the
  base's directory lock, so no base build writes it meanwhile) and then touches
  every file that differs between the base and the tree being built, so make
  rebuilds exactly what those files reach (kbuild's .cmd dependencies). The copy
  is usually made already: each seeding leaves a spare one (build/.spare/), copied
  after its run (infra/background.py), which the next new series takes with a rename.

The copy, not hard links: make rewrites objects in place, which would change the
base's. Correctness does not depend on the ageing: a file whose content differs
from the base is always newer than the copied objects.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

from pipeline.infra import background, diskwatch, locks
from pipeline.infra.context import Context
from pipeline.model import config

OLD = 946684800  # 2000-01-01: older than any object a build writes


def age_worktree(wt: Path) -> int:
    """Give every file of a worktree an old mtime; returns how many. A file hard-linked from the
    base's worktree (stages/worktree.py) is left alone: it is the base's, dated when that was made."""
    count = 0
    for root, dirs, files in os.walk(wt):
        if root == str(wt):
            dirs[:] = [d for d in dirs if d != ".git"]
        for name in files:
            path = os.path.join(root, name)
            st = os.lstat(path)
            if not os.path.islink(path) and st.st_nlink == 1:
                os.utime(path, (OLD, OLD))
                count += 1
    return count


def age_as_base(ctx: Context, wt: Path, base_commit: str, before: str, after: str) -> int:
    """After a per-patch step's checkout from `before` to `after`, in a worktree whose O= directory
    is yet to be seeded from the base's: the files the checkout wrote that hold the base's content
    again get the old date, so the base's objects stand for them (the tip's change to a header
    they hold back from this step is not compiled twice: once here, once for the tip). Returns
    how many. Only before the seeding: once the O= holds objects of this series, a file's date
    must say that it changed."""
    wrote = set(ctx.runner.git(wt, "diff", "--name-only", before, after).output.split())
    differs = set(ctx.runner.git(wt, "diff", "--name-only", base_commit, after).output.split())
    count = 0
    for path in sorted(wrote - differs):
        if (wt / path).is_file() and not (wt / path).is_symlink():
            os.utime(wt / path, (OLD, OLD))
            count += 1
    return count


def spare_out(ctx: Context, base_dirs: str, arch: config.Arch) -> Path:
    return ctx.cache / "build" / ".spare" / base_dirs / arch.name / "out"


def seed(ctx: Context, src: Path, arch: config.Arch, out_dir: Path, base_dirs: str, base_commit: str,
         lane: str) -> bool:
    """Create out_dir as a copy of the base's finished O= directory (the spare copy an earlier run
    left, taken with a rename, or a copy made now), then make the files that differ from the base
    newer than every copied object; a spare is copied after the run for the next new series.
    False when the base has no finished build."""
    from pipeline.stages.build import lane_dirs

    base_out = lane_dirs(ctx, base_dirs, arch)[1]
    say = lambda text: ctx.progress.say("build", lane, text)  # noqa: E731
    start = time.monotonic()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    spare, how = spare_out(ctx, base_dirs, arch), "the spare copy of the base's build"
    background.wait(ctx.cache, spare, say)
    try:
        os.rename(spare, out_dir)  # whole or not at all; another run may take it first
    except OSError:
        how = "the base's build"
        if not copy(ctx, base_out, out_dir, locks.dirs(base_dirs, arch.name), arch, say):
            return False
    changed = touch_changed(ctx, src, base_commit)
    say(f"O= seeded from {how} in {time.monotonic() - start:.0f} s: make rebuilds what the "
        f"{len(changed)} changed file(s) reach")
    make_spare(ctx, base_out, spare, base_dirs, arch)
    return True


def copy(ctx: Context, source: Path, out_dir: Path, lock: str, arch: config.Arch, say) -> bool:
    """out_dir made a copy of the finished O= directory source, under source's lock (no build
    writes it meanwhile); False when source has no finished build."""
    tmp = out_dir.with_name(out_dir.name + ".seeding")
    with locks.hold(ctx.cache, lock, say, ctx.run_dir.name):
        if not (source / arch.kernel.image_path).exists():
            return False
        shutil.rmtree(tmp, ignore_errors=True)
        ctx.runner.run(["cp", "-a", "--reflink=auto", str(source), str(tmp)], timeout=1800)
    tmp.rename(out_dir)
    return True


def touch_changed(ctx: Context, src: Path, base_commit: str) -> list[str]:
    """The files of src that differ from the base, dated now: newer than every copied object."""
    changed = ctx.runner.git(src, "diff", "--name-only", base_commit, "HEAD").output.split()
    now = time.time()
    for path in changed:
        if (src / path).exists():
            os.utime(src / path, (now, now))
    return changed


def differing(config: dict[str, str], other: dict[str, str]) -> int:
    """How many options two .configs set differently (an option not set counts as n)."""
    return sum(1 for name in config.keys() | other.keys() if config.get(name, "n") != other.get(name, "n"))


def nearest(ctx: Context, src: Path, arch: config.Arch, out_dir: Path, base_commit: str, new_config: Path,
            lane: str) -> bool:
    """A new O= directory for a config of which this base has no build yet: a copy of the base's
    finished O= directory on the same arch whose .config differs from new_config in the fewest
    options. make then rebuilds what those options and the files changed since the base reach,
    never more than a build into an empty directory, less the more the configs share (a series
    whose chosen tests add a few options). False when the base has no build on this arch."""
    from pipeline.model.lane import base_tree
    from pipeline.stages.build import parse_config

    want, found = parse_config(new_config.read_text()), []
    for out in sorted(ctx.cache.glob(f"build/{base_tree(base_commit)}*/{arch.name}/out")):
        if not re.fullmatch(rf"{base_tree(base_commit)}(-[0-9a-f]+)?", out.parent.parent.name):
            continue  # only the base's own (trusted) builds, never a series'
        try:
            if out != out_dir and (out / arch.kernel.image_path).exists():
                found.append((differing(want, parse_config((out / ".config").read_text())), out))
        except OSError:  # pruned meanwhile
            continue
    if not found:
        return False
    options, source = min(found, key=lambda f: f[0])
    say = lambda text: ctx.progress.say("build", lane, text)  # noqa: E731
    start = time.monotonic()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    if not copy(ctx, source, out_dir, locks.dirs(source.parent.parent.name, arch.name), arch, say):
        return False
    changed = touch_changed(ctx, src, base_commit)
    say(f"O= seeded from the base's build of the nearest config ({source.parent.parent.name}: "
        f"{options} option(s) differ) in {time.monotonic() - start:.0f} s: make rebuilds what they "
        f"and the {len(changed)} changed file(s) reach")
    return True


def make_spare(ctx: Context, base_out: Path, spare: Path, base_dirs: str, arch: config.Arch) -> None:
    """After the run (infra/background.py): a spare copy of the base's O= for the next new series."""
    if background.spares():
        background.later(f"spare {arch.name} O= copy", spare_copy, spare, base_out, spare, base_dirs,
                         arch.kernel.image_path, arch.name)


def spare_copy(ctx: Context, base_out: str, spare: str, base_dirs: str, image_path: str, arch: str) -> None:
    """Copy the base's finished O= for the next new series on this base and arch, when the disk
    has room for it three times over and no run is writing the base's O= meanwhile."""
    source, target = Path(base_out), Path(spare)
    making = background.making(target)
    if target.exists() or not (source / image_path).exists():
        return
    for stale in background.stale(target):  # a killed process's half-made copy
        shutil.rmtree(stale, ignore_errors=True)
    need = 3 * diskwatch.size(source) + 4 * 2**30
    if shutil.disk_usage(ctx.cache).free < need:
        ctx.runner.note(f"# no spare O= copy: less than {need >> 30} GiB free in {ctx.cache}")
        return
    with locks.attempt(ctx.cache, locks.dirs(base_dirs, arch), ctx.run_dir.name) as held:
        if not held or not (source / image_path).exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        copied = ctx.runner.run(["cp", "-a", "--reflink=auto", str(source), str(making)], check=False, timeout=1800)
    if copied.returncode:  # a disk filled meanwhile: nothing half-made is left
        shutil.rmtree(making, ignore_errors=True)
        ctx.runner.note(f"# no spare O= copy: {copied.output.strip()[-200:]}")
        return
    try:
        os.rename(making, target)
    except OSError:  # another process's spare is there already
        shutil.rmtree(making, ignore_errors=True)
