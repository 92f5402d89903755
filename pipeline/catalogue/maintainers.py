"""MAINTAINERS, read as scripts/get_maintainer.pl reads it: sections, their F: (files), X:
(excluded files) and N: (file name regexes) entries, and which sections a path falls in.

A section that lists code and its tests side by side ("MEMORY MANAGEMENT - RMAP": mm/rmap.c and
tools/testing/selftests/mm/rmap.c) is the tree's own map from a changed file to its tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Section:
    name: str
    files: tuple[str, ...] = ()  # F:
    excluded: tuple[str, ...] = ()  # X:
    regexes: tuple[str, ...] = ()  # N:


def parse(text: str) -> list[Section]:
    """The sections after the file's preamble (the first line of a section is its name, alone)."""
    sections, name, entries = [], None, {"F": [], "X": [], "N": []}
    started = False

    def close():
        if name is not None:
            sections.append(Section(name, tuple(entries["F"]), tuple(entries["X"]), tuple(entries["N"])))

    for line in text.splitlines():
        m = re.match(r"^([A-Z]):\s*(.*?)\s*$", line)
        if m and name is not None:
            if m.group(1) in entries:
                entries[m.group(1)].append(m.group(2))
            continue
        if line.strip() == "":
            continue
        if line.startswith("Maintainers List"):
            started = True
            continue
        if not started and not line.isupper():
            continue
        if m:  # an entry before any section: the preamble's examples
            continue
        if line[0].isspace() or line.startswith("----") or line.startswith("Note:"):
            continue
        close()
        name, entries = line.strip(), {"F": [], "X": [], "N": []}
    close()
    return [s for s in sections if s.files or s.regexes]


def _regex(pattern: str) -> str:
    return re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")


def match(pattern: str, path: str) -> bool:
    """get_maintainer.pl's file_match_pattern: a pattern ending in / matches every file below it;
    any other (globs allowed) matches only at its own depth."""
    if pattern.endswith("/"):
        return re.match(_regex(pattern), path) is not None
    if "*" not in pattern and "?" not in pattern and path.startswith(pattern + "/"):
        return True  # a directory named without its slash (get_maintainer.pl adds it)
    return pattern == path or (re.match(_regex(pattern), path) is not None
                               and path.count("/") == pattern.count("/"))


def specificity(pattern: str, path: str) -> tuple[int, int]:
    """How narrowly a matching pattern names the path: the file itself (2), a glob in its directory
    (1), a directory above it (0); then how deep the pattern reaches."""
    depth = pattern.rstrip("/").count("/") + 1
    if pattern == path:
        return 2, depth
    if not pattern.endswith("/") and not path.startswith(pattern + "/"):
        return 1, depth
    return 0, depth


def covering(sections: list[Section], path: str) -> list[tuple[tuple[int, int], Section]]:
    """The sections a path falls in, narrowest first, each with how narrowly it names the path."""
    found = []
    for section in sections:
        if any(match(x, path) for x in section.excluded):
            continue
        best = max((specificity(p, path) for p in section.files if match(p, path)), default=None)
        if best is None and any(re.search(r, path) for r in section.regexes if _compiles(r)):
            best = (0, 0)
        if best is not None:
            found.append((best, section))
    return sorted(found, key=lambda x: x[0], reverse=True)


def _compiles(regex: str) -> bool:
    try:
        re.compile(regex)
        return True
    except re.error:
        return False
