"""kselftest targets in a kernel tree (tools/testing/selftests/<target>): the tests each runs,
the config fragment and time limit it declares, and which program each test runs.

A test is what the tree's own run_kselftest.sh runs ("target:name": what lib.mk's emit_tests
writes to kselftest-list.txt, TEST_GEN_PROGS, TEST_CUSTOM_PROGS, TEST_PROGS). Some targets
build programs (TEST_GEN_FILES) that only a wrapper script runs: mm's ksft_rmap.sh runs
`run_vmtests.sh -t rmap`, which runs `CATEGORY="rmap" run_test ./rmap`. Such a program is
mapped to the listed tests that run it; one that nothing runs is a test of its own ("unlisted":
kseries adds it to the list the guest's run_kselftest.sh reads, and says so).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

ROOT = "tools/testing/selftests"
DEFAULT_TIMEOUT = 45  # kselftest/runner.sh's kselftest_default_timeout
LISTED = ("TEST_GEN_PROGS", "TEST_CUSTOM_PROGS", "TEST_PROGS")


@dataclass(frozen=True)
class Target:
    name: str  # mm, or a nested one such as drivers/dma-buf
    tests: tuple[str, ...]  # what run_kselftest.sh runs: "mm:ksft_rmap.sh", "mm:mseal_test"
    programs: dict = field(default_factory=dict)  # program built -> tests that run it ("mm:ksft_rmap.sh",)
    unlisted: tuple[str, ...] = ()  # built programs no listed test runs: tests of their own
    config: str = ""  # its config fragment's path, when it has one
    timeout: int = DEFAULT_TIMEOUT  # per test, from its settings file


def targets(tree) -> list[str]:
    """TARGETS of tools/testing/selftests/Makefile, in its order."""
    text = tree.read(f"{ROOT}/Makefile") or ""
    return list(dict.fromkeys(re.findall(r"^TARGETS\s*\+?=\s*(\S+)", text, re.M)))


def variables(text: str) -> dict[str, list[str]]:
    """Every `NAME = words` / `NAME += words` / `NAME := words` of a Makefile, added up across
    conditionals (an arch's branch is kept: the build decides), continuation lines joined."""
    out: dict[str, list[str]] = {}
    text = re.sub(r"\\\n", " ", text)
    for m in re.finditer(r"^\s*([A-Z_0-9]+)\s*(\+=|:=|=|\?=)\s*(.*)$", text, re.M):
        words = m.group(3).split("#", 1)[0].split()
        if m.group(2) in ("=", ":=") and m.group(1) in out and not out[m.group(1)]:
            out[m.group(1)] = []
        out.setdefault(m.group(1), []).extend(words)
    return out


def _names(values: dict[str, list[str]], name: str, depth: int = 0) -> list[str]:
    """The plain file names a variable holds, $(OTHER) expanded once or twice, paths dropped."""
    out = []
    for word in values.get(name, []):
        ref = re.fullmatch(r"\$[({]([A-Z_0-9]+)[)}]", word)
        if ref and depth < 2:
            out += _names(values, ref.group(1), depth + 1)
        elif "$" not in word and "%" not in word:
            out.append(word.rsplit("/", 1)[-1])
    return list(dict.fromkeys(out))


def read_target(tree, name: str) -> Target | None:
    base = f"{ROOT}/{name}"
    makefile = tree.read(f"{base}/Makefile")
    if makefile is None:
        return None
    values = variables(makefile)
    listed = [n for v in LISTED for n in _names(values, v)]
    built = [n for n in _names(values, "TEST_GEN_FILES") if n not in listed]
    scripts = {n: tree.read(f"{base}/{n}") or "" for n in listed if not _is_program(n, values)}
    helpers = {n: tree.read(f"{base}/{n}") or "" for n in _names(values, "TEST_FILES") if n.endswith(".sh")}
    programs: dict[str, tuple[str, ...]] = {}
    for prog in built:
        runners = _run_by(prog, scripts, helpers)
        if runners:
            programs[prog] = tuple(f"{name}:{t}" for t in runners)
    unlisted = tuple(p for p in built if p not in programs)
    for prog in listed:
        programs.setdefault(prog, (f"{name}:{prog}",))
    settings = tree.read(f"{base}/settings") or ""
    m = re.search(r"^timeout=(\d+)", settings, re.M)
    config = f"{base}/config" if tree.read(f"{base}/config") is not None else ""
    return Target(name, tuple(f"{name}:{t}" for t in (*listed, *unlisted)), programs, unlisted, config,
                  int(m.group(1)) if m else DEFAULT_TIMEOUT)


def _is_program(name: str, values: dict) -> bool:
    return name in _names(values, "TEST_GEN_PROGS") or name in _names(values, "TEST_CUSTOM_PROGS")


def _run_by(prog: str, scripts: dict[str, str], helpers: dict[str, str]) -> list[str]:
    """The listed scripts that run prog: directly (`./prog`), or through a helper script's
    category (`CATEGORY="rmap" run_test ./rmap` in run_vmtests.sh, `run_vmtests.sh -t rmap`), or
    through a helper that helper runs (run_vmtests.sh runs ./test_hmm.sh, which runs hmm-tests). In
    a helper only a line that runs it by its path counts (its usage text names programs too:
    "test VMA merge cases" is no call of ./merge), and a comment line never does."""
    call = re.compile(rf"(^|[\s/]){re.escape(prog)}(\s|$|\")", re.M)
    direct = [s for s, text in scripts.items() if call.search(text)]
    if direct:
        return direct
    by_path = re.compile(rf"(^|\s)\S*/{re.escape(prog)}(_32|_64)?(\s|$|\")")  # lib.mk's VMTARGETS: prog_64
    out = []
    for helper, text in helpers.items():
        calls = [line for line in text.splitlines() if not line.lstrip().startswith("#") and by_path.search(line)]
        categories = {m.group(1) for line in calls for m in [re.search(r"CATEGORY=\"?([\w-]+)", line)] if m}
        if categories:  # its runs in a category ("if [ -x ./prog ]" beside them is no run of its own)
            out += [script for script, body in scripts.items() if helper in body
                    and any(re.search(rf"-t\s+{re.escape(c)}\b", body) for c in categories)]
        elif calls:
            found = [script for script, body in scripts.items() if helper in body]
            # a helper no listed script runs itself: the scripts that run the helper
            out += found or _run_by(helper, scripts, {h: b for h, b in helpers.items() if h != helper})
    return list(dict.fromkeys(out))


def find(tree) -> list[Target]:
    names = targets(tree)
    tree.prefetch([f"{ROOT}/{n}/{f}" for n in names for f in ("Makefile", "settings", "config")])
    out = []
    for name in names:
        target = read_target(tree, name)
        if target is not None and target.tests:
            out.append(target)
    return out
