"""The catalogue of one kernel tree: its KUnit suites, kselftest targets and MAINTAINERS
sections, read once per tree (by its git tree hash) and kept in <cache>/catalogue/."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.catalogue import kselftest, kunit, maintainers

VERSION = 4  # bump when what is read changes: older catalogues are read again


@dataclass(frozen=True)
class Catalogue:
    tree: str  # the git tree hash it was read from
    kunit: tuple[kunit.KunitTest, ...]
    kselftest: tuple[kselftest.Target, ...]
    sections: tuple[maintainers.Section, ...]
    seconds: float = 0.0  # how long reading the tree took

    def kunit_by_source(self) -> dict[str, kunit.KunitTest]:
        return {k.source: k for k in self.kunit}

    def target(self, name: str) -> kselftest.Target | None:
        return next((t for t in self.kselftest if t.name == name), None)

    def summary(self) -> str:
        tests = sum(len(t.tests) for t in self.kselftest)
        return (f"{len(self.kunit)} KUnit test files, {len(self.kselftest)} kselftest targets ({tests} tests), "
                f"{len(self.sections)} MAINTAINERS sections")


def read(tree) -> Catalogue:
    start = time.monotonic()
    found_kunit = kunit.find(tree)
    found_ksft = kselftest.find(tree)
    sections = maintainers.parse(tree.read("MAINTAINERS") or "")
    return Catalogue(tree.id, tuple(found_kunit), tuple(found_ksft), tuple(sections),
                     round(time.monotonic() - start, 1))


def load(cache: Path, tree) -> tuple[Catalogue, bool]:
    """(the tree's catalogue, whether it was kept from before)."""
    path = cache / "catalogue" / f"{tree.id}-v{VERSION}.json"
    try:
        return _decode(json.loads(path.read_text())), True
    except (OSError, ValueError, KeyError, TypeError):
        pass
    found = read(tree)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(dataclasses.asdict(found)))
    tmp.replace(path)
    return found, False


def _decode(data: dict) -> Catalogue:
    return Catalogue(
        data["tree"],
        tuple(kunit.KunitTest(**{**k, "gates": tuple(k["gates"]), "suites": tuple(k["suites"])})
              for k in data["kunit"]),
        tuple(kselftest.Target(**{**t, "tests": tuple(t["tests"]), "unlisted": tuple(t["unlisted"]),
                                  "programs": {p: tuple(v) for p, v in t["programs"].items()}})
              for t in data["kselftest"]),
        tuple(maintainers.Section(s["name"], tuple(s["files"]), tuple(s["excluded"]), tuple(s["regexes"]))
              for s in data["sections"]),
        data.get("seconds", 0.0))
