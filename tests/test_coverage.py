"""Compile coverage from kbuild's own records: .cmd files, vmlinux.a, and the Makefile's gate."""

import os
from types import SimpleNamespace
from pathlib import Path

from pipeline.model import config
from pipeline.model.lane import Role
from pipeline.model.results import StageResult, Status
from pipeline.model.series import FileStat, Patch
from pipeline.stages import coverage
from pipeline.stages.interface import Work


def thin_archive(names: list[str]) -> bytes:
    table = "".join(f"{n}/\n" for n in names).encode()
    return b"!<thin>\n" + b"//".ljust(48) + str(len(table)).encode().ljust(10) + b"`\n" + table


def out_dir(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    (out / "mm").mkdir(parents=True)
    (out / ".config").write_text("CONFIG_MMU=y\n")
    (out / "mm" / ".rmap.o.cmd").write_text("source_mm/rmap.o := /src/mm/rmap.c\ndeps_mm/rmap.o := \\\n"
                                            "  /src/include/linux/mm.h \\\n  /src/include/linux/rmap.h \\\n")
    (out / "mm" / ".memory.o.cmd").write_text("deps_mm/memory.o := \\\n  /src/include/linux/mm.h \\\n")
    stale = out / "mm" / ".old.o.cmd"  # from an earlier config, not linked now
    stale.write_text("deps_mm/old.o := \\\n  /src/include/linux/mm.h \\\n")
    os.utime(stale, (1, 1))
    (out / "vmlinux.a").write_bytes(thin_archive(["mm/rmap.o", "mm/memory.o"]))
    return out


def test_compiled_sources_and_includers_come_from_kbuild_records(tmp_path):
    out = out_dir(tmp_path)
    assert coverage.archive_members(out) == {"mm/rmap.o", "mm/memory.o"}
    compiled, headers = coverage.scan(out, ["mm/rmap.c", "mm/old.c", "kernel/bpf/arena.c", "include/linux/mm.h"])
    assert compiled == ["mm/rmap.c"]
    assert headers == {"include/linux/mm.h": 2}  # the stale object does not count


def test_summary_names_lanes_gates_and_foreign_arches(tmp_path):
    tree = tmp_path / "tree"
    (tree / "kernel" / "bpf").mkdir(parents=True)
    (tree / "kernel" / "bpf" / "Makefile").write_text("obj-$(CONFIG_BPF_SYSCALL) += arena.o syscall.o\n")
    files = ["mm/rmap.c", "kernel/bpf/arena.c", "arch/mips/mm/cache.c", "include/linux/mm.h"]
    patch = Patch(1, 1, "x", "a", tmp_path / "p", tuple(FileStat(f, 1, 1) for f in files))
    results = {("apply", "", Role.SERIES, ""): StageResult("apply", "", Role.SERIES, Status.PASS, 0,
                                                             artifacts={"worktree": str(tree)}),
               ("compiled", "x86_64", Role.SERIES, ""): StageResult(
                   "compiled", "x86_64", Role.SERIES, Status.PASS, 0,
                   facts={"compiled": ["mm/rmap.c"], "includers": {"include/linux/mm.h": 754}})}
    work = Work(None, None, [patch], None, lambda *k: results.get(k), arches=(config.resolve_arch("x86_64"),))
    out = coverage.summary(work)
    got = {c.test: (c.status, c.message) for c in out.cases}
    assert got["mm/rmap.c"] == (Status.PASS, "compiled on x86_64")
    assert got["include/linux/mm.h"] == (Status.PASS, "included by 754 object(s) on x86_64")
    assert got["kernel/bpf/arena.c"][0] == Status.FAIL
    assert "CONFIG_BPF_SYSCALL (kernel/bpf/Makefile)" in got["kernel/bpf/arena.c"][1]
    assert got["arch/mips/mm/cache.c"][0] == Status.SKIP and "no lane for that arch" in got["arch/mips/mm/cache.c"][1]
    assert out.status == Status.FAIL


def test_a_patch_that_changes_nothing_the_arch_compiles_is_not_built(tmp_path):
    from pipeline.stages import per_patch

    out = out_dir(tmp_path)
    inputs = coverage.compiled_inputs(out)
    assert {"mm/rmap.c", "include/linux/mm.h", "include/linux/rmap.h"} <= inputs
    x86 = config.resolve_arch("x86_64")

    def patch(k, *paths):
        return Patch(k, 3, f"p{k}", "a", tmp_path / "p", tuple(FileStat(p, 1, 1) for p in paths))

    sh_only = per_patch._unaffected(patch(1, "arch/sh/mm/cache-sh4.c"), x86, inputs, [])
    assert sh_only.status == Status.PASS and "nothing x86_64 compiles changed" in sh_only.message
    assert per_patch._unaffected(patch(2, "kernel/bpf/arena.c"), x86, inputs, []) is not None  # not compiled here
    for relevant in (["mm/rmap.c"], ["include/linux/mm.h"], ["mm/Makefile"], ["arch/x86/Kconfig"],
                     ["tools/objtool/check.c"]):
        assert per_patch._unaffected(patch(2, *relevant), x86, inputs, []) is None, relevant
    broken = per_patch.Step(1, 3, "p1", Status.FAIL, 9.0, "make exited 2", "error: x", ["w"])
    inherited = per_patch._unaffected(patch(2, "arch/sh/mm/cache-sh4.c"), x86, inputs, [broken])
    assert inherited.status == Status.FAIL and inherited.warnings == ["w"] and "as patch 1/3" in inherited.message
    assert per_patch._unaffected(patch(2, "arch/sh/mm/cache-sh4.c"), x86, None, []) is None  # nothing known


def test_a_thin_archive_with_a_symbol_table_first(tmp_path):
    plain = thin_archive(["mm/rmap.o"])
    symtab = b"/".ljust(48) + b"8".ljust(10) + b"`\n" + b"\0" * 8
    (tmp_path / "vmlinux.a").write_bytes(plain[:8] + symtab + plain[8:])
    assert coverage.archive_members(tmp_path) == {"mm/rmap.o"}


def test_a_file_no_lane_of_the_run_can_compile_is_not_covered_rather_than_failed(tmp_path):
    """arena.c is built only on 64-bit kernels (an ifeq around its Makefile line): an sh4-only run
    cannot compile it, whatever its config, so it is SKIP with why; x86_64 could, so there it fails."""
    tree = tmp_path / "tree"
    (tree / "kernel" / "bpf").mkdir(parents=True)
    (tree / "kernel" / "bpf" / "Makefile").write_text(
        "obj-$(CONFIG_BPF_SYSCALL) += syscall.o\nifeq ($(CONFIG_MMU)$(CONFIG_64BIT),yy)\n"
        "obj-$(CONFIG_BPF_SYSCALL) += arena.o\nendif\nifneq ($(CONFIG_NOPE),y)\nobj-y += other.o\nendif\n")
    (tree / "Kconfig").write_text('source "arch/$(SRCARCH)/Kconfig"\nconfig BPF_SYSCALL\n\tbool "bpf"\n'
                                  'config MMU\n\tdef_bool y\n')
    (tree / "arch" / "x86").mkdir(parents=True)
    (tree / "arch" / "x86" / "Kconfig").write_text('config 64BIT\n\tbool "64-bit kernel"\n')
    (tree / "arch" / "sh").mkdir(parents=True)
    (tree / "arch" / "sh" / "Kconfig").write_text("config SUPERH\n\tdef_bool y\n")
    from pipeline.stages import kbuild

    assert kbuild.gates(tree, "kernel/bpf/arena.c") == ["CONFIG_BPF_SYSCALL", "CONFIG_MMU", "CONFIG_64BIT"]
    assert kbuild.gates(tree, "kernel/bpf/other.c") == []  # a negated condition adds nothing to enable
    patch = Patch(1, 1, "x", "a", tmp_path / "p", (FileStat("kernel/bpf/arena.c", 1, 1),))

    def run_on(arch_name):
        out = tmp_path / f"out-{arch_name}"
        out.mkdir()
        (out / ".config").write_text("CONFIG_BPF_SYSCALL=y\nCONFIG_64BIT=y\nCONFIG_MMU=y\n")  # another run's by now
        lane = tmp_path / "run" / arch_name
        lane.mkdir(parents=True)
        (lane / "config").write_text("CONFIG_BPF_SYSCALL=y\nCONFIG_MMU=y\n")  # the lane's own copy decides
        results = {("apply", "", Role.SERIES, ""): StageResult("apply", "", Role.SERIES, Status.PASS, 0,
                                                                 artifacts={"worktree": str(tree)}),
                   ("compiled", arch_name, Role.SERIES, ""): StageResult(
                       "compiled", arch_name, Role.SERIES, Status.PASS, 0, facts={"compiled": [], "includers": {}}),
                   ("build", arch_name, Role.SERIES, ""): StageResult(
                       "build", arch_name, Role.SERIES, Status.PASS, 0, artifacts={"out_dir": str(out)})}
        work = Work(SimpleNamespace(run_dir=tmp_path / "run"), None, [patch], None, lambda *k: results.get(k),
                    arches=(config.resolve_arch(arch_name),))
        return coverage.summary(work).cases[0]

    sh4 = run_on("sh4")
    assert sh4.status == Status.SKIP, sh4.message
    assert sh4.message.startswith("not covered: no lane of this run can compile it (sh4)")
    assert "sh4: CONFIG_64BIT is off (64BIT is defined in no Kconfig this arch reads)" in sh4.message
    x86 = run_on("x86_64")
    assert x86.status == Status.FAIL and "x86_64: CONFIG_64BIT is off" in x86.message, x86.message
