"""A suite built once for base and series when what decides its binaries is the same (real git, a
real ELF section; the suite build itself faked)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from pipeline.model import config
from pipeline.model.lane import Lane, Role
from pipeline.model.results import Case, Status
from pipeline.stages import elf, userspace
from test_apply import ctx_for, git


def test_section_digest_reads_what_objcopy_dumps(tmp_path):
    exe = Path(shutil.which("ls") or sys.executable).resolve()
    subprocess.run(["objcopy", "--dump-section", f".text={tmp_path / 'text'}", str(exe), str(tmp_path / 'out')],
                   check=True, capture_output=True)
    assert elf.section_digest(exe, ".text") == hashlib.sha256((tmp_path / "text").read_bytes()).hexdigest()
    assert elf.section_digest(exe, ".no-such-section") == ""
    assert elf.section_digest(tmp_path / "text", ".text") == ""  # not an ELF file


def tree(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    for path in ("tools/testing/t.c", "scripts/s.sh", "Makefile", "include/uapi/u.h", "mm/rmap.c"):
        (src / path).parent.mkdir(parents=True, exist_ok=True)
        (src / path).write_text(f"{path}\n")
    git(src, "init", "-q")
    git(src, "add", ".")
    git(src, "commit", "-qm", "base")
    return src


def test_the_base_s_build_serves_a_series_with_the_same_inputs_only(tmp_path, monkeypatch):
    src, kbuild = tree(tmp_path), tmp_path / "O"
    kbuild.mkdir()
    (kbuild / ".config").write_text("CONFIG_BPF=y\n")
    arch, suite = config.resolve_arch("x86_64"), config.load_suite("nolibc")
    ctx = ctx_for(tmp_path)
    built = []

    def fake_build(work, image, kb, s, where):
        built.append(work.lane.role)
        assert where == ("base-" + "0" * 12 if work.lane.role is Role.BASE else "s")  # a base's suites: per base
        rootfs = tmp_path / f"out-{len(built)}" / "rootfs"
        (rootfs / "bin").mkdir(parents=True)
        (rootfs / "bin" / "nolibc-test").write_text(f"build {len(built)}")
        return Case("userspace", "build nolibc", Status.PASS, 1.0, "built"), rootfs

    monkeypatch.setattr(userspace, "_build", fake_build)

    def work(role):
        return SimpleNamespace(ctx=ctx, arch=arch, src=src, lane=Lane(arch, role, tmp_path / "run"), builds="s",
                               need=lambda stage: SimpleNamespace(artifacts={"commit": "0" * 40}))

    case, base_rootfs = userspace.build(work(Role.BASE), "img", kbuild, suite)
    case, rootfs = userspace.build(work(Role.SERIES), "img", kbuild, suite)  # kernel code changes: same key
    assert built == [Role.BASE] and "reused the base's build" in case.message
    assert (rootfs / "bin" / "nolibc-test").read_text() == "build 1"
    assert base_rootfs == rootfs == userspace.shared(ctx, case.message.split("build ")[1].split(":")[0])  # the kept copy

    (src / "mm" / "rmap.c").write_text("changed kernel code\n")
    git(src, "commit", "-qam", "kernel code only")
    assert userspace.build(work(Role.SERIES), "img", kbuild, suite)[0].message.startswith("reused")

    (src / "tools" / "testing" / "t.c").write_text("a changed test\n")
    git(src, "commit", "-qam", "the test changes")
    case, rootfs = userspace.build(work(Role.SERIES), "img", kbuild, suite)
    assert built == [Role.BASE, Role.SERIES] and case.message == "built"
    userspace.build(work(Role.SERIES), "img", kbuild, suite)  # a series' own build is never kept for others
    assert built == [Role.BASE, Role.SERIES, Role.SERIES]

    (kbuild / ".config").write_text("CONFIG_BPF=y\nCONFIG_NET=y\n")
    git(src, "revert", "--no-edit", "HEAD")
    userspace.build(work(Role.SERIES), "img", kbuild, suite)  # another config: not the base's inputs
    assert len(built) == 4
