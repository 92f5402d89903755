"""KUnit suites in a kernel tree: each test source, the suite names it registers, and the Kconfig
symbol its Makefile builds it under (the option that puts the suite in a kernel)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.stages import kbuild

REGISTERS = r"kunit_test_(init_section_)?suites? ?\("
SUITE = re.compile(r"struct\s+kunit_suite\s+\w+\s*=\s*\{(?P<body>.*?)\n\}", re.S)
NAME = re.compile(r"\.name\s*=\s*\"(?P<name>[^\"]+)\"")


@dataclass(frozen=True)
class KunitTest:
    source: str  # lib/math/tests/rational_kunit.c
    symbol: str  # RATIONAL_KUNIT_TEST: the option that builds it ("" when its Makefile names none)
    gates: tuple[str, ...]  # every symbol on its way into the kernel, its own first
    suites: tuple[str, ...]  # the suite names it registers (kunit.filter_glob and KTAP use them)
    arch: str = ""  # arch/<dir>/ of a test under arch/, else ""


def suite_names(text: str) -> list[str]:
    return [m.group("name") for s in SUITE.finditer(text) if (m := NAME.search(s.group("body")))]


def find(tree) -> list[KunitTest]:
    """Every .c file that registers a KUnit suite, except the framework's own headers."""
    sources = [f for f in tree.grep(REGISTERS, "*.c") if not f.startswith(("tools/", "Documentation/"))]
    tree.prefetch(sources)
    makefiles = {str(d) + "/" + n for s in sources for d in _parents(s) for n in ("Makefile", "Kbuild")}
    tree.prefetch(sorted(makefiles))
    out = []
    for source in sorted(sources):
        found = kbuild.gates(tree, source) or []
        symbols = tuple(s.removeprefix("CONFIG_") for s in found)
        arch = source.split("/")[1] if source.startswith("arch/") else ""
        out.append(KunitTest(source, symbols[0] if symbols else "", symbols,
                             tuple(suite_names(tree.read(source) or "")), arch))
    return out


def _parents(path: str):
    parts = path.split("/")[:-1]
    for i in range(len(parts), 0, -1):
        yield "/".join(parts[:i])
