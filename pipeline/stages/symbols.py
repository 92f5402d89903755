"""Stage 'symbols': what a patch stops defining, and who still uses it after that patch.

Before any compile: for every function, macro or variable whose top-level
definition a patch removes (and does not define again), search the whole tree
as the patch leaves it (every arch, every config, built or not) for remaining
references. A removal applied before its last callers are converted names
those callers with file:line, the way a bisecting maintainer would meet them.

Kernel style puts top-level definitions at column 0, which is what makes a
diff line a definition and not a statement inside a body.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.infra.context import Context
from pipeline.model.results import Case, Status
from pipeline.stages.interface import Outcome, Work

MACRO = re.compile(r"^#\s*define\s+([A-Za-z_]\w*)")
# a type (one or more words or stars) then the name then '(' : functions and prototypes
FUNCTION = re.compile(r"^(?!typedef\b|return\b|struct\s+\w+\s*\{)(?:[A-Za-z_][\w]*[\s*]+)+\**([A-Za-z_]\w*)\s*\(")
# a type then the name then an optional array size then '=' or ';' : variables
VARIABLE = re.compile(r"^(?!typedef\b|return\b)(?:[A-Za-z_][\w]*[\s*]+)+\**([A-Za-z_]\w*)\s*(?:\[[^\]]*\])?\s*(?:=|;)")
# the name alone at column 0, the type on the line before (a definition, so no ';')
SPLIT_FUNCTION = re.compile(r"^([a-z_]\w*)\s*\([^;]*$")
KEYWORDS = {"if", "for", "while", "switch", "return", "sizeof", "else", "do", "case", "goto"}
SOURCE = re.compile(r"\.(c|h|S|rs|lds|dts|dtsi)$|(^|/)(Makefile|Kbuild|Kconfig)[^/]*$")


@dataclass(frozen=True)
class Removal:
    name: str
    kind: str  # function, macro, variable
    file: str  # where the patch removed it


def definition(line: str) -> tuple[str, str] | None:
    """(name, kind) when a line of C at column 0 defines or declares a symbol."""
    if not line or line[0].isspace() or line.startswith(("}", "/*", "*", "//")):
        return None
    for kind, regex in (("macro", MACRO), ("function", FUNCTION), ("variable", VARIABLE),
                        ("function", SPLIT_FUNCTION)):
        m = regex.match(line)
        if m and m.group(1) not in KEYWORDS:
            return m.group(1), kind
    return None


def removals(diff: str) -> list[Removal]:
    """Symbols whose definitions the diff removes from C files and does not add back."""
    removed: dict[str, Removal] = {}
    added: set[str] = set()
    current = ""
    for line in diff.splitlines():
        if line.startswith("+++ "):
            current = line[4:].split("/", 1)[-1] if line[4:] != "/dev/null" else ""
            continue
        if line.startswith("--- ") or not current or not re.search(r"\.(c|h)$", current):
            continue
        if line.startswith("-"):
            found = definition(line[1:])
            if found and found[0] not in removed:
                removed[found[0]] = Removal(found[0], found[1], current)
        elif line.startswith("+"):
            found = definition(line[1:])
            if found:
                added.add(found[0])
    return [r for name, r in removed.items() if name not in added]


GREP = ("grep", "-n", "-w", "-I", "-e")


def grep(ctx: Context, repo: Path, commit: str, name: str) -> str:
    """`git grep` of a word in the tree at commit: seconds for a whole kernel tree, so kept under
    the tree's hash (a rerun, a v2 with only its changelogs reworded: the same trees)."""
    tree = ctx.runner.git(repo, "rev-parse", f"{commit}^{{tree}}").output.strip()
    record = ctx.cache / "symbols" / f"{tree}-{name}.txt"
    if record.is_file():
        return record.read_text()
    done = ctx.runner.git(repo, *GREP, name, commit, "--", check=False, timeout=600)
    output = done.output
    if done.returncode not in (0, 1):  # 1: no match; anything else is no answer to keep
        return output
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        record.with_suffix(f".{os.getpid()}").write_text(output)
        record.with_suffix(f".{os.getpid()}").rename(record)
    except OSError:  # a full disk: the next run greps again
        pass
    return output


def references(ctx: Context, repo: Path, commit: str, name: str) -> tuple[list[str], list[str]]:
    """(definitions, uses) of a word in the tree at commit, as 'file:line: text'."""
    defs, uses = [], []
    for hit in grep(ctx, repo, commit, name).splitlines():
        parts = hit.split(":", 3)
        if len(parts) < 4:
            continue
        path, lineno, text = parts[1], parts[2], parts[3]
        if not SOURCE.search(path):
            continue
        found = definition(text)
        where = f"{path}:{lineno}: {text.strip()}"
        (defs if found and found[0] == name else uses).append(where)
    return defs, uses


def check(ctx: Context, repo: Path, patches: list, commits: list[str]) -> list[Case]:
    """One testcase per symbol a patch removes: PASS when nothing in the tree after it still uses it."""
    cases: list[Case] = []
    for patch, commit in zip(patches, commits):
        diff = ctx.runner.git(repo, "diff", "--no-color", "-U0", f"{commit}^", commit).output
        for gone in removals(diff):
            start = time.monotonic()
            defs, uses = references(ctx, repo, commit, gone.name)
            name = f"removes {gone.kind} {gone.name} ({gone.file})"
            seconds = time.monotonic() - start
            where = {"patch": patch.index, "patches": patch.total}
            if defs:
                cases.append(Case("symbols", name, Status.PASS, seconds,
                                  f"still defined elsewhere ({len(defs)} definition(s)), so its users are served",
                                  "\n".join(defs[:20]), **where))
            elif uses:
                cases.append(Case("symbols", name, Status.FAIL, seconds,
                                  f"{len(uses)} reference(s) to {gone.name} remain after patch {patch.label}, "
                                  f"first {uses[0].split(': ', 1)[0]}",
                                  "\n".join(uses[:50]), **where))
            else:
                cases.append(Case("symbols", name, Status.PASS, seconds,
                                  f"no reference to {gone.name} remains in the tree after patch {patch.label}", **where))
    return cases


def stage(work: Work) -> Outcome:
    applied = work.need("apply")
    commits = applied.artifacts.get("commits", [])
    if not commits:
        return Outcome(Status.SKIP, "no patch applied")
    cases = check(work.ctx, Path(applied.artifacts["worktree"]), work.patches, commits)
    status = Status.worst([Status.PASS, *(c.status for c in cases)])
    failed = [c.name for c in cases if c.status == Status.FAIL]
    return Outcome(status, "; ".join(failed) or f"{len(cases)} removed symbol(s), none still used", cases)
