"""Kconfig, read on the host: what a symbol needs before it can be enabled.

Index: every config entry of the tree's Kconfig files, followed from the top through `source`
with the arch's SRCARCH, with the conditions it is under (its own `depends on`, a prompt's `if`,
and those of the if/menu/choice blocks around it). needs(): for a symbol a .config lacks, the
symbols to enable first, or why it cannot be enabled here.
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Entry:
    name: str
    file: str
    prompt: bool = False
    conditions: list[str] = field(default_factory=list)  # all must hold (y) for the symbol to be set


BLOCK_END = re.compile(r"^(config|menuconfig|choice|endchoice|menu|endmenu|if|endif|source|rsource|osource|"
                       r"orsource|comment|mainmenu)\b")


class Index:
    """The config entries of a tree's Kconfig, for one arch (SRCARCH)."""

    def __init__(self, tree: Path, srcarch: str):
        self.tree, self.srcarch = tree, srcarch
        self.entries: dict[str, list[Entry]] = {}
        self._read(tree / "Kconfig", [], set())

    def _read(self, path: Path, around: list, seen: set) -> None:
        if path in seen or not path.is_file():
            return
        seen.add(path)
        stack = list(around)  # (kind, condition or "")
        entry: Entry | None = None
        lines = re.sub(r"\\\n", " ", path.read_text(errors="replace")).splitlines()
        i = 0
        while i < len(lines):
            raw = lines[i]
            line = raw.split("#", 1)[0].strip() if not raw.strip().startswith(("prompt", "bool", "tristate")) \
                else raw.strip()
            i += 1
            if not line:
                continue
            word = line.split()[0]
            if word in ("help", "---help---"):
                i = _skip_help(lines, i)
                continue
            if BLOCK_END.match(line):
                entry = Entry("", "") if word == "comment" else None  # a comment's depends on is its own
            if word in ("config", "menuconfig") and len(line.split()) > 1:
                entry = Entry(line.split()[1], str(path.relative_to(self.tree)),
                              conditions=[c for _, c in stack if c])
                self.entries.setdefault(entry.name, []).append(entry)
            elif word == "if":
                stack.append(("if", line[2:].strip()))
            elif word == "endif":
                _pop(stack, "if")
            elif word in ("menu", "choice"):
                stack.append((word, ""))
            elif word in ("endmenu", "endchoice"):
                _pop(stack, word[3:])
            elif word in ("source", "rsource", "osource", "orsource"):
                self._source(path, word, line, stack, seen)
            elif word == "depends" and line.startswith("depends on"):
                cond = line[len("depends on"):].strip()
                if entry is not None:
                    entry.conditions.append(cond)
                elif stack and stack[-1][0] in ("menu", "choice"):
                    kind, old = stack[-1]
                    stack[-1] = (kind, f"({old}) && ({cond})" if old else cond)
            elif entry is not None and word in ("bool", "tristate", "string", "int", "hex", "prompt"):
                rest = line[len(word):].strip()
                if rest.startswith('"'):
                    entry.prompt = True
                    m = re.search(r'"\s+if\s+(.+)$', rest)
                    if m:
                        entry.conditions.append(m.group(1).strip())

    def _source(self, path: Path, word: str, line: str, stack: list, seen: set) -> None:
        m = re.search(r'"([^"]+)"', line)
        if not m:
            return
        name = m.group(1).replace("$(SRCARCH)", self.srcarch)
        if "$(" in name:
            return
        base = path.parent if word in ("rsource", "orsource") else self.tree
        for found in sorted(glob.glob(str(base / name))):
            self._read(Path(found), stack, seen)

    def defined(self, name: str) -> bool:
        return name in self.entries


def _pop(stack: list, kind: str) -> None:
    for j in range(len(stack) - 1, -1, -1):
        if stack[j][0] == kind:
            del stack[j]
            return


def _skip_help(lines: list[str], i: int) -> int:
    indent = None
    while i < len(lines):
        text = lines[i].expandtabs(8)
        if text.strip():
            here = len(text) - len(text.lstrip())
            if indent is None:
                indent = here
            elif here < indent:
                return i
        i += 1
    return i


# ---- expressions ------------------------------------------------------------------------------------
TOKEN = re.compile(r'\s*(&&|\|\||!=|<=|>=|[!()=<>]|"[^"]*"|[A-Za-z0-9_]+)')


def _tokens(expr: str) -> list[str]:
    out, pos = [], 0
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m:
            break
        out.append(m.group(1))
        pos = m.end()
    return out


def parse(expr: str):
    """An expression as nested tuples: ("sym", X) ("not", e) ("and", a, b) ("or", a, b) ("cmp", op, a, b)."""
    tokens = _tokens(expr)
    pos = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else ""

    def take():
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def primary():
        if peek() == "!":
            take()
            return ("not", primary())
        if peek() == "(":
            take()
            inner = either()
            if peek() == ")":
                take()
            return inner
        left = ("sym", take().strip('"')) if peek() else ("sym", "y")
        if peek() in ("=", "!=", "<", ">", "<=", ">="):
            op = take()
            return ("cmp", op, left[1], take().strip('"') if peek() else "")
        return left

    def both():
        left = primary()
        while peek() == "&&":
            take()
            left = ("and", left, primary())
        return left

    def either():
        left = both()
        while peek() == "||":
            take()
            left = ("or", left, both())
        return left

    return either()


TRI = {"y": 2, "m": 1, "n": 0}


def _value(name: str, values: dict[str, str]) -> str:
    if name in TRI or not re.match(r"^[A-Za-z_]\w*$", name):
        return name
    return values.get("CONFIG_" + name, "n").strip('"')


def evaluate(node, values: dict[str, str]) -> int:
    kind = node[0]
    if kind == "sym":
        return TRI.get(_value(node[1], values), 0)
    if kind == "not":
        return 2 - evaluate(node[1], values)
    if kind == "and":
        return min(evaluate(node[1], values), evaluate(node[2], values))
    if kind == "or":
        return max(evaluate(node[1], values), evaluate(node[2], values))
    op, a, b = node[1], _value(node[2], values), _value(node[3], values)
    if op in ("=", "!="):
        return 2 if (a == b) == (op == "=") else 0
    return 2  # an ordering comparison (ints): not decided here


def _satisfy(node, values: dict[str, str]) -> tuple[set[str], list[str]]:
    """(symbols to enable, reasons it cannot be) for the expression to hold."""
    if evaluate(node, values) == 2:
        return set(), []
    kind = node[0]
    if kind == "sym":
        if node[1] in TRI:
            return set(), [f"a condition is the constant {node[1]}"]
        return {node[1]}, []
    if kind == "and":
        a, why_a = _satisfy(node[1], values)
        b, why_b = _satisfy(node[2], values)
        return a | b, why_a + why_b
    if kind == "or":
        first = _satisfy(node[1], values)
        if not first[1]:
            return first
        second = _satisfy(node[2], values)
        return second if not second[1] else first
    if kind == "cmp" and node[1] in ("=", "!=") and (node[3] == "y" if node[1] == "=" else node[3] == "n"):
        return {node[2]}, []
    return set(), [f"needs {render(node)}"]


def render(node) -> str:
    kind = node[0]
    if kind == "sym":
        return node[1]
    if kind == "not":
        return "!" + render(node[1])
    if kind in ("and", "or"):
        return f"({render(node[1])} {'&&' if kind == 'and' else '||'} {render(node[2])})"
    return f"{node[2]} {node[1]} {node[3]}"


def needs(index: Index, name: str, values: dict[str, str]) -> tuple[set[str], list[str]]:
    """To enable CONFIG_<name>: (other symbols to enable as well, reasons it cannot be enabled).
    A symbol defined more than once (per arch, say) is enabled through its first workable entry."""
    entries = index.entries.get(name)
    if not entries:
        return set(), [f"{name} is defined in no Kconfig this arch reads"]
    first = None
    for entry in entries:
        add, why = set(), []
        if not entry.prompt:
            why.append(f"{name} has no prompt: only other options select it")
        for cond in entry.conditions:
            a, w = _satisfy(parse(cond), values)
            add |= a
            why += w
        if not why:
            return add, []
        first = first or (add, why)
    return first
