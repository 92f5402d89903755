"""git am on a small real repository: a conflict names patch k/n, its subject and the file."""

import os
import subprocess
from pathlib import Path

from pipeline.stages import apply, worktree
from pipeline.infra.context import Context
from pipeline.infra.progress import Progress
from pipeline.infra.runner import Runner
from pipeline.model.series import load_patch_dir

ENV = ["-c", "user.name=t", "-c", "user.email=t@t"]


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *ENV, *args], check=True, capture_output=True, text=True).stdout


def make_series(tmp_path: Path):
    repo = tmp_path / "src"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "mm.c").write_text("int a;\nint b;\nint c;\n")
    (repo / "rmap.c").write_text("int r;\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "base")
    base = git(repo, "rev-parse", "HEAD").strip()
    (repo / "mm.c").write_text("int a;\nint b2;\nint c;\n")
    git(repo, "commit", "-qam", "mm: one")
    (repo / "rmap.c").write_text("int r2;\n")
    git(repo, "commit", "-qam", "rmap: two")
    patches = tmp_path / "patches"
    git(repo, "format-patch", "-q", "-o", str(patches), base)
    return repo, base, patches


def ctx_for(tmp_path):
    return Context(tmp_path / "run", tmp_path / "cache", Runner(tmp_path / "run" / "commands.log"), Progress())


def test_series_applies_one_commit_per_patch(tmp_path):
    repo, base, patches = make_series(tmp_path)
    series = load_patch_dir(patches, "t", "test")
    result = apply.run(ctx_for(tmp_path), repo, "t", base, series)
    assert result.ok and len(result.commits) == 2
    assert [c.status.value for c in result.cases] == ["PASS", "PASS"]


def test_conflict_names_patch_and_file(tmp_path):
    repo, base, patches = make_series(tmp_path)
    # a different base: rmap.c already changed in a conflicting way
    git(repo, "checkout", "-q", base)
    (repo / "rmap.c").write_text("int other;\n")
    git(repo, "commit", "-qam", "conflicting base")
    other = git(repo, "rev-parse", "HEAD").strip()
    series = load_patch_dir(patches, "t", "test")
    result = apply.run(ctx_for(tmp_path), repo, "t", other, series)
    assert not result.ok
    assert "patch 2/2 'rmap: two'" in result.message and "rmap.c" in result.message
    assert [c.status.value for c in result.cases] == ["PASS", "FAIL"]
    # a rerun resets the kept worktree and gets the same answer, not a stuck 'git am'
    again = apply.run(ctx_for(tmp_path), repo, "t", other, series)
    assert again.message == result.message


def test_unchanged_files_keep_their_mtime_across_runs(tmp_path):
    repo, base, patches = make_series(tmp_path)
    series = load_patch_dir(patches, "t", "test")
    ctx = ctx_for(tmp_path)
    first = apply.run(ctx, repo, "t", base, series)
    before = (first.worktree / "mm.c").stat().st_mtime_ns
    import time
    time.sleep(0.05)
    second = apply.run(ctx, repo, "t", base, series)
    assert (second.worktree / "mm.c").stat().st_mtime_ns == before


def test_per_patch_checkouts_give_the_tip_files_their_mtime_back(tmp_path):
    """What the orchestrator does around the per-patch builds of one arch: snapshot at the
    tip, check out the earlier states (new mtimes), come back, restore. Files the series
    touched get the tip's mtimes back, so other arches' build dirs see no change."""
    repo, base, patches = make_series(tmp_path)
    ctx = ctx_for(tmp_path)
    applied = apply.run(ctx, repo, "s", base, load_patch_dir(patches, "t", "test"))
    wt, (first, tip) = applied.worktree, applied.commits
    old = 1_000_000_000_000_000_000
    for name in ("mm.c", "rmap.c"):
        os.utime(wt / name, ns=(old, old))
    keep = worktree.snapshot(ctx, wt, tip, f"{first}^")
    assert set(keep) == {"mm.c", "rmap.c"}
    git(wt, "checkout", "-q", "--detach", first)  # rmap.c rewritten
    git(wt, "checkout", "-q", "--detach", tip)
    assert (wt / "rmap.c").stat().st_mtime_ns != old
    assert worktree.restore_mtimes(ctx, wt, keep) == 2
    assert [(wt / n).stat().st_mtime_ns for n in ("mm.c", "rmap.c")] == [old, old]
    # a file whose content is not the tip's keeps its new mtime
    git(wt, "checkout", "-q", "--detach", first)
    assert worktree.restore_mtimes(ctx, wt, keep) == 1  # rmap.c differs from the tip: left as is
    assert (wt / "rmap.c").stat().st_mtime_ns != old
