"""Stage 'check': read the console - a kernel splat anywhere fails the lane, even if every test passed."""

from __future__ import annotations

import re
from pathlib import Path

from .boot import console_rules
from .results import Case, Status


def scan(console: Path, arch: str) -> list[Case]:
    rules = console_rules()
    lines = console.read_text(errors="replace").splitlines()
    splat = re.compile("|".join(f"(?:{p})" for p in rules["splats"]))
    hits = [i for i, line in enumerate(lines) if splat.search(line)]
    cases = []
    if hits:
        first = hits[0]
        excerpt = "\n".join(lines[max(0, first - 5): first + 40])
        msg = f"{len(hits)} kernel splat line(s), first: {lines[first].strip()[:200]}"
        cases.append(Case("check", f"{arch}: console free of splats", Status.FAIL, 0, msg, excerpt, arch))
    else:
        cases.append(Case("check", f"{arch}: console free of splats", Status.PASS, 0,
                          f"no Oops/BUG/WARNING/panic in {len(lines)} console lines", arch=arch))
    return cases
