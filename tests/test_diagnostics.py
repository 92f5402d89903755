"""Build-log diagnostics: parsed, normalized so line shifts do not count, compared as sets."""

from pipeline.stages import diagnostics

STEP1 = """\
  CC      mm/rmap.o
  CC      kernel/bpf/arena.o
../kernel/bpf/arena.c:571:13: warning: unused variable 'unused' [-Wunused-variable]
  571 |         int unused;
      |             ^~~~~~
In file included from ../include/linux/mm.h:12,
                 from ../mm/rmap.c:3:
../include/linux/page.h:40:5: warning: 'x' may be used uninitialized [-Wmaybe-uninitialized]
"""
# patch 2 adds three lines above the old warning (it moves) and brings one new warning
STEP2 = """\
  CC      kernel/bpf/arena.o
../kernel/bpf/arena.c:574:13: warning: unused variable 'unused' [-Wunused-variable]
../kernel/bpf/arena.c:590:9: warning: unused variable 'another' [-Wunused-variable]
"""


def test_parse_keeps_position_but_identity_ignores_it():
    d = diagnostics.parse(STEP1)
    assert [str(x) for x in d] == [
        "kernel/bpf/arena.c:571:13: warning: unused variable 'unused' [-Wunused-variable]",
        "include/linux/page.h:40:5: warning: 'x' may be used uninitialized [-Wmaybe-uninitialized]"]
    assert (d[0].file, d[0].line, d[0].column, d[0].kind, d[0].option) == \
        ("kernel/bpf/arena.c", 571, 13, "warning", "-Wunused-variable")
    moved = diagnostics.parse(STEP2)[0]
    assert moved.key == d[0].key and moved.line != d[0].line


def test_errors_and_linker_lines():
    d = diagnostics.parse("/src/mm/memory.c:10:2: error: implicit declaration of function 'page_mapped' "
                          "[-Wimplicit-function-declaration]\nmake[3]: *** [x] Error 1\n")
    assert [(x.file, x.kind, x.option) for x in d] == [
        ("mm/memory.c", "error", "-Wimplicit-function-declaration")]


def test_state_of_a_build_dir_across_incremental_steps(tmp_path):
    s1 = diagnostics.warning_set(diagnostics.update(tmp_path, STEP1))
    s2 = diagnostics.warning_set(diagnostics.update(tmp_path, STEP2))
    assert s2 - s1 == {"kernel/bpf/arena.c: warning: unused variable 'another' [-Wunused-variable]"}
    # the header warning is remembered although step 2 did not print it (rmap.o was not recompiled)
    assert any("page.h" in k for k in s2)
    # a clean recompile of arena.c forgets its warnings
    s3 = diagnostics.warning_set(diagnostics.update(tmp_path, "  CC      kernel/bpf/arena.o\n"))
    assert not any("arena.c" in k for k in s3)


def test_objtool_modpost_and_linker_warnings_count_too(tmp_path):
    link1 = ("  LD      vmlinux.o\n"
             "vmlinux.o: warning: objtool: arena_free_pages+0x1a2: call to memset() leaves .noinstr.text section\n"
             "WARNING: modpost: vmlinux: section mismatch in reference: foo+0x10 (section: .text) -> bar\n"
             "ld: warning: arch/x86/boot/compressed/vmlinux has a LOAD segment with RWX permissions\n")
    d = diagnostics.parse(link1)
    assert [(x.file, x.message) for x in d] == [
        ("vmlinux.o", "objtool: arena_free_pages: call to memset() leaves .noinstr.text section"),
        ("modpost", "modpost: vmlinux: section mismatch in reference: foo (section: .text) -> bar"),
        ("ld", "arch/x86/boot/compressed/vmlinux has a LOAD segment with RWX permissions")]
    s1 = diagnostics.warning_set(diagnostics.update(tmp_path, link1))
    moved = link1.replace("+0x1a2", "+0x1b0")  # the code moved: the same warning
    assert diagnostics.warning_set(diagnostics.update(tmp_path, moved)) == s1
    relinked_clean = diagnostics.warning_set(diagnostics.update(tmp_path, "  LD      vmlinux.o\n"))
    assert relinked_clean == set()  # linked again without them: gone
