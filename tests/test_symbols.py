"""The static removed-symbol check, on real git commits of a small C tree."""

import subprocess
from pathlib import Path
from types import SimpleNamespace

from pipeline.stages import symbols
from pipeline.infra.context import Context
from pipeline.infra.progress import Progress
from pipeline.model.results import Status
from pipeline.infra.runner import Runner

HEADER = """#ifndef HELPERS_H
#define HELPERS_H
static inline bool
old_mapped(const struct page *page)
{
\treturn page->count > 0;
}
#define OLD_LIMIT 4
int keep_me(void);
#endif
"""
CALLER_SH = "#include <helpers.h>\nvoid flush(struct page *p)\n{\n\tif (old_mapped(p))\n\t\tflush_one(p);\n}\n"
CALLER_BPF = "#include <helpers.h>\nint arena_free(struct page *p)\n{\n\treturn old_mapped(p) ? OLD_LIMIT : 0;\n}\n"


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def commit(repo, files: dict[str, str], message: str) -> str:
    for path, text in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def tree(tmp_path) -> Path:
    repo = tmp_path / "linux"
    repo.mkdir()
    git(repo, "init", "-q")
    commit(repo, {"include/linux/helpers.h": HEADER, "arch/sh/mm/cache.c": CALLER_SH,
                  "kernel/bpf/arena.c": CALLER_BPF, "Documentation/mm.rst": "old_mapped() is documented\n"}, "base")
    return repo


def ctx(tmp_path):
    return Context(tmp_path / "run", tmp_path / "cache", Runner(), Progress())


def patches(n):
    return [SimpleNamespace(label=f"{i}/{n}", index=i, total=n) for i in range(1, n + 1)]


REMOVE = {"include/linux/helpers.h": HEADER.replace(
    "static inline bool\nold_mapped(const struct page *page)\n{\n\treturn page->count > 0;\n}\n", "")
    .replace("#define OLD_LIMIT 4\n", "")}
CONVERT_SH = {"arch/sh/mm/cache.c": CALLER_SH.replace("old_mapped(p)", "folio_mapped(page_folio(p))")}
CONVERT_BPF = {"kernel/bpf/arena.c": CALLER_BPF.replace("old_mapped(p) ? OLD_LIMIT : 0", "page_ref_count(p)")}


def test_removal_after_its_callers_leaves_no_reference(tmp_path):
    repo = tree(tmp_path)
    commits = [commit(repo, CONVERT_SH, "sh"), commit(repo, CONVERT_BPF, "bpf"), commit(repo, REMOVE, "remove")]
    cases = symbols.check(ctx(tmp_path), repo, patches(3), commits)
    assert [(c.name, c.status) for c in cases] == [
        ("patch 3/3: removes function old_mapped (include/linux/helpers.h)", Status.PASS),
        ("patch 3/3: removes macro OLD_LIMIT (include/linux/helpers.h)", Status.PASS)]


def test_removal_before_its_callers_names_them_with_file_and_line(tmp_path):
    repo = tree(tmp_path)
    commits = [commit(repo, REMOVE, "remove"), commit(repo, CONVERT_SH, "sh"), commit(repo, CONVERT_BPF, "bpf")]
    cases = symbols.check(ctx(tmp_path), repo, patches(3), commits)
    func = next(c for c in cases if "old_mapped" in c.name)
    assert func.name.startswith("patch 1/3:") and func.status == Status.FAIL
    assert "2 reference(s) to old_mapped remain after patch 1/3" in func.message
    assert func.detail.splitlines() == ["arch/sh/mm/cache.c:4: if (old_mapped(p))",
                                        "kernel/bpf/arena.c:4: return old_mapped(p) ? OLD_LIMIT : 0;"]
    macro = next(c for c in cases if "OLD_LIMIT" in c.name)
    assert macro.status == Status.FAIL and "kernel/bpf/arena.c:4" in macro.detail


def test_a_changed_signature_or_a_definition_elsewhere_is_not_a_removal(tmp_path):
    repo = tree(tmp_path)
    changed = commit(repo, {"include/linux/helpers.h": HEADER.replace(
        "old_mapped(const struct page *page)", "old_mapped(struct page *page)")}, "signature")
    assert symbols.check(ctx(tmp_path), repo, patches(1), [changed]) == []
    moved = commit(repo, {**REMOVE, "include/linux/mm.h": "#define OLD_LIMIT 8\n"}, "move the macro")
    cases = {c.name.split()[4]: c for c in symbols.check(ctx(tmp_path), repo, patches(1), [moved])}
    assert list(cases) == ["old_mapped"] and cases["old_mapped"].status == Status.FAIL  # the macro moved
    git(repo, "reset", "-q", "--hard", changed)
    commit(repo, {"arch/sh/include/asm/limits.h": "#define OLD_LIMIT 2\n"}, "an arch defines its own")
    removed = commit(repo, REMOVE, "remove")
    cases = {c.name.split()[4]: c for c in symbols.check(ctx(tmp_path), repo, patches(1), [removed])}
    assert cases["OLD_LIMIT"].status == Status.PASS and "still defined" in cases["OLD_LIMIT"].message


def test_definition_lines():
    assert symbols.definition("static inline bool page_mapped(const struct page *page)") == ("page_mapped", "function")
    assert symbols.definition("unsigned long nr_pages[MAX_NR];") == ("nr_pages", "variable")
    assert symbols.definition("#define PAGE_MAPPED 1") == ("PAGE_MAPPED", "macro")
    for not_one in ("\treturn page_mapped(page);", "EXPORT_SYMBOL(page_mapped);", "typedef int (*fn)(int);",
                    " * page_mapped() is gone", "struct page {", "module_init(foo);"):
        assert symbols.definition(not_one) is None, not_one


def test_the_same_tree_is_searched_once_even_under_other_commits(tmp_path):
    repo = tree(tmp_path)
    first = symbols.check(ctx(tmp_path), repo, patches(1), [commit(repo, REMOVE, "remove")])
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--amend", "-m", "reworded")
    reworded = git(repo, "rev-parse", "HEAD")  # another commit, the same tree: a v2's reworded changelog
    runner = Runner(tmp_path / "commands.log")
    again = symbols.check(Context(tmp_path / "run", tmp_path / "cache", runner, Progress()), repo, patches(1),
                          [reworded])
    assert [(c.name, c.status, c.detail) for c in again] == [(c.name, c.status, c.detail) for c in first]
    assert " grep " not in (tmp_path / "commands.log").read_text()  # taken from the first search
    assert sorted(p.name.split("-", 1)[1] for p in (tmp_path / "cache" / "symbols").iterdir()) == [
        "OLD_LIMIT.txt", "old_mapped.txt"]
