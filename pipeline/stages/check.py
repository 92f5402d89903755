"""Stage 'check': read the console - a kernel splat anywhere fails the lane, even if every test passed.

A splat the base's console shows too (the same kind at the same place, times,
addresses and numbers aside) is pre-existing: reported, not blamed on the series.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.model import config
from pipeline.model.lane import Role
from pipeline.model.results import Case, Status
from pipeline.stages.boot import console_rules
from pipeline.stages.interface import Outcome, Work

VOLATILE = [(re.compile(r"^\s*\[\s*\d+\.\d+\]\s*"), ""), (re.compile(r"0x[0-9a-fA-F]+|\b[0-9a-f]{8,16}\b"), "X"),
            (re.compile(r"\d+"), "N")]


def signature(line: str) -> str:
    """A splat line without what differs between two boots of the same kernel bug."""
    for pattern, repl in VOLATILE:
        line = pattern.sub(repl, line)
    return " ".join(line.split())


def scan(console: Path, arch: str, known: set[str] | None = None) -> tuple[list[Case], list[str]]:
    """(the check's testcase, the splats' signatures). known: the base's signatures."""
    rules = console_rules()
    lines = console.read_text(errors="replace").splitlines()
    splat = re.compile("|".join(f"(?:{p})" for p in rules["splats"]))
    hits = [i for i, line in enumerate(lines) if splat.search(line)]
    found = list(dict.fromkeys(signature(lines[i]) for i in hits))
    if not hits:
        return [Case("check", "console free of splats", Status.PASS, 0,
                     f"no Oops/BUG/WARNING/panic in {len(lines)} console lines", arch=arch)], []
    new = [i for i in hits if known is None or signature(lines[i]) not in known]
    first = new[0] if new else hits[0]
    excerpt = "\n".join(lines[max(0, first - 5): first + 40])
    if not new:
        return [Case("check", "console free of splats", Status.PASS, 0,
                     f"pre-existing: {len(hits)} splat line(s) the base shows too, not blamed; first: "
                     f"{lines[first].strip()[:200]}", excerpt, arch)], found
    also = f" ({len(hits) - len(new)} more the base shows too)" if len(new) < len(hits) else ""
    return [Case("check", "console free of splats", Status.FAIL, 0,
                 f"{len(new)} kernel splat line(s){also}, first: {lines[first].strip()[:200]}", excerpt, arch)], found


def stage(work: Work) -> Outcome:
    base = work.other("check", Role.BASE) if not work.lane.is_base else None
    known = set(base.facts.get("splats", [])) if base is not None and base.status in (Status.PASS, Status.FAIL) \
        else None
    cases, found = scan(Path(work.need("boot").artifacts["console"]), work.arch.name, known)
    return Outcome(Status.worst(c.status for c in cases),
                   "; ".join(c.message for c in cases if c.status != Status.PASS or c.detail), cases,
                   facts={"splats": found})


def key(work: Work) -> str:
    return repr((config.CONFIGS / "console.yaml").read_bytes())
