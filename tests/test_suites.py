"""Suites as data: selection per arch with reasons, console framing, nolibc-test parsing."""

import pytest

from pipeline.model import config
from pipeline.stages import suites
from pipeline.infra.errors import UserError
from pipeline.stages.parsers import nolibc
from pipeline.model.results import Status

NOLIBC_OUTPUT = """\
Running test 'startup'
0 argc = 1                                                        [OK]
1 argv_addr = <0x7ffd>                                            [OK]
Errors during this test: 0

Running test 'syscall'
0 getpid = 1                                                      [OK]
12 mmap_bad = <0xffffffffffffffff> -1 EINVAL                      [OK]
13 munmap_bad = -1 EINVAL  != (0)                                [FAIL]
14 chroot_root                                               [SKIPPED]
15 getpid = 1                                                     [OK]
[    2.345678] random: crng init done
Errors during this test: 1
"""


def test_nolibc_lines_become_cases_with_group_and_detail():
    got = nolibc(NOLIBC_OUTPUT.splitlines())
    assert [(n, s) for n, s, _, _ in got] == [
        ("startup.argc", Status.PASS), ("startup.argv_addr", Status.PASS),
        ("syscall.getpid", Status.PASS), ("syscall.mmap_bad", Status.PASS),
        ("syscall.munmap_bad", Status.FAIL), ("syscall.chroot_root", Status.SKIP),
        ("syscall.getpid", Status.PASS)]
    assert got[4][2] == "= -1 EINVAL != (0)"
    assert "skipped" in got[5][2]


def _console(body: str, end: str | None = "exit 0") -> list[str]:
    lines = ["[ 0.5] Run /init as init process", "kseries-init: reached userspace: Linux 7.2 x86_64",
             "kseries-init: suite nolibc start", *body.splitlines()]
    if end:
        lines.append(f"kseries-init: suite nolibc {end}")
    return lines + ["kseries-init: done"]


def test_results_name_cases_uniquely_and_keep_failures():
    suite = config.load_suite("nolibc")
    cases = suites.results(suite, "x86_64", _console(NOLIBC_OUTPUT, "exit 1"))
    names = [c.name for c in cases]
    assert "x86_64: nolibc: syscall.getpid#2" in names
    assert len(names) == len(set(names)) == 7
    failed = [c for c in cases if c.status == Status.FAIL]
    assert [c.name for c in failed] == ["x86_64: nolibc: syscall.munmap_bad"]


def test_suite_cut_short_is_a_failure_of_the_lane():
    suite = config.load_suite("nolibc")
    cases = suites.results(suite, "sh4", _console(NOLIBC_OUTPUT, end=None))
    assert cases[-1].name == "sh4: nolibc: finished" and cases[-1].status == Status.FAIL
    never = suites.results(suite, "sh4", ["Kernel panic - not syncing: VFS"])
    assert [c.status for c in never] == [Status.FAIL] and "never started" in never[0].message


def test_nonzero_exit_without_a_parsed_failure_is_not_hidden():
    suite = config.load_suite("nolibc")
    body = NOLIBC_OUTPUT.replace("[FAIL]", "[OK]")
    cases = suites.results(suite, "arm64", _console(body, "signal 11"))
    assert cases[-1].status == Status.FAIL and "signal 11" in cases[-1].message
    silent = suites.results(suite, "arm64", _console("garbage\n", "exit 0"))
    assert [c.status for c in silent] == [Status.ERROR]


def test_selection_reports_reasons_for_arches_that_do_not_run_a_suite():
    spec = config.load_series("page_mapped")
    sh4 = config.resolve_arch("sh4")
    runs, skips = suites.selected(spec, sh4)
    assert [s.name for s in runs] == ["nolibc", "kunit"]
    assert {s.name: why for s, why in skips}["kselftest"].startswith("no shell for run_kselftest.sh")
    plain = config.Arch(**{**sh4.__dict__, "suites": {}})
    runs, skips = suites.selected(spec, plain)
    assert runs == [] and "does not declare the suite 'nolibc'" in skips[0][1]


def test_manifest_lists_suite_results_file_and_argv_with_selection():
    x86 = config.resolve_arch("x86_64")
    assert suites.manifest([config.load_suite("nolibc")], x86) == "nolibc - /bin/nolibc-test\n"
    arena = config.load_suite("bpf_arena")
    line = suites.manifest([arena], x86).split()
    assert line[:2] == ["bpf_arena", arena.results]
    assert line[line.index(arena.allow_flag) + 1] == ",".join(arena.allow)
    # KUnit runs in the kernel before init: no line; kselftest runs its wrapper with the chosen tests
    assert suites.manifest([config.load_suite("kunit"), config.load_suite("kselftest")], x86) == \
        "kselftest - /bin/sh /kseries/kselftest.sh\n"


def test_results_file_is_cut_from_the_console():
    lines = _console("#1 a:OK", "exit 0")
    lines.insert(-1, "kseries-init: suite nolibc file-begin /tmp/r.json")
    lines.insert(-1, '{"success": 1,')
    lines.insert(-1, '"failed": 0}')
    lines.insert(-1, "kseries-init: suite nolibc file-end")
    part = suites.split_console(lines)["nolibc"]
    assert part["end"] == "exit 0" and part["lines"] == ["#1 a:OK"]
    assert part["file"] == '{"success": 1,\n"failed": 0}'


def test_unknown_suite_is_a_user_error():
    with pytest.raises(UserError, match="Unknown test suite 'nolibcc'.*Known suites: .*nolibc"):
        config.load_suite("nolibcc")


TEST_PROGS_OUT = """\
#5/1     arena_htab/arena_htab_llvm:OK
#5/2     arena_htab/arena_htab_asm:OK
#5       arena_htab:OK
#6       arena_list:FAIL
#7       arena_spin_lock:SKIP
Summary: 1/2 PASSED, 1 SKIPPED, 1 FAILED

All error logs:
#6       arena_list:FAIL
"""
TEST_PROGS_JSON = ('{"success": 2, "success_subtest": 2, "skipped": 1, "failed": 1, "results": ['
                   '{"name": "arena_list", "number": 6, "message": "test_arena_list:FAIL:expected 5 got 4\\n", '
                   '"failed": true, "subtests": []}]}')


def test_test_progs_lines_and_json_agree():
    from pipeline.stages.parsers import test_progs_json

    got = test_progs_json(TEST_PROGS_OUT.splitlines(), TEST_PROGS_JSON)
    assert [(n, s) for n, s, _, _ in got] == [
        ("arena_htab/arena_htab_llvm", Status.PASS), ("arena_htab/arena_htab_asm", Status.PASS),
        ("arena_htab", Status.PASS), ("arena_list", Status.FAIL), ("arena_spin_lock", Status.SKIP)]
    assert got[3][2] == "test_arena_list:FAIL:expected 5 got 4"


def test_test_progs_mangled_or_missing_json_is_unreadable():
    from pipeline.stages.parsers import Unreadable, test_progs_json

    with pytest.raises(Unreadable, match="no JSON"):
        test_progs_json(TEST_PROGS_OUT.splitlines(), None)
    with pytest.raises(Unreadable, match="incomplete"):
        test_progs_json(TEST_PROGS_OUT.splitlines()[3:], TEST_PROGS_JSON)


def test_selected_test_that_did_not_run_fails():
    arena = config.load_suite("bpf_arena")
    lines = ["kseries-init: suite bpf_arena start", *TEST_PROGS_OUT.splitlines(),
             "kseries-init: suite bpf_arena exit 1", "kseries-init: suite bpf_arena file-begin /tmp/x",
             TEST_PROGS_JSON, "kseries-init: suite bpf_arena file-end"]
    cases = suites.results(arena, "x86_64", lines)
    missing = [c for c in cases if "did not run" in c.message]
    assert {c.name for c in missing} >= {"x86_64: bpf_arena: arena_atomics", "x86_64: bpf_arena: verifier_arena"}
    assert all(c.status == Status.FAIL for c in missing)


def test_skip_in_a_must_run_suite_is_an_error_not_a_pass():
    arena = config.load_suite("bpf_arena")
    assert arena.must_run  # the lean kernel config must run every selected arena test
    lines = ["kseries-init: suite bpf_arena start", *TEST_PROGS_OUT.splitlines(),
             "kseries-init: suite bpf_arena exit 1", "kseries-init: suite bpf_arena file-begin /tmp/x",
             TEST_PROGS_JSON, "kseries-init: suite bpf_arena file-end"]
    cases = {c.name: c for c in suites.results(arena, "x86_64", lines)}
    skipped = cases["x86_64: bpf_arena: arena_spin_lock"]
    assert skipped.status == Status.ERROR and "requires every selected test to run" in skipped.message
    nolibc_suite = config.load_suite("nolibc")
    lines = ["kseries-init: suite nolibc start", *NOLIBC_OUTPUT.splitlines(), "kseries-init: suite nolibc exit 1"]
    got = {c.name: c.status for c in suites.results(nolibc_suite, "sh4", lines)}
    assert got["sh4: nolibc: syscall.chroot_root"] == Status.SKIP  # nolibc may skip


def test_a_test_whose_program_was_not_built_is_a_skip_saying_why():
    """The suite's build named what it could not build; a test whose script then could not start
    that program tested nothing: SKIP with the reason (not a FAIL on base and series alike)."""
    from pipeline.model.results import Case

    def case(test, detail, status=Status.FAIL):
        return Case("suite", test, status, 0, "failed", detail, "x86_64", suite="kselftest")

    cases = [case("mm:ksft_rmap.sh.rmap", "# running ./rmap\n# ./run_vmtests.sh: line 230: ./rmap: No such file or directory"),
             case("mm:ksft_mmap.sh.map_populate", "socketpair(): Address family not supported by protocol"),
             case("mm:ksft_rmap.sh.rmap_other", "sh: ./rmapx: not found"),
             case("net:ksft_rmap.sh.rmap", "./rmap: No such file or directory")]
    got = suites.not_built(cases, {"mm:rmap": "not built: the toolchain image lacks numa.h"})
    assert [c.status for c in got] == [Status.SKIP, Status.FAIL, Status.FAIL, Status.FAIL]
    assert got[0].message == ("not run: mm/rmap was not built (not built: the toolchain image lacks numa.h); "
                              "the test could not start it")


def test_the_retry_boot_runs_only_for_failures_the_base_does_not_have(tmp_path, monkeypatch):
    """A base's failures are pre-existing for the series whatever their flakiness: the base's guest
    is not run again; the series' runs again only for a test that did not fail on the base. The
    base's console is read where its result says, or (a base lane taken from the lane cache, whose
    run is gone) from this run's base lane directory."""
    from pathlib import Path
    from types import SimpleNamespace

    from pipeline.model.lane import Role
    from pipeline.stages import boot

    consoles = {"base": {("kselftest", "mm:a"), ("kselftest", "mm:b")}, "series": {("kselftest", "mm:a")},
                "clean base": set()}
    monkeypatch.setattr(suites, "failed", lambda work, console: consoles[console[0]])
    monkeypatch.setattr(boot, "_boot_lane", lambda work, name: f"booted again: {name}")
    run_dir = tmp_path / "run"
    (run_dir / "base-x86_64").mkdir(parents=True)

    def console(text, where):
        where.parent.mkdir(parents=True, exist_ok=True)
        where.write_text(text + "\n")
        return str(where)

    def work(role, base_console="base", gone=False):
        mine = console(role, run_dir / role / "console.log")
        theirs = console(base_console, tmp_path / ("gone" if gone else "other") / "console.log")
        if gone:  # the lane cache's run directory is gone; this run's base lane holds the copy
            (run_dir / "base-x86_64" / "console.log").write_text(base_console + "\n")
            Path(theirs).unlink()
        first = SimpleNamespace(status=Status.PASS, artifacts={"console": mine})
        other = SimpleNamespace(status=Status.PASS, artifacts={"console": theirs})
        return SimpleNamespace(need=lambda stage: first, other=lambda stage, r: other if r is Role.BASE else None,
                               lane=SimpleNamespace(is_base=role == "base", name=role, run_dir=run_dir,
                                                    arch=SimpleNamespace(name="x86_64")),
                               ctx=SimpleNamespace(progress=SimpleNamespace(say=lambda *a: None)))

    base = boot.retry(work("base"))
    assert base.status == Status.SKIP and "pre-existing" in base.message
    series = boot.retry(work("series"))
    assert series.status == Status.SKIP and "fail on the base too" in series.message
    assert boot.retry(work("series", "base", gone=True)).status == Status.SKIP
    assert boot.retry(work("series", "clean base")) == "booted again: console-retry"
