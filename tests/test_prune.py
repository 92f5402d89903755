"""The cache stays within its budget: least recently used series and bases go first, with all
their directories (steps, spares, compiler cache, worktree records), never one a run holds or
the run's own, and a bad budget is a one-paragraph error."""

import os
import subprocess
import time

import pytest

from pipeline.infra import locks, prune
from pipeline.infra.errors import UserError
from test_apply import ctx_for

MiB = 2**20


def fill(path, mib: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(mib * MiB))


def used(cache, name: str, age: float) -> None:
    prune.touch(cache, name)
    then = time.time() - age
    os.utime(cache / prune.USED / name, (then, then))


def names(cache) -> set[str]:
    return set(prune.kept(cache))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    ctx = ctx_for(tmp_path)
    c = ctx.cache
    for name, age in (("oldest", 3000), ("older", 2000), ("base-aaaaaaaaaaaa", 1000), ("recent", 10)):
        fill(c / "build" / name / "x86_64" / "out" / "vmlinux", 2)
        used(c, name, age)
    fill(c / "build" / "oldest+steps" / "x86_64" / "out" / "vmlinux", 1)  # its steps' O=
    fill(c / "ccache-series" / "oldest" / "a", 1)
    (c / "trees" / "oldest+steps-x86_64").mkdir(parents=True)
    fill(c / "build" / ".spare" / "base-aaaaaaaaaaaa" / "x86_64" / "out" / "vmlinux", 2)  # the base's spare
    monkeypatch.setenv("KSERIES_CACHE_FREE", "0")
    return ctx


def test_the_least_recently_used_go_first_with_all_their_directories_until_within_budget(cache, monkeypatch):
    c = cache.cache
    monkeypatch.setenv("KSERIES_CACHE_MAX", "7M")  # 12 MiB held: the oldest (4 MiB) is not enough
    assert prune.prune(cache, "recent") == ["oldest", "older"]
    assert names(c) == {"base-aaaaaaaaaaaa", "recent"}
    assert not list(c.glob("*/oldest*")) and not (c / prune.USED / "oldest").exists()
    assert (c / "build" / ".spare" / "base-aaaaaaaaaaaa").exists()
    log = (cache.run_dir / "commands.log").read_text()
    assert "removed oldest (last used " in log and "4 MiB freed" in log
    kept_log = (c / prune.USED / prune.PRUNED).read_text()  # outlives the detached process's own log
    assert "removed oldest (last used " in kept_log and "removed older " in kept_log
    assert prune.prune(cache, "recent") == []  # checked a moment ago: not summed again so soon
    assert not prune.due(c)


def test_what_a_run_holds_and_what_the_run_spares_are_never_removed(cache, monkeypatch):
    c = cache.cache
    monkeypatch.setenv("KSERIES_CACHE_MAX", "1M")  # everything would have to go
    fill(c / "build" / "base-aaaaaaaaaaaa-0123456789" / "arm64" / "out" / "vmlinux", 1)  # a config's build
    used(c, "base-aaaaaaaaaaaa-0123456789", 5000)
    with locks.hold(c, locks.dirs("older", "arm64")):  # a run is building it, on one arch
        gone = prune.prune(cache, "recent", "base-aaaaaaaaaaaa", "base-aaaaaaaaaaaa-0123456789")
    assert gone == ["oldest"] and names(c) == {"older", "base-aaaaaaaaaaaa", "base-aaaaaaaaaaaa-0123456789", "recent"}


def test_a_disk_short_of_free_space_prunes_even_within_the_size_budget(cache, monkeypatch):
    monkeypatch.setenv("KSERIES_CACHE_MAX", "1T")
    monkeypatch.setenv("KSERIES_CACHE_FREE", "1000T")  # no disk has that: prune all it may
    assert prune.due(cache.cache)
    assert prune.prune(cache, "recent") == ["oldest", "older", "base-aaaaaaaaaaaa"]


def test_within_budget_nothing_goes(cache, monkeypatch):
    monkeypatch.setenv("KSERIES_CACHE_MAX", "1G")
    assert prune.prune(cache) == [] and len(names(cache.cache)) == 4


def test_a_removed_worktree_leaves_no_record_in_git_and_linked_files_count_nothing(tmp_path, monkeypatch):
    ctx = ctx_for(tmp_path)
    repo = ctx.cache / "git" / "linux.git"
    subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True)
    work = tmp_path / "w"
    subprocess.run(["git", "clone", "-q", str(repo), str(work)], check=True, capture_output=True)
    fill(work / "big", 2)
    subprocess.run(["git", "-C", str(work), "add", "."], check=True)
    subprocess.run(["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c"],
                   check=True)
    subprocess.run(["git", "-C", str(work), "push", "-q", "origin", "HEAD:refs/heads/main"], check=True)
    wt = ctx.cache / "trees" / "gone"
    subprocess.run(["git", "-C", str(repo), "worktree", "add", "-q", "--detach", str(wt), "main"], check=True)
    os.link(wt / "big", tmp_path / "elsewhere")  # a link another tree holds: removing wt frees none of it
    assert prune.freed_by([wt]) < MiB
    used(ctx.cache, "gone", 100)
    monkeypatch.setenv("KSERIES_CACHE_MAX", "1K")
    monkeypatch.setenv("KSERIES_CACHE_FREE", "0")
    assert prune.prune(ctx) == ["gone"] and not wt.exists()
    listed = subprocess.run(["git", "-C", str(repo), "worktree", "list"], capture_output=True, text=True).stdout
    assert str(wt) not in listed


def test_a_budget_that_is_not_a_size_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("KSERIES_CACHE_MAX", "lots")
    with pytest.raises(UserError) as err:
        prune.budget()
    assert "KSERIES_CACHE_MAX='lots' is not a size" in err.value.message and "80G" in err.value.message


def test_a_base_whose_spare_a_live_process_is_making_is_left_alone(cache, monkeypatch):
    c = cache.cache
    (c / "trees" / ".spare" / f"oldest.making-{os.getpid()}").mkdir(parents=True)  # "this" process makes it
    monkeypatch.setenv("KSERIES_CACHE_MAX", "1M")
    assert "oldest" not in prune.prune(cache, "recent")
    assert (c / "build" / "oldest").exists() and (c / "trees" / ".spare" / f"oldest.making-{os.getpid()}").exists()


def test_the_least_recently_used_config_of_a_base_goes_and_the_one_in_use_stays(cache, monkeypatch):
    """Each config's base build directory is its own name: the least recently used goes first, never
    one a run holds (its arch's directory lock), even when it is older."""
    c = cache.cache
    for config, age in (("1111111111", 9000), ("2222222222", 8000), ("3333333333", 5)):
        fill(c / "build" / f"base-aaaaaaaaaaaa-{config}" / "x86_64" / "out" / "vmlinux", 2)
        used(c, f"base-aaaaaaaaaaaa-{config}", age)
    from pipeline.infra import diskwatch

    monkeypatch.setenv("KSERIES_CACHE_MAX", str(diskwatch.size(c) - MiB))  # one 2 MiB directory must go
    with locks.hold(c, locks.dirs("base-aaaaaaaaaaaa-1111111111", "x86_64")):
        gone = prune.prune(cache, "recent")
    assert gone == ["base-aaaaaaaaaaaa-2222222222"]
    assert (c / "build" / "base-aaaaaaaaaaaa-1111111111").exists() and (c / "build" / "base-aaaaaaaaaaaa-3333333333").exists()
