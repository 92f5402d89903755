"""The test catalogue read from a kernel tree, and the selection from a series' changed paths:
on a small tree written here (hermetic), each rule of select.py on its own."""

from pathlib import Path

import pytest

from pipeline.catalogue import catalogue, kselftest, kunit, maintainers, select
from pipeline.catalogue.tree import Directory, Tree

FILES = {
    "MAINTAINERS": """
Maintainers List
----------------

LIBRARY CODE
M:	Someone <a@b>
F:	lib/*

MEMORY MAPPING
M:	Someone <a@b>
F:	mm/mprotect.c
F:	mm/mseal.c
F:	tools/testing/selftests/mm/merge.c

MEMORY MANAGEMENT - RMAP
F:	mm/rmap.c
F:	tools/testing/selftests/mm/rmap.c

THE REST
F:	*
F:	*/
""",
    "lib/Makefile": "obj-y += math/\nobj-$(CONFIG_FOO) += foo.o\n",
    "lib/foo.c": "int foo(void) { return 1; }\n",
    "lib/math/Makefile": "obj-$(CONFIG_RATIONAL) += rational.o\nobj-y += tests/\n",
    "lib/math/rational.c": "void rational_best_approximation(void) {}\n",
    "lib/math/tests/Makefile": "obj-$(CONFIG_RATIONAL_KUNIT_TEST) += rational_kunit.o\n"
                               "obj-$(CONFIG_GCD_KUNIT_TEST) += gcd_kunit.o\n",
    "lib/math/tests/rational_kunit.c": 'static struct kunit_suite rational_test_suite = {\n\t.name = "rational",\n'
                                       '\t.test_cases = cases,\n};\nkunit_test_suites(&rational_test_suite);\n',
    "lib/math/tests/gcd_kunit.c": 'static struct kunit_suite s = {\n\t.name = "gcd",\n};\nkunit_test_suite(s);\n',
    "mm/Makefile": "obj-y += mprotect.o rmap.o memory.o\n",
    "mm/mprotect.c": "SYSCALL_DEFINE3(mprotect, unsigned long, start)\nstatic int mprotect_fixup(void) {}\n",
    "mm/memory.c": "void zap_page_range(void) {}\n",
    "mm/rmap.c": "void folio_add_anon_rmap(void) {}\n",
    "tools/testing/selftests/Makefile": "TARGETS += mm\nTARGETS += empty\n",
    "tools/testing/selftests/mm/Makefile": "TEST_GEN_FILES = rmap\nTEST_GEN_FILES += merge\nTEST_GEN_FILES += mseal_test\n"
                                           "TEST_GEN_FILES += cow\nTEST_GEN_FILES += hmm-tests\n"
                                           "TEST_GEN_FILES += protection_keys\n"
                                           "TEST_PROGS += ksft_rmap.sh\nTEST_PROGS += ksft_vma_merge.sh\n"
                                           "TEST_PROGS += ksft_cow.sh\nTEST_PROGS += ksft_hmm.sh\nTEST_PROGS += ksft_pkey.sh\n"
                                           "TEST_FILES := run_vmtests.sh\nTEST_FILES += test_hmm.sh\n",
    "tools/testing/selftests/mm/settings": "timeout=900\n",
    "tools/testing/selftests/mm/config": "CONFIG_USERFAULTFD=y\nCONFIG_TEST_VMALLOC=m\n",
    "tools/testing/selftests/mm/run_vmtests.sh": 'usage: -t merge\n\ttest VMA merge cases, rmap and cow\n'
                                                 'CATEGORY="rmap" run_test ./rmap\nCATEGORY="vma_merge" run_test ./merge\n'
                                                 'CATEGORY="cow" run_test ./cow\nCATEGORY="hmm" run_test bash ./test_hmm.sh\n'
                                                 '# protection_keys tests\nif [ -x ./protection_keys_64 ]\nthen\n'
                                                 '\tCATEGORY="pkey" run_test ./protection_keys_64\nfi\n',
    "tools/testing/selftests/mm/test_hmm.sh": '$(dirname "${BASH_SOURCE[0]}")/hmm-tests\n',
    "tools/testing/selftests/mm/ksft_hmm.sh": "./run_vmtests.sh -t hmm\n",
    "tools/testing/selftests/mm/ksft_pkey.sh": "./run_vmtests.sh -t pkey\n",
    "tools/testing/selftests/mm/ksft_rmap.sh": "./run_vmtests.sh -t rmap\n",
    "tools/testing/selftests/mm/ksft_vma_merge.sh": "./run_vmtests.sh -t vma_merge\n",
    "tools/testing/selftests/mm/ksft_cow.sh": "./run_vmtests.sh -t cow\n",
    "tools/testing/selftests/mm/rmap.c": "int main() { folio_add_anon_rmap(); }\n",
    "tools/testing/selftests/mm/merge.c": "int main() { mprotect(); }\n",
    "tools/testing/selftests/mm/cow.c": "int main() { fork(); }\n",
    "tools/testing/selftests/mm/mseal_test.c": "int main() { mseal(); mprotect(); mprotect(); sealed; sealed; }\n",
}


@pytest.fixture
def tree(tmp_path):
    for name, text in FILES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return Directory(tmp_path)


def test_kunit_tests_with_their_option_and_suite_names(tree):
    found = {k.source: k for k in kunit.find(tree)}
    assert found["lib/math/tests/rational_kunit.c"].symbol == "RATIONAL_KUNIT_TEST"
    assert found["lib/math/tests/rational_kunit.c"].suites == ("rational",)
    assert found["lib/math/tests/gcd_kunit.c"].suites == ("gcd",)


def test_kselftest_tests_map_programs_to_the_wrappers_that_run_them(tree):
    mm = kselftest.read_target(tree, "mm")
    assert mm.programs["rmap"] == ("mm:ksft_rmap.sh",)  # through run_vmtests.sh's CATEGORY
    assert mm.programs["merge"] == ("mm:ksft_vma_merge.sh",)  # the usage text names merge too: no call
    assert mm.programs["hmm-tests"] == ("mm:ksft_hmm.sh",)  # run by test_hmm.sh, which run_vmtests.sh runs
    assert mm.programs["protection_keys"] == ("mm:ksft_pkey.sh",)  # built as protection_keys_64
    assert mm.unlisted == ("mseal_test",)  # built, run by no wrapper: a test of its own
    assert "mm:mseal_test" in mm.tests and mm.timeout == 900 and mm.config.endswith("mm/config")
    assert kselftest.targets(tree) == ["mm", "empty"]


def test_maintainers_narrowest_first_as_get_maintainer_matches(tree):
    sections = maintainers.parse(FILES["MAINTAINERS"])
    assert [s.name for _, s in maintainers.covering(sections, "mm/rmap.c")] == \
        ["MEMORY MANAGEMENT - RMAP", "THE REST"]
    assert not maintainers.match("lib/*", "lib/math/rational.c")  # a glob stays at its depth
    assert maintainers.match("mm/", "mm/a/b.c") and maintainers.match("mm", "mm/a.c")


def select_for(tree, diffs, **kw):
    found = catalogue.read(tree)
    changes = [select.Change(path, diff) for path, diff in diffs.items()]
    return select.choose(found, tree, changes, kw.pop("suites", {}), **kw)


def test_kbuild_neighbour_named_after_the_file(tree):
    chosen = select_for(tree, {"lib/math/rational.c": "@@ void rational_best_approximation\n-x\n+y"})
    assert chosen.tests("kunit") == ["lib/math/tests/rational_kunit.c"]  # not gcd_kunit.c beside it
    assert "Kbuild neighbour" in chosen.chosen[0].reason and chosen.uncovered == ()


def test_maintainers_lists_the_test_beside_the_code(tree):
    chosen = select_for(tree, {"mm/rmap.c": "-folio_add_anon_rmap()"})
    assert chosen.tests("kselftest") == ["mm:ksft_rmap.sh"]
    assert "MEMORY MANAGEMENT - RMAP" in chosen.chosen[0].reason


def test_a_wide_section_s_test_of_other_code_is_joined_by_the_tests_the_change_mentions(tree):
    """mm/mprotect.c's section lists merge.c; the change is about sealed mappings, which mseal_test
    mentions far more: it runs too. A section's test the change mentions most stands alone."""
    chosen = select_for(tree, {"mm/mprotect.c": "@@ static int mprotect_fixup\n-\tif (sealed) return;"}, ranked=1)
    assert chosen.tests("kselftest") == ["mm:ksft_vma_merge.sh", "mm:mseal_test"]
    assert "the change mentions more of it than of mm:ksft_vma_merge.sh" in chosen.chosen[1].reason
    alone = select_for(tree, {"mm/mprotect.c": "@@ static int mprotect_fixup\n-\tmprotect();"}, ranked=1)
    assert alone.tests("kselftest") == ["mm:ksft_vma_merge.sh"]


def test_a_whole_target_is_ranked_by_what_the_change_mentions(tree):
    # mm/memory.c: no narrow section lists a test; the target named like mm/ does, ranked
    chosen = select_for(tree, {"mm/memory.c": "@@ void zap_page_range\n-\tmseal(); sealed"}, ranked=1)
    assert chosen.tests("kselftest") == ["mm:mseal_test"]
    assert "score" in chosen.chosen[0].reason
    assert dict(chosen.left_out)["mm:ksft_cow.sh"].endswith("mentions nothing the change does")


def test_an_uncovered_file_is_named_and_a_denied_test_is_said(tree):
    chosen = select_for(tree, {"lib/foo.c": "-return 1;\n+return 2;"})
    assert chosen.uncovered == ("lib/foo.c",)
    denied = select_for(tree, {"mm/rmap.c": "-x"}, deny={"mm:ksft_r*": "too slow under TCG"})
    assert "mm/rmap.c" in denied.uncovered
    assert dict(denied.left_out)["mm:ksft_rmap.sh"] == "denied in configs/tests.yaml: too slow under TCG"


def test_a_test_file_the_series_edits_is_chosen(tree):
    chosen = select_for(tree, {"tools/testing/selftests/mm/merge.c": "+x", "lib/math/tests/gcd_kunit.c": "+y"})
    assert chosen.tests("kselftest") == ["mm:ksft_vma_merge.sh"]
    assert chosen.tests("kunit") == ["lib/math/tests/gcd_kunit.c"]


def test_yaml_suites_cover_by_their_globs(tree):
    chosen = select_for(tree, {"lib/foo.c": "+x"}, suites={"nolibc": ("lib/f*",)})
    assert chosen.tests("suite") == ["nolibc"] and chosen.uncovered == ()


def test_diffs_split_per_file():
    text = ("diff --git a/a.c b/a.c\n--- a/a.c\n+++ b/a.c\n@@ -1 +1 @@ int f(void)\n-x\n+y\n"
            "diff --git a/b.h b/b.h\n--- a/b.h\n+++ b/b.h\n@@ -1 +1 @@\n-p\n+q\n")
    got = {c.path: c.diff for c in select.diffs([text])}
    assert got == {"a.c": "@@ -1 +1 @@ int f(void)\n-x\n+y", "b.h": "@@ -1 +1 @@\n-p\n+q"}


def test_the_catalogue_is_kept_per_tree(tree, tmp_path):
    first, kept = catalogue.load(tmp_path / "cache", tree)
    again, kept_again = catalogue.load(tmp_path / "cache", tree)
    assert not kept and kept_again and again == first


def test_a_git_tree_reads_files_without_a_checkout(tmp_path):
    import subprocess

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a").write_text("one\n")
    (repo / "d").mkdir()
    (repo / "d" / "b.c").write_text("kunit_test_suite(x);\n")
    run = lambda *a: subprocess.run(["git", "-C", str(repo), *a], check=True, capture_output=True)  # noqa: E731
    run("init", "-q")
    run("add", ".")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    t = Tree(repo, "HEAD")
    assert t.read("a") == "one\n" and t.read("missing") is None and t.read("d") is None
    assert t.grep(kunit.REGISTERS, "*.c") == ["d/b.c"]
    assert sorted(t.files()) == ["a", "d/b.c"]


def test_a_kselftest_fragment_s_modules_are_not_built_in():
    from pipeline.stages.tests import fragment_symbols

    text = "CONFIG_USERFAULTFD=y\nCONFIG_TEST_VMALLOC=m\n# CONFIG_FOO is not set\nCONFIG_GUP_TEST=y\n"
    assert fragment_symbols(text) == ["USERFAULTFD", "GUP_TEST"]
    assert fragment_symbols(text, "m") == ["TEST_VMALLOC"]
