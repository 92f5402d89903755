"""The kept git worktrees runs build from: one per base commit, one per series.

A base's worktree is checked out once, dated old (stages/seed.py: the base's objects, built
later, stand for every file) and kept. A series' new worktree is made from it in a second or
two instead of a checkout of 90,000 files: `git worktree add --no-checkout`, every file
hard-linked from the base's worktree, and the base's index copied, so git sees a clean
checkout at once. The links keep the base's old dates, which is what a new series needs.
Quicker still: whenever a run makes a series' worktree, a thread links a spare one for the
base's next new series (trees/.spare/), which then takes it with a rename.

Hard links are safe because nothing writes a worktree file in place: git replaces a file it
changes with a new one (a new inode), kseries only changes dates of files git wrote for the
series, and containers mount /src read-only. A link changes a file's ctime, so the shared repo
has core.trustctime off. A kept worktree is reset to the base each run; files whose content ends
up as it was get their old mtime back (snapshot, restore_mtimes), so the kept O= directory sees
only what really changed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pipeline.infra import background, locks
from pipeline.infra.context import Context
from pipeline.model.lane import base_tree
from pipeline.stages.seed import age_worktree


def gitdir(wt: Path) -> Path:
    return Path((wt / ".git").read_text().split("gitdir:", 1)[1].strip())


def kept(ctx: Context, repo: Path, name: str, base: str,
         age: bool = False) -> tuple[Path, dict[str, tuple[str, int]]]:
    """The kept worktree `name`, reset to base; returns it and the mtimes worth restoring.
    age: no O= directory of this series exists, so every file must be older than the base's
    objects (a new worktree is made so; a kept one is dated again)."""
    wt = ctx.cache / "trees" / name
    log = ctx.log("apply.log")
    if not (wt / ".git").exists():
        ctx.runner.git(repo, "worktree", "prune")
        origin = base_tree(base)
        if name != origin and age and (take_spare(ctx, repo, wt, base)
                                       or link(ctx, repo, base_worktree(ctx, repo, base), wt, base)):
            make_spare(ctx, repo, base)  # for the next new series, after this run
            return wt, {}
        ctx.progress.say("apply", "", f"checking out the base into {wt}")
        ctx.runner.git(repo, "worktree", "add", "-f", "--detach", str(wt), base, log=log, timeout=1800)
        if age or name == origin:  # a base's O= (kept across worktrees) was built from this same content
            ctx.runner.note(f"# {age_worktree(wt)} files of the new worktree dated 2000-01-01 (stages/seed.py)")
            ctx.runner.git(wt, "update-index", "-q", "--refresh", log=log, check=False, timeout=1800)
        return wt, {}
    (gitdir(wt) / "index.lock").unlink(missing_ok=True)  # left by a run killed mid-checkout
    ctx.runner.git(wt, "am", "--abort", check=False)
    old = ctx.runner.git(wt, "rev-parse", "HEAD", check=False).output.strip()
    keep = snapshot(ctx, wt, old, base) if old else {}
    # a file whose date alone changed (dated by kseries) is rewritten by checkout -f unless the index
    # is refreshed first (a content check): refreshed, checkout writes only what differs
    ctx.runner.git(wt, "update-index", "-q", "--refresh", log=log, check=False, timeout=1800)
    ctx.runner.git(wt, "checkout", "-q", "-f", "--detach", base, log=log, timeout=1800)
    ctx.runner.git(wt, "clean", "-q", "-f", "-d", "-x", log=log, timeout=1800)
    if age:  # a kept worktree, but no O= of the series left: the base's objects stand, as for a new one
        ctx.runner.note(f"# {age_worktree(wt)} files of the worktree dated 2000-01-01: no O= of the series")
    return wt, keep


def fresh(ctx: Context, name: str, outs: list[Path]) -> bool:
    """No O= directory built from the worktree `name` is left (outs: the ones there may be), so its
    files are to be dated as the base's. O= directories whose worktree is gone are removed first:
    their objects' dates mean nothing against a new worktree's files (each would be rebuilt), and a
    new one is seeded from the base's in seconds."""
    outs = [out for out in outs if out.is_dir()]
    if outs and not (ctx.cache / "trees" / name / ".git").exists():
        for out in outs:
            ctx.runner.note(f"# {out}: its worktree {name} is gone; removed, seeded anew from the base's")
            shutil.rmtree(out)
        return True
    return not outs


def base_worktree(ctx: Context, repo: Path, base: str) -> Path:
    """The base's kept worktree as it is (a run building the base may be reading it), made when
    missing under the base's directory lock (a base lane's checkout takes it too)."""
    wt = ctx.cache / "trees" / base_tree(base)
    if not (wt / ".git").exists():
        say = lambda text: ctx.progress.say("apply", "", text)  # noqa: E731
        with locks.hold(ctx.cache, locks.dirs(base_tree(base)), say, ctx.run_dir.name):
            if not (wt / ".git").exists():
                kept(ctx, repo, base_tree(base), base)
    return wt


def link(ctx: Context, repo: Path, origin: Path, wt: Path, base: str, quiet: bool = False) -> bool:
    """Make wt a worktree at base whose files are hard links to origin's (a worktree at base).
    False, with nothing left behind, when that cannot be done (another file system, a race):
    the caller checks out instead."""
    log = ctx.log("apply.log")
    ctx.runner.git(repo, "config", "core.trustctime", "false")
    ctx.runner.git(repo, "worktree", "add", "-q", "--no-checkout", "-f", "--detach", str(wt), base, log=log)
    entries = sorted(str(p) for p in origin.iterdir() if p.name != ".git")
    done = ctx.runner.run(["cp", "-al", "--", *entries, str(wt)], log=log, check=False, timeout=1800)
    if done.returncode == 0 and (gitdir(origin) / "index").is_file():
        shutil.copyfile(gitdir(origin) / "index", gitdir(wt) / "index")
        if checked(ctx, repo, wt, base):
            if not quiet:
                ctx.progress.say("apply", "", f"worktree {wt.name}: files linked from {origin.name}")
            return True
        return False
    drop(ctx, repo, wt)
    return False


def checked(ctx: Context, repo: Path, wt: Path, base: str) -> bool:
    """A worktree made without a checkout, checked against its index (git writes anew what differs
    from base) and cleaned; when git cannot, it is dropped (False)."""
    log = ctx.log("apply.log")
    if ctx.runner.git(wt, "checkout", "-q", "-f", "--detach", base, log=log, check=False, timeout=1800).returncode \
            or ctx.runner.git(wt, "clean", "-q", "-f", "-d", "-x", log=log, check=False).returncode:
        drop(ctx, repo, wt)
        return False
    return True


def drop(ctx: Context, repo: Path, wt: Path) -> None:
    """A worktree gone, from git's records and from the disk."""
    ctx.runner.git(repo, "worktree", "remove", "--force", str(wt), check=False)
    shutil.rmtree(wt, ignore_errors=True)


def spare_path(ctx: Context, base: str) -> Path:
    return ctx.cache / "trees" / ".spare" / base_tree(base)


def take_spare(ctx: Context, repo: Path, wt: Path, base: str) -> bool:
    """Move the base's spare worktree (made by an earlier run, linked from the base's) to wt:
    a rename. False when there is none (or another run took it first)."""
    spare = spare_path(ctx, base)
    background.wait(ctx.cache, spare, lambda text: ctx.progress.say("apply", "", text))
    if not (spare / ".git").exists():
        return False
    log = ctx.log("apply.log")
    if ctx.runner.git(repo, "worktree", "move", str(spare), str(wt), log=log, check=False).returncode:
        shutil.rmtree(spare, ignore_errors=True)  # not a worktree git knows (pruned): made again later
        return False
    if not checked(ctx, repo, wt, base):
        return False
    ctx.progress.say("apply", "", f"worktree {wt.name}: the spare one of {base_tree(base)}")
    return True


def make_spare(ctx: Context, repo: Path, base: str) -> None:
    """After the run (infra/background.py): a spare worktree for the base's next new series."""
    if background.spares():
        background.later("spare worktree", spare_worktree, spare_path(ctx, base), repo, base)


def spare_worktree(ctx: Context, repo: str, base: str) -> None:
    """Link a spare worktree for the base's next new series, which takes it with a rename.
    Made aside and moved in place whole."""
    spare, repo_dir = spare_path(ctx, base), Path(repo)
    making = background.making(spare)
    spare.parent.mkdir(parents=True, exist_ok=True)
    for stale in background.stale(spare):  # a killed process's half-made one
        drop(ctx, repo_dir, stale)
    if (spare / ".git").exists() or not link(ctx, repo_dir, base_worktree(ctx, repo_dir, base), making, base, quiet=True):
        return
    if ctx.runner.git(repo_dir, "worktree", "move", str(making), str(spare), check=False).returncode:
        drop(ctx, repo_dir, making)


def snapshot(ctx: Context, wt: Path, at: str, since: str) -> dict[str, tuple[str, int]]:
    """For every file that differs between since and at: its blob at `at` and its mtime now,
    so restore_mtimes can give it back once the worktree holds that blob again."""
    keep: dict[str, tuple[str, int]] = {}
    for path in ctx.runner.git(wt, "diff", "--name-only", since, at).output.split():
        blob = ctx.runner.git(wt, "rev-parse", "-q", "--verify", f"{at}:{path}", check=False).output.strip()
        try:
            keep[path] = (blob, os.stat(wt / path).st_mtime_ns)
        except FileNotFoundError:
            pass
    return keep


def restore_mtimes(ctx: Context, wt: Path, keep: dict[str, tuple[str, int]]) -> int:
    restored = 0
    for path, (blob, mtime) in keep.items():
        now = ctx.runner.git(wt, "rev-parse", "-q", "--verify", f"HEAD:{path}", check=False).output.strip()
        if now and now == blob:
            os.utime(wt / path, ns=(mtime, mtime))
            restored += 1
    return restored
