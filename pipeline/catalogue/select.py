"""Which tests cover a series: chosen from the paths it changes, most specific first, each with
its reason; what a lane's time budget leaves out is named, and so is every changed file no test
covers.

For each changed file, in this order:
1. it is a test: a KUnit source, or a file of a kselftest target (its program's tests, or the
   target's most relevant tests when it is a helper);
2. Kbuild neighbours: the KUnit sources in its directory or the tests/ below it named after it
   (lib/math/rational.c -> lib/math/tests/rational_kunit.c);
3. MAINTAINERS: the narrowest sections that list it, and the tests they list beside it (a KUnit
   source, a selftest file, a selftest directory), widening a step at a time until one does;
4. the kselftest target named like its top directory (mm/mprotect.c -> selftests/mm), when the
   steps before found no kselftest for it;
5. the YAML suites whose `covers:` globs match it.
Where a whole target (or a directory of tests) is named, its tests are ranked by how much of the
change they mention: the identifiers of the changed lines and hunk headers and the system calls the
changed file defines, weighted by how rare each is among the target's tests (tf-idf); the first
`ranked` of them run, the rest are named as left out.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import PurePosixPath

from pipeline.catalogue import kselftest, maintainers
from pipeline.catalogue.catalogue import Catalogue

TEST_DIR = kselftest.ROOT + "/"
RELEVANT = 0.5  # a test found before step 4 stands alone unless others score twice as high
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{3,}")
COMMON = frozenset("""static const struct return unsigned long void inline include define endif ifdef
    else true false NULL sizeof size_t char goto break case default continue while extern bool int
    this that with from into page pages folio folios vma vmas addr address start end flags mm mmap_lock
    unlikely likely err error ret val value ptr data info test tests check assert""".split())


@dataclass(frozen=True)
class Change:
    path: str
    diff: str = ""  # the lines of the series' diff for this file (hunk headers, + and - lines)


@dataclass(frozen=True)
class Choice:
    kind: str  # kunit | kselftest | suite
    test: str  # a KUnit source, "target:test", or a suite name
    reason: str
    path: str  # the changed file it covers


@dataclass(frozen=True)
class Selection:
    chosen: tuple[Choice, ...] = ()
    left_out: tuple[tuple[str, str], ...] = ()  # (test, why)
    uncovered: tuple[str, ...] = ()  # changed files no test covers

    def tests(self, kind: str) -> list[str]:
        return list(dict.fromkeys(c.test for c in self.chosen if c.kind == kind))

    def reasons(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for c in self.chosen:
            out.setdefault(f"{c.kind} {c.test}", []).append(c.reason)
        return out


def diffs(patch_texts: list[str]) -> list[Change]:
    """The changed files of the series with their diff lines, in order of first change."""
    found: dict[str, list[str]] = {}
    for text in patch_texts:
        current = None
        for line in text.splitlines():
            m = re.match(r"^\+\+\+ (?:b/)?(\S+)", line)
            if m:
                current = None if m.group(1) == "/dev/null" else m.group(1)
                if current:
                    found.setdefault(current, [])
                continue
            if line.startswith("--- "):
                continue
            if current and (line.startswith(("@@", "+", "-"))):
                found[current].append(line)
            elif line.startswith("diff "):
                current = None
    return [Change(p, "\n".join(lines)) for p, lines in found.items()]


def keywords(change: Change, source: str | None) -> dict[str, int]:
    """The words the change is about: identifiers of its changed lines and hunk headers (and their
    parts), and the system calls the changed file defines."""
    counts: dict[str, int] = {}
    for word in WORD.findall(change.diff):
        for part in {word, *word.split("_")}:
            if len(part) >= 4 and part not in COMMON and not part.isupper():
                counts[part] = counts.get(part, 0) + 1
    for call in re.findall(r"SYSCALL_DEFINE\d\((\w+)", source or ""):
        counts[call] = counts.get(call, 0) + 3
    return counts


def rank(tree, target: kselftest.Target, tests: list[str], words: dict[str, int]) -> list[tuple[str, float]]:
    """tests of one target, most relevant to the change first (tf-idf of its words in the sources
    of the programs each test runs, and the test's own script)."""
    base = f"{kselftest.ROOT}/{target.name}"
    sources: dict[str, str] = {}
    runs: dict[str, list[str]] = {}
    for prog, by in target.programs.items():
        for test in by:
            runs.setdefault(test, []).append(prog)
    paths = {t: [f"{base}/{p}{ext}" for p in runs.get(t, [t.split(':', 1)[1]]) for ext in (".c", "")]
             for t in tests}
    tree.prefetch([p for ps in paths.values() for p in ps])
    for test, ps in paths.items():
        sources[test] = "\n".join(tree.read(p) or "" for p in ps)
    n = max(len(tests), 1)
    df = {w: sum(1 for t in tests if w in sources[t]) for w in words}
    scored = []
    for test in tests:
        text = sources[test]
        score = sum(math.log(1 + text.count(w)) * math.log((n + 1) / (1 + df[w])) * min(c, 5)
                    for w, c in words.items() if df[w])
        scored.append((test, round(score, 2)))
    return sorted(scored, key=lambda x: -x[1])


def rank_sources(tree, sources: list[str], words: dict[str, int]) -> list[tuple[str, float]]:
    """Source files, most relevant to the change first (tf-idf, as rank())."""
    tree.prefetch(sources)
    texts = {s: tree.read(s) or "" for s in sources}
    n = max(len(sources), 1)
    df = {w: sum(1 for s in sources if w in texts[s]) for w in words}
    scored = [(s, round(sum(math.log(1 + texts[s].count(w)) * math.log((n + 1) / (1 + df[w])) * min(c, 5)
                            for w, c in words.items() if df[w]), 2)) for s in sources]
    return sorted(scored, key=lambda x: -x[1])


def choose(catalogue: Catalogue, tree, changes: list[Change], suites: dict[str, tuple[str, ...]],
           ranked: int = 3, deny: dict[str, str] | None = None) -> Selection:
    """The tests that cover the changes. suites: YAML suite name -> its covers: globs.
    ranked: how many tests of a whole target run when only relevance picks them."""
    deny = deny or {}
    chosen: list[Choice] = []
    left: dict[str, str] = {}
    uncovered = []
    kunits = catalogue.kunit_by_source()
    targets = {t.name: t for t in catalogue.kselftest}
    for change in changes:
        path = change.path
        found: list[Choice] = []
        words = None

        def ranked_in(target: kselftest.Target) -> list[tuple[str, float]]:
            nonlocal words
            if words is None:
                words = keywords(change, tree.read(path))
            return rank(tree, target, list(target.tests), words)

        def whole(target: kselftest.Target, why: str, order: list | None = None) -> None:
            order = order if order is not None else ranked_in(target)
            picked = [t for t, s in order if s > 0 and not denied(t, deny)][:ranked]
            for test in picked:
                score = dict(order)[test]
                found.append(Choice("kselftest", test, f"{why}; ranked by what the change mentions "
                                    f"(score {score})", path))
            for test, score in order:
                if test not in picked and test not in left and not denied(test, deny):
                    left[test] = (f"{target.name} has {len(order)} tests; {ranked} run for {path}, "
                                  + ("this one mentions nothing the change does" if score <= 0
                                     else f"this one ranked lower (score {score})"))

        def few(listed: list[Choice]) -> list[Choice]:
            """KUnit sources a directory pattern names: the `ranked` most relevant when there are more."""
            nonlocal words
            units = [c for c in listed if c.kind == "kunit"]
            if len(units) <= ranked:
                return listed
            if words is None:
                words = keywords(change, tree.read(path))
            order = rank_sources(tree, [c.test for c in units], words)
            keep = {s for s, score in order[:ranked] if score > 0}
            for s, score in order:
                if s not in keep and s not in left:
                    left[s] = f"{len(units)} KUnit tests are listed for {path}; {ranked} run, this one ranked lower " \
                              f"(score {score})"
            return [c for c in listed if c.kind != "kunit" or c.test in keep]

        # 1. the file is a test
        if path in kunits:
            found.append(Choice("kunit", path, f"the series changes this KUnit test", path))
        if path.startswith(TEST_DIR):
            target = _target_of(path, targets)
            if target is not None:
                name = PurePosixPath(path).stem
                by = target.programs.get(name) or target.programs.get(PurePosixPath(path).name)
                if by:
                    found += [Choice("kselftest", t, f"the series changes {path}, which it runs", path)
                              for t in by]
                else:
                    whole(target, f"the series changes {path}, a file of the kselftest target {target.name}")
        # 2. Kbuild neighbours named after it
        if path.endswith(".c") and not path.startswith("tools/"):
            stem, parent = PurePosixPath(path).stem, str(PurePosixPath(path).parent)
            for source in kunits:
                if str(PurePosixPath(source).parent) in (parent, parent + "/tests") and source != path \
                        and _named_after(PurePosixPath(source).stem, stem):
                    found.append(Choice("kunit", source, f"{source} is built beside {path} and named after it "
                                        "(Kbuild neighbour)", path))
        # 3. MAINTAINERS, narrowest sections first
        tiers: dict[tuple, list] = {}
        for how, section in maintainers.covering(list(catalogue.sections), path):
            tiers.setdefault(how, []).append(section)
        for how in sorted(tiers, reverse=True):
            if how[0] == 0 and how[1] <= 1:  # a top-level directory ("mm/", THE REST's "*/"): too wide to say
                break
            before = len(found)
            for section in tiers[how]:
                listed: list[Choice] = []
                for pattern in section.files:
                    for choice in _listed_tests(pattern, section, path, kunits, targets):
                        if choice.kind == "kselftest-target":
                            whole(targets[choice.test], choice.reason)
                        else:
                            listed.append(choice)
                found += few(listed)
            if len(found) > before:
                break
        # 4. the kselftest target named like its top directory, when no kselftest was found, or when
        #    the change's words point at other tests of it at least twice as strongly as at those
        #    found (a wide section's test of other code: mm/mprotect.c's section lists merge.c,
        #    while the change is about sealed mappings: mseal_test)
        top = path.split("/", 1)[0]
        if top in targets and not path.startswith("tools/"):
            named = [c.test for c in found if c.kind == "kselftest"]
            order = ranked_in(targets[top]) if named else None
            if named:
                scores = dict(order)
                best = max((s for t, s in scores.items() if not denied(t, deny)), default=0.0)
                mine = max(scores.get(t, 0.0) for t in named)
            if not named or mine < RELEVANT * best:
                why = f"{path} is under {top}/, and {TEST_DIR}{top} is the kselftest target of that name"
                whole(targets[top], why + (f" (the change mentions more of it than of {', '.join(named)}: "
                                           f"score {mine} against {best})" if named else ""), order)
        # 5. YAML suites
        for name, globs in suites.items():
            hit = next((g for g in globs if fnmatch(path, g)), None)
            if hit:
                found.append(Choice("suite", name, f"its covers: glob {hit} matches {path}", path))
        kept = [c for c in found if not denied(c.test, deny)]
        for c in found:
            if denied(c.test, deny):
                left[c.test] = f"denied in configs/tests.yaml: {denied(c.test, deny)}"
        if not kept:
            uncovered.append(path)
        chosen += kept
    unique = list({(c.kind, c.test, c.path): c for c in chosen}.values())
    picked = {c.test for c in unique}
    return Selection(tuple(unique), tuple((t, w) for t, w in left.items() if t not in picked), tuple(uncovered))


def denied(test: str, deny: dict[str, str]) -> str:
    """Why a test is denied (its name or a glob in the deny list), or ""."""
    return next((why for pattern, why in deny.items() if fnmatch(test, pattern)), "")


def _named_after(test_stem: str, stem: str) -> bool:
    name = re.sub(r"(_kunit|_test|_tests|-test|_kunit_test)$", "", test_stem)
    name = re.sub(r"^(test_|test-)", "", name)
    return name == stem or name.replace("-", "_") == stem.replace("-", "_")


def _target_of(path: str, targets: dict) -> kselftest.Target | None:
    rest = path[len(TEST_DIR):]
    best = None
    for name, target in targets.items():
        if rest.startswith(name + "/") and (best is None or len(name) > len(best.name)):
            best = target
    return best


def _listed_tests(pattern: str, section: maintainers.Section, path: str, kunits: dict, targets: dict):
    """The tests a section's F: pattern names (KUnit sources, selftest files or directories)."""
    why = f"MAINTAINERS section '{section.name}' lists {path} and {pattern}"
    if pattern.startswith(TEST_DIR):
        target = _target_of(pattern if pattern.endswith("/") else pattern, targets)
        if target is None:
            target = targets.get(pattern[len(TEST_DIR):].rstrip("/"))
        if target is None:
            return
        if pattern.rstrip("/") == TEST_DIR + target.name:
            yield Choice("kselftest-target", target.name, why, path)
            return
        hits = [p for p in target.programs if maintainers.match(pattern, f"{TEST_DIR}{target.name}/{p}.c")
                or maintainers.match(pattern, f"{TEST_DIR}{target.name}/{p}")]
        for prog in hits:
            for test in target.programs[prog]:
                yield Choice("kselftest", test, why, path)
        return
    for source in kunits:
        if source != path and maintainers.match(pattern, source):
            yield Choice("kunit", source, why, path)
