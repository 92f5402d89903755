"""A series' first build starts from the base's O= directory: on a real git tree, the files the
series changes end up newer than every copied object, the others older, so make rebuilds exactly
what the series reaches."""

import os
import time

from pipeline.model import config
from pipeline.model.lane import base_builds
from pipeline.stages import apply, build, seed
from test_apply import ctx_for, git


def base_repo(tmp_path, files: dict[str, str]) -> tuple:
    """A git repo with one commit holding files: (repo, its commit)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    for name, text in files.items():
        (repo / name).write_text(text)
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "base")
    return repo, git(repo, "rev-parse", "HEAD").strip()


def test_a_new_series_build_is_seeded_from_the_base_and_rebuilds_only_what_changed(tmp_path):
    ctx = ctx_for(tmp_path)
    repo, base = base_repo(tmp_path, {"mm.h": "base\n", "util.c": "int x;\n"})
    arch = config.resolve_arch("x86_64")

    wt, _ = apply.worktree(ctx, repo, "series", base, age=True)
    assert os.stat(wt / "util.c").st_mtime == seed.OLD
    (wt / "mm.h").write_text("series\n")
    git(wt, "commit", "-qam", "patch")

    series_out = build.lane_dirs(ctx, "series", arch)[1]
    assert not seed.seed(ctx, wt, arch, series_out, base_builds(base), base, "x86_64")  # the base has not built
    base_out = build.lane_dirs(ctx, base_builds(base), arch)[1]
    (base_out / arch.kernel.image_path).parent.mkdir(parents=True)
    (base_out / arch.kernel.image_path).write_text("kernel")
    (base_out / "util.o").write_text("object")
    built_at = time.time() - 60
    os.utime(base_out / "util.o", (built_at, built_at))

    assert seed.seed(ctx, wt, arch, series_out, base_builds(base), base, "x86_64")
    copied = os.stat(series_out / "util.o").st_mtime
    assert (series_out / "util.o").read_text() == "object" and copied == built_at  # mtimes kept by the copy
    assert os.stat(wt / "mm.h").st_mtime > copied  # changed by the series: make rebuilds what includes it
    assert os.stat(wt / "util.c").st_mtime < copied  # unchanged: the base's object stands
    (series_out / "util.o").write_text("rebuilt")
    assert (base_out / "util.o").read_text() == "object"  # a copy: the series' make never writes the base's


def test_a_step_before_the_seeding_does_not_compile_the_tip_s_header_change_twice(tmp_path):
    """The tip changes mm.h; step 1 holds the base's mm.h. Checked out for step 1 before the O= is
    seeded, mm.h gets the old date (the base's objects stand for it); util.c, changed by patch 1,
    stays newer than them. Once the O= exists, a checkout's dates are left alone."""
    ctx = ctx_for(tmp_path)
    repo, base = base_repo(tmp_path, {"mm.h": "base\n", "util.c": "int x;\n"})
    wt, _ = apply.worktree(ctx, repo, "series", base, age=True)
    (wt / "util.c").write_text("int y;\n")
    git(wt, "commit", "-qam", "patch 1")
    step = git(wt, "rev-parse", "HEAD").strip()
    (wt / "mm.h").write_text("tip\n")
    git(wt, "commit", "-qam", "patch 2")
    tip = git(wt, "rev-parse", "HEAD").strip()
    git(wt, "checkout", "-q", "--detach", step)
    assert os.stat(wt / "mm.h").st_mtime > seed.OLD  # written by the checkout: it looks changed
    assert seed.age_as_base(ctx, wt, base, tip, step) == 1
    assert os.stat(wt / "mm.h").st_mtime == seed.OLD  # the base's content again: the base's objects stand
    assert os.stat(wt / "util.c").st_mtime > seed.OLD  # patch 1's change: seed() dates it newer, it is compiled


def test_a_kept_worktree_whose_o_dirs_are_gone_is_dated_as_a_new_one(tmp_path):
    ctx = ctx_for(tmp_path)
    repo, base = base_repo(tmp_path, {"util.c": "int x;\n"})
    wt, _ = apply.worktree(ctx, repo, "series", base, age=True)
    now = time.time()
    os.utime(wt / "util.c", (now, now))  # a checkout of an earlier run wrote it
    apply.worktree(ctx, repo, "series", base, age=False)  # its O= exists: dates are left alone
    assert os.stat(wt / "util.c").st_mtime == now
    apply.worktree(ctx, repo, "series", base, age=True)  # no O= left: the base's objects will stand
    assert os.stat(wt / "util.c").st_mtime == seed.OLD
