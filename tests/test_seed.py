"""A series' first build starts from the base's O= directory: on a real git tree, the files the
series changes end up newer than every copied object, the others older, so make rebuilds exactly
what the series reaches."""

import os
import time

from pipeline.model import config
from pipeline.model.lane import base_builds, base_tree
from pipeline.infra import background
from pipeline.stages import build, seed, worktree
from test_apply import ctx_for, git


CONFIG = "0123456789abcdef"  # a config's digest (build.config_key)


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

    wt, _ = worktree.kept(ctx, repo, "series", base, age=True)
    assert os.stat(wt / "util.c").st_mtime == seed.OLD
    (wt / "mm.h").write_text("series\n")
    git(wt, "commit", "-qam", "patch")

    series_out = build.lane_dirs(ctx, "series", arch)[1]
    assert not seed.seed(ctx, wt, arch, series_out, base_builds(base, CONFIG), base, "x86_64")  # the base has not built
    base_out = build.lane_dirs(ctx, base_builds(base, CONFIG), arch)[1]
    (base_out / arch.kernel.image_path).parent.mkdir(parents=True)
    (base_out / arch.kernel.image_path).write_text("kernel")
    (base_out / "util.o").write_text("object")
    built_at = time.time() - 60
    os.utime(base_out / "util.o", (built_at, built_at))

    assert seed.seed(ctx, wt, arch, series_out, base_builds(base, CONFIG), base, "x86_64")
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
    wt, _ = worktree.kept(ctx, repo, "series", base, age=True)
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
    wt, _ = worktree.kept(ctx, repo, "series", base, age=True)
    (wt / "util.c").unlink()  # a checkout of an earlier run wrote it (a new file, as git writes)
    (wt / "util.c").write_text("int x;\n")
    now = time.time()
    os.utime(wt / "util.c", (now, now))
    worktree.kept(ctx, repo, "series", base, age=False)  # its O= exists: dates are left alone
    assert os.stat(wt / "util.c").st_mtime == now
    worktree.kept(ctx, repo, "series", base, age=True)  # no O= left: the base's objects will stand
    assert os.stat(wt / "util.c").st_mtime == seed.OLD


def test_a_new_series_worktree_is_linked_from_the_base_s_and_its_changes_never_reach_the_base(tmp_path):
    """Made in a second or two, not checked out: every file a hard link to the base's worktree's
    (its old date too), git sees a clean checkout at once in both (no rehash), and what git writes
    for the series is a new file, so the base's worktree keeps its content, inode and date."""
    ctx = ctx_for(tmp_path)
    repo, base = base_repo(tmp_path, {"mm.h": "base\n", "util.c": "int x;\n"})
    origin, _ = worktree.kept(ctx, repo, base_tree(base), base)
    time.sleep(1.1)  # a link changes the ctime, which git compares to the second
    wt, _ = worktree.kept(ctx, repo, "series", base, age=True)
    assert os.stat(wt / "util.c").st_ino == os.stat(origin / "util.c").st_ino
    assert os.stat(wt / "util.c").st_mtime == seed.OLD  # the base's worktree was dated old when made
    assert git(wt, "diff-files", "--name-only") == "" and git(origin, "diff-files", "--name-only") == ""
    before = os.stat(origin / "mm.h")
    (wt / "patch").write_text("--- a/mm.h\n+++ b/mm.h\n@@ -1 +1 @@\n-base\n+series\n")
    git(wt, "apply", "patch")
    git(wt, "commit", "-qam", "patch")
    git(wt, "checkout", "-q", "--detach", base)
    git(wt, "checkout", "-q", "--detach", "HEAD@{1}")
    assert (wt / "mm.h").read_text() == "series\n"
    after = os.stat(origin / "mm.h")
    assert (origin / "mm.h").read_text() == "base\n"
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (before.st_ino, before.st_mtime_ns, before.st_size)
    worktree.kept(ctx, repo, "series", base, age=True)  # kept, no O=: dated again, the shared files left alone
    assert os.stat(origin / "util.c").st_mtime == seed.OLD and git(origin, "status", "--porcelain") == ""


def test_a_series_worktree_that_cannot_be_linked_is_checked_out(tmp_path, monkeypatch):
    ctx = ctx_for(tmp_path)
    repo, base = base_repo(tmp_path, {"util.c": "int x;\n"})
    real = ctx.runner.run

    def no_links(argv, **kw):
        return real(["false"], **{**kw, "check": False}) if argv[:2] == ["cp", "-al"] else real(argv, **kw)

    monkeypatch.setattr(ctx.runner, "run", no_links)
    wt, _ = worktree.kept(ctx, repo, "series", base, age=True)
    origin = ctx.cache / "trees" / base_tree(base)
    assert os.stat(wt / "util.c").st_ino != os.stat(origin / "util.c").st_ino
    assert (wt / "util.c").read_text() == "int x;\n" and os.stat(wt / "util.c").st_mtime == seed.OLD
    assert git(wt, "status", "--porcelain") == ""
    assert sorted(p.name for p in (ctx.cache / "trees").iterdir()) == sorted([base_tree(base), "series"])


def test_a_new_series_takes_the_spare_worktree_an_earlier_one_left_and_leaves_one_for_the_next(tmp_path):
    ctx = ctx_for(tmp_path)
    repo, base = base_repo(tmp_path, {"mm.h": "base\n", "util.c": "int x;\n"})
    spare = worktree.spare_path(ctx, base)
    stale = spare.with_name(f"{spare.name}.making-999999999")  # a killed run's half-made spare
    stale.mkdir(parents=True)
    first, _ = worktree.kept(ctx, repo, "first", base, age=True)
    background.run_queued(ctx)
    assert (spare / ".git").is_file() and not stale.exists()
    assert os.stat(spare / "util.c").st_ino == os.stat(first / "util.c").st_ino  # both links to the base's
    inode, record = os.stat(spare / "mm.h").st_ino, worktree.gitdir(spare)
    second, _ = worktree.kept(ctx, repo, "second", base, age=True)
    assert worktree.gitdir(second) == record  # the spare itself, moved (a new link would have its own record)
    assert os.stat(second / "mm.h").st_ino == inode
    assert git(second, "status", "--porcelain") == "" and git(second, "rev-parse", "HEAD").strip() == base
    background.run_queued(ctx)
    assert (spare / ".git").is_file() and os.stat(spare / "mm.h").st_ino == inode  # the next one's
    listed = git(repo, "worktree", "list", "--porcelain")
    assert str(second) in listed and str(spare) in listed and "making" not in listed


def test_a_seeding_leaves_a_spare_copy_the_next_new_series_takes_with_a_rename(tmp_path, monkeypatch):
    ctx = ctx_for(tmp_path)
    repo, base = base_repo(tmp_path, {"util.c": "int x;\n"})
    arch = config.resolve_arch("x86_64")
    wt, _ = worktree.kept(ctx, repo, "first", base, age=True)
    base_out = build.lane_dirs(ctx, base_builds(base, CONFIG), arch)[1]
    (base_out / arch.kernel.image_path).parent.mkdir(parents=True)
    (base_out / arch.kernel.image_path).write_text("kernel")
    (base_out / "util.o").write_text("object")
    assert seed.seed(ctx, wt, arch, build.lane_dirs(ctx, "first", arch)[1], base_builds(base, CONFIG), base, "x86_64")
    background.run_queued(ctx)
    spare = seed.spare_out(ctx, base_builds(base, CONFIG), arch)
    assert (spare / "util.o").read_text() == "object"
    inode = os.stat(spare / "util.o").st_ino
    second = build.lane_dirs(ctx, "second", arch)[1]
    assert seed.seed(ctx, wt, arch, second, base_builds(base, CONFIG), base, "x86_64")
    assert os.stat(second / "util.o").st_ino == inode  # the spare itself, renamed: no copy
    background.run_queued(ctx)
    assert (spare / "util.o").is_file() and os.stat(spare / "util.o").st_ino != inode  # the next one's
    assert (base_out / "util.o").read_text() == "object"

    import shutil as sh
    monkeypatch.setattr(sh, "disk_usage", lambda path: sh._ntuple_diskusage(100, 100, 2**20))
    assert seed.seed(ctx, wt, arch, build.lane_dirs(ctx, "third", arch)[1], base_builds(base, CONFIG), base, "x86_64")
    background.run_queued(ctx)
    assert not spare.exists()  # a disk without room for it three times over gets no spare
    assert "no spare O= copy" in (tmp_path / "run" / "commands.log").read_text()


def test_an_o_dir_whose_worktree_is_gone_is_removed_and_the_new_worktree_is_dated_as_the_base_s(tmp_path):
    ctx = ctx_for(tmp_path)
    repo, base = base_repo(tmp_path, {"util.c": "int x;\n"})
    out = tmp_path / "cache" / "build" / "series" / "x86_64" / "out"
    out.mkdir(parents=True)
    (out / "util.o").write_text("built from a worktree that is gone")
    assert worktree.fresh(ctx, "series", [out]) and not out.exists()
    wt, _ = worktree.kept(ctx, repo, "series", base, age=True)
    out.mkdir(parents=True)
    assert not worktree.fresh(ctx, "series", [out]) and out.is_dir()  # its worktree is there: it stays
    assert worktree.fresh(ctx, "series", [tmp_path / "none"])


def built_base(ctx, base: str, config_digest: str, arch, options: str, objects: dict[str, str]):
    """A finished base O= directory of one config: its .config, a kernel image and objects."""
    out = build.lane_dirs(ctx, base_builds(base, config_digest), arch)[1]
    (out / arch.kernel.image_path).parent.mkdir(parents=True)
    (out / arch.kernel.image_path).write_text("kernel")
    (out / ".config").write_text(options)
    for name, text in objects.items():
        (out / name).write_text(text)
    return out


def test_a_config_the_base_has_not_built_starts_from_its_nearest_kept_config(tmp_path):
    """Each config's base build is kept apart; a new one is a copy of the base's build whose
    .config differs in the fewest options, never of another arch's or another base's."""
    ctx = ctx_for(tmp_path)
    repo, base = base_repo(tmp_path, {"util.c": "int x;\n"})
    arch, arm = config.resolve_arch("x86_64"), config.resolve_arch("arm64")
    wt, _ = worktree.kept(ctx, repo, base_tree(base), base)
    near = built_base(ctx, base, "aaaaaaaaaaaa", arch, "CONFIG_A=y\nCONFIG_B=y\n", {"util.o": "near"})
    built_base(ctx, base, "bbbbbbbbbbbb", arch, "CONFIG_A=y\nCONFIG_C=y\nCONFIG_D=m\n", {"util.o": "far"})
    built_base(ctx, base, "cccccccccccc", arm, "CONFIG_A=y\nCONFIG_B=y\nCONFIG_E=y\n", {"util.o": "arm64"})
    built_base(ctx, "f" * 40, "dddddddddddd", arch, "CONFIG_A=y\nCONFIG_B=y\nCONFIG_E=y\n", {"util.o": "other"})
    new_config = tmp_path / "new.config"
    new_config.write_text("CONFIG_A=y\nCONFIG_B=y\nCONFIG_E=y\n# CONFIG_C is not set\n")
    target = build.lane_dirs(ctx, base_builds(base, "eeeeeeeeeeee"), arch)[1]
    assert seed.nearest(ctx, wt, arch, target, base, new_config, "base-x86_64")
    assert (target / "util.o").read_text() == "near"  # 1 option differs (E); from the other, 3
    (target / "util.o").write_text("rebuilt")
    assert (near / "util.o").read_text() == "near"  # a copy: the new config's make never writes another's
    log = (tmp_path / "run" / "commands.log").read_text()
    assert "cp -a" in log
    other = build.lane_dirs(ctx, base_builds(base, "ffffffffffff"), arm)[1]
    sh4 = config.resolve_arch("sh4")
    assert not seed.nearest(ctx, wt, sh4, build.lane_dirs(ctx, base_builds(base, "999999999999"), sh4)[1], base,
                            new_config, "base-sh4")  # no build of the base on this arch: from nothing
    assert seed.nearest(ctx, wt, arm, other, base, new_config, "base-arm64")
    assert (other / "util.o").read_text() == "arm64"


def test_each_arch_and_config_of_a_base_has_its_own_directory_lock(tmp_path):
    """A build of one arch's base never waits for another arch's, nor for another config's."""
    from pipeline.infra import locks

    names = {locks.dirs(base_builds("a" * 40, c), a) for c in ("1" * 20, "2" * 20) for a in ("x86_64", "arm64")}
    assert len(names) == 4 and locks.dirs(base_tree("a" * 40)) not in names
    with locks.hold(tmp_path, locks.dirs(base_builds("a" * 40, "1" * 20), "x86_64")):
        with locks.attempt(tmp_path, locks.dirs(base_builds("a" * 40, "1" * 20), "arm64")) as held:
            assert held
        with locks.attempt(tmp_path, locks.dirs(base_builds("a" * 40, "1" * 20), "x86_64")) as held:
            assert not held


def test_a_series_build_is_never_the_nearest_config_of_a_base(tmp_path):
    """Only the base's own builds seed another config's: a directory that merely begins with the
    base's name (no kseries name can: config.load_series refuses 'base-' names) is passed over."""
    ctx = ctx_for(tmp_path)
    repo, base = base_repo(tmp_path, {"util.c": "int x;\n"})
    arch = config.resolve_arch("x86_64")
    wt, _ = worktree.kept(ctx, repo, base_tree(base), base)
    planted = build.lane_dirs(ctx, base_tree(base) + "-evil", arch)[1]
    (planted / arch.kernel.image_path).parent.mkdir(parents=True)
    (planted / arch.kernel.image_path).write_text("kernel")
    (planted / ".config").write_text("CONFIG_A=y\n")
    new_config = tmp_path / "new.config"
    new_config.write_text("CONFIG_A=y\n")
    assert not seed.nearest(ctx, wt, arch, build.lane_dirs(ctx, base_builds(base, CONFIG), arch)[1], base,
                            new_config, "base-x86_64")
