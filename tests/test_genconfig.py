"""Generated configs are kept by what decides them (stages/genconfig.py)."""

import subprocess

from pipeline.infra.context import Context
from pipeline.infra.progress import Progress
from pipeline.infra.runner import Runner
from pipeline.model import config
from pipeline.stages import genconfig


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_only_kconfig_language_files_decide_the_key(tmp_path):
    assert genconfig.decides("mm/Kconfig") and genconfig.decides("arch/x86/Kconfig.cpu")
    assert genconfig.decides("arch/x86/configs/tiny.config") and genconfig.decides("kernel/configs/tiny.config")
    assert genconfig.decides("scripts/kconfig/merge_config.sh") and genconfig.decides("arch/x86/Makefile")
    assert genconfig.decides("Makefile")
    assert not genconfig.decides("mm/memory.c") and not genconfig.decides("include/linux/mm.h")
    assert not genconfig.decides("mm/Makefile")  # which objects build, not which options exist

    repo = tmp_path / "src"
    (repo / "mm").mkdir(parents=True)
    (repo / "mm" / "Kconfig").write_text("config A\n\tbool \"a\"\n")
    (repo / "mm" / "memory.c").write_text("int x;\n")
    git(repo, "init", "-q")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "one", "--allow-empty")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    frags = tmp_path / "frag"
    frags.mkdir()
    (frags / "00-a.config").write_text("CONFIG_A=y\n")
    ctx = Context(tmp_path / "run", tmp_path / "cache", Runner(), Progress())
    x86 = config.resolve_arch("x86_64")
    key = lambda: genconfig.key(ctx, repo, "img:1", x86, frags, ["/frag/00-a.config"])  # noqa: E731
    first = key()
    (repo / "mm" / "memory.c").write_text("int y;\n")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "code")
    assert key() == first  # a code change: the same config
    (repo / "mm" / "Kconfig").write_text("config A\n\tbool \"a\"\n\tdefault y\n")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "kconfig")
    assert key() != first
    second = key()
    (frags / "00-a.config").write_text("# CONFIG_A is not set\n")
    assert key() != second  # the fragment's text
    assert genconfig.key(ctx, repo, "img:2", x86, frags, ["/frag/00-a.config"]) != key()  # the toolchain


def test_a_stored_config_is_taken_into_a_config_dir_that_does_not_exist_yet(tmp_path, monkeypatch):
    ctx = Context(tmp_path / "run", tmp_path / "cache", Runner(), Progress())
    monkeypatch.setattr(genconfig, "key", lambda *a: "k1")
    (tmp_path / "cache" / "configs").mkdir(parents=True)
    (tmp_path / "cache" / "configs" / "k1.config").write_text("CONFIG_A=y\n")
    cfg_dir = tmp_path / "build" / "new-series" / "x86_64" / "config"  # a new series: nothing kept yet
    got = genconfig.generate(ctx, "img:1", tmp_path, config.resolve_arch("x86_64"), tmp_path, [], cfg_dir,
                             tmp_path / "logs" / "config.log")
    assert got == {"CONFIG_A": "y"} and (cfg_dir / ".config").read_text() == "CONFIG_A=y\n"
    assert "generated before" in (tmp_path / "logs" / "config.log").read_text()
