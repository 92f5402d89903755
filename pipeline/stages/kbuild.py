"""Kbuild Makefiles, read on the host: which CONFIG_ symbols a source file is compiled under.

gates(): from the file's own Makefile up through the directories above it, the symbols of the
lines that lead to its object (`obj-$(CONFIG_X) += foo.o`, a composite `foo-$(CONFIG_Z) += bar.o`
with `obj-$(CONFIG_Y) += foo.o`, `obj-$(CONFIG_W) += dir/` in the directory above).
"""

from __future__ import annotations

import re
from pathlib import Path

ASSIGN = re.compile(r"^\s*([A-Za-z0-9_]+)-(\S+?)\s*[+:?]?=\s*(.*)$")
CONTAINERS = ("obj", "lib", "core", "drivers", "libs", "net", "virt")


def _reader(tree) -> object:
    """A tree as something with read(relative path) -> text or None: a checked-out directory
    (Path) or a catalogue tree read from git objects (pipeline/catalogue/tree.py)."""
    if isinstance(tree, (str, Path)):
        from pipeline.catalogue.tree import Directory

        return Directory(Path(tree))
    return tree


def _assignments(tree, directory: Path) -> list[tuple[str, list[str], list[str]]]:
    """(prefix, CONFIG_ symbols it is built under, words) of every `prefix-suffix += words` line of
    the directory's Kbuild and Makefile, continuation lines joined, comments dropped. The symbols are
    those of its suffix and of the conditionals around it that need them set (`ifeq
    ($(CONFIG_MMU)$(CONFIG_64BIT),yy)`, `ifdef CONFIG_X`); a negated or `else` branch adds none."""
    out = []
    for name in ("Kbuild", "Makefile"):
        raw = tree.read(str(directory / name))
        if raw is None:
            continue
        text = re.sub(r"\\\n", " ", raw)
        around: list[list[str]] = []
        for line in text.splitlines():
            line = line.split("#", 1)[0]
            word = line.split()[0] if line.split() else ""
            if word in ("ifeq", "ifdef"):
                empty = re.search(r",\s*(\"\"|'')?\s*\)\s*$", line)  # compared with nothing: unset
                around.append([] if empty else re.findall(r"CONFIG_\w+", line))
            elif word in ("ifneq", "ifndef"):
                around.append([])
            elif word == "else" and around:
                around[-1] = []
            elif word == "endif" and around:
                around.pop()
            m = ASSIGN.match(line)
            if m:
                symbols = re.findall(r"CONFIG_\w+", m.group(2)) + [s for syms in around for s in syms]
                out.append((m.group(1), symbols, m.group(3).split()))
    return out


def _object(tree, directory: Path, word: str, depth: int = 0) -> list[str] | None:
    """The symbols that lead to word (an object or a subdirectory/) in this directory's Makefile,
    through composite objects; None when no line names it."""
    if depth > 4:
        return None
    for prefix, symbols, words in _assignments(tree, directory):
        if word not in words:
            continue
        if prefix in CONTAINERS:
            return symbols
        # a part of the composite object prefix.o, or of a list used as $(prefix-y)
        outer = _object(tree, directory, prefix + ".o", depth + 1)
        if outer is None:
            outer = _object(tree, directory, f"$({prefix}-y)", depth + 1)
        if outer is not None:
            return symbols + outer
    return None


def gates(tree, source: str) -> list[str] | None:
    """The CONFIG_ symbols a source file is compiled under, its own directory's first, then those
    of the directories above it; None when its Makefile names no such object (built some other way)."""
    tree = _reader(tree)
    path = Path(source)
    found = _object(tree, path.parent, path.stem + ".o")
    if found is None:
        return None
    symbols = list(found)
    directory = path.parent
    while directory.parent != directory and str(directory.parent) != ".":
        above = _object(tree, directory.parent, directory.name + "/")
        if above is None:
            break
        symbols += above
        directory = directory.parent
    return list(dict.fromkeys(symbols))
