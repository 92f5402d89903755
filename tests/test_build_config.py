"""Kernel config as data: fragment options must all land in the final .config."""

import dataclasses

from pipeline.stages import build
from pipeline.model import config


def test_missing_options_are_named():
    wanted = build.parse_config("CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"x\"\nCONFIG_D=y\n")
    final = build.parse_config("CONFIG_A=y\nCONFIG_B=y\nCONFIG_C=\"x\"\n# CONFIG_D is not set\n")
    assert build.missing_options(wanted, final) == ["CONFIG_B=n (got y)", "CONFIG_D=y (got not set)"]


def test_make_argv_comes_from_arch_data():
    arch = config.resolve_arch("sh")
    assert build.make_argv(arch, "/out", "zImage", jobs=2, ccache=True) == [
        "make", "O=/out", "ARCH=sh", "CROSS_COMPILE=sh4-linux-gnu-", "CC=ccache sh4-linux-gnu-gcc", "-j2", "zImage"]


def test_fragments_are_arch_then_series_then_suites_that_run_there():
    spec = config.load_series("page_mapped")
    spec = dataclasses.replace(spec, tests=("boot", "nolibc", "bpf_arena"))
    names = [p.name for p in build.fragments_for(config.resolve_arch("x86_64"), spec)]
    assert names == ["boot.config", "x86_64.config", "bpf-syscall.config", "nolibc.config", "bpf-arena.config"]
    names = [p.name for p in build.fragments_for(config.resolve_arch("sh4"), spec)]
    assert names == ["boot.config", "sh4.config", "bpf-syscall.config", "nolibc.config"]


def test_objects_a_killed_make_wrote_are_not_trusted(tmp_path):
    import os
    import time as time_

    from pipeline.infra.runner import Runner
    from pipeline.stages.build import scrub

    out = tmp_path / "out"
    (out / "mm").mkdir(parents=True)
    old, half = out / "mm" / "rmap.o", out / "mm" / "memory.o"
    old.write_bytes(b"complete")
    os.utime(old, (1000, 1000))  # from an earlier, finished make
    began = time_.time()
    half.write_bytes(b"half-writ")  # being written when make was killed
    (out / "mm" / ".memory.o.cmd").write_text("savedcmd_mm/memory.o := gcc $(wildcard")  # cut: make would stop
    (out / "mm" / ".rmap.o.cmd").write_text("savedcmd_mm/rmap.o := gcc -c\n")
    os.utime(out / "mm" / ".rmap.o.cmd", (1000, 1000))

    class Ctx:
        runner = Runner()

    assert scrub(Ctx(), out, began) == 2
    assert old.exists() and not half.exists()
    assert not (out / "mm" / ".memory.o.cmd").exists() and (out / "mm" / ".rmap.o.cmd").exists()


def test_a_kbuild_record_a_killed_make_left_cut_is_found_and_a_series_makefile_is_not(tmp_path):
    from pipeline.stages.build import unreadable_records

    out = tmp_path / "out"
    (out / "fs").mkdir(parents=True)
    (out / "fs" / ".namespace.o.cmd").write_text("savedcmd_fs/namespace.o := gcc $(wildcard")
    log = tmp_path / "build.log"
    log.write_text("  INSTALL libsubcmd_headers\n"
                   "fs/.namespace.o.cmd:5: *** unterminated call to function 'wildcard': missing ')'.  Stop.\n"
                   "/src/mm/Makefile:3: *** missing separator.  Stop.\n"
                   "make[1]: *** [/src/Makefile:260: __sub-make] Error 2\n")
    assert unreadable_records(out, log) == [out / "fs" / ".namespace.o.cmd"]  # the series' Makefile is its own


def test_a_build_says_what_make_took_and_a_long_wait_before_it_apart():
    from pipeline.stages.build import built_in

    assert built_in(21.0, 19.5, 45) == "built in 20 s (45 kbuild steps)"
    assert built_in(398.0, 20.0, 45) == ("built in 20 s (45 kbuild steps); make started after 378 s "
                                         "(config, O= seeding, lock waits)")
