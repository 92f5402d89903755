"""A series' build can read the shared compiler cache but write only its own."""

from pipeline.stages import compiler_cache


def test_only_trusted_base_builds_write_the_shared_store(tmp_path):
    mounts, env = compiler_cache.mounts(tmp_path, "base-a2ddbfd1af0f", trusted=True)
    assert [(m.host, m.target, m.writable) for m in mounts] == [(tmp_path / "ccache", "/ccache", True)]
    assert "CCACHE_REMOTE_STORAGE" not in env

    mounts, env = compiler_cache.mounts(tmp_path, "page_mapped", trusted=False)
    writable = [m.host for m in mounts if m.writable]
    assert writable == [tmp_path / "ccache-series" / "page_mapped"]  # its own, nobody else's
    shared = next(m for m in mounts if m.host == tmp_path / "ccache")
    assert not shared.writable and env["CCACHE_REMOTE_STORAGE"] == f"file:{shared.target}|read-only"
    other, _ = compiler_cache.mounts(tmp_path, "another_series", trusted=False)
    assert {m.host for m in other if m.writable}.isdisjoint(writable)
