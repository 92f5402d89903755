"""The real tier's own cache (ci/tier_cache.py): seeded from the user's, never writing back."""

import os

from ci import tier_cache


def make_user_cache(root):
    (root / "git" / "linux.git" / "objects" / "pack").mkdir(parents=True)
    (root / "git" / "linux.git" / "objects" / "pack" / "p.pack").write_text("pack")
    (root / "git" / "linux.git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / "git" / "linux.git" / "FETCH_HEAD").write_text("abc\n")
    (root / "downloads").mkdir()
    (root / "downloads" / "linux.tar.xz").write_text("tar")
    (root / "steps").mkdir()
    (root / "steps" / "k1.json").write_text('{"user": 1}')
    (root / "steps" / "k2.json").write_text('{"user": 2}')
    out = root / "build" / "base-abc" / "x86_64" / "out"
    out.mkdir(parents=True)
    (out / "vmlinux.o").write_text("obj")
    os.utime(out / "vmlinux.o", (1_000_000, 1_000_000))
    (root / "build" / "someseries" / "x86_64").mkdir(parents=True)
    (root / "trees" / "someseries").mkdir(parents=True)
    (root / "kvm-probe.json").write_text("{}")


def test_seeding_links_what_never_changes_copies_the_rest_and_keeps_what_the_tier_has(tmp_path):
    user, own = tmp_path / "kseries", tmp_path / "kseries-tests"
    make_user_cache(user)
    (own / "steps").mkdir(parents=True)
    (own / "steps" / "k1.json").write_text('{"tier": 1}')  # the tier's own entry wins
    seeded = tier_cache.seed(user, own)
    assert "build/base-abc" in seeded and "git/linux.git" in seeded and "steps/k2.json" in seeded
    assert (own / "steps" / "k1.json").read_text() == '{"tier": 1}'
    assert (own / "steps" / "k2.json").read_text() == '{"user": 2}'
    ino = lambda p: p.stat().st_ino  # noqa: E731
    pack = "git/linux.git/objects/pack/p.pack"
    assert ino(own / pack) == ino(user / pack)  # git objects: hard links
    assert ino(own / "git/linux.git/FETCH_HEAD") != ino(user / "git/linux.git/FETCH_HEAD")  # fetch rewrites it
    assert ino(own / "downloads/linux.tar.xz") == ino(user / "downloads/linux.tar.xz")
    obj = "build/base-abc/x86_64/out/vmlinux.o"
    assert ino(own / obj) != ino(user / obj)  # make rewrites objects in place: a copy
    assert (own / obj).stat().st_mtime == 1_000_000  # with its mtime, so make sees it up to date
    assert not (own / "build" / "someseries").exists() and not (own / "trees").exists()
    assert not list(own.rglob("*.seeding"))
    assert tier_cache.seed(user, own) == []  # nothing left to seed


def test_the_tier_never_writes_into_the_users_cache(tmp_path):
    user, own = tmp_path / "kseries", tmp_path / "kseries-tests"
    make_user_cache(user)
    before = sorted((p.relative_to(user), p.stat().st_mtime_ns) for p in user.rglob("*"))
    tier_cache.seed(user, own)
    (own / "steps" / "k2.json").write_text("changed by a test")
    (own / "git/linux.git/FETCH_HEAD").write_text("changed by a fetch")
    assert sorted((p.relative_to(user), p.stat().st_mtime_ns) for p in user.rglob("*")) == before
    assert (user / "steps" / "k2.json").read_text() == '{"user": 2}'


def test_the_tier_cache_sits_beside_the_users_unless_named(tmp_path, monkeypatch):
    monkeypatch.delenv("KSERIES_TEST_CACHE", raising=False)
    assert tier_cache.tier_cache(tmp_path / "kseries") == tmp_path / "kseries-tests"
    monkeypatch.setenv("KSERIES_TEST_CACHE", str(tmp_path / "elsewhere"))
    assert tier_cache.tier_cache(tmp_path / "kseries") == tmp_path / "elsewhere"
    assert tier_cache.seed(tmp_path / "absent", tmp_path / "own") == []
