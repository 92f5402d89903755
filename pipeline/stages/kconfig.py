"""Kconfig, read on the host: what a symbol needs before it can be enabled.

Index: every config entry of the tree's Kconfig files, followed from the top through `source`
with the arch's SRCARCH, with the conditions it is under (its own `depends on`, a prompt's `if`,
and those of the if/menu/choice blocks around it). needs(): for a symbol a .config lacks, the
symbols to enable first, or why it cannot be enabled here.
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass, field, replace
from pathlib import Path


@dataclass
class Entry:
    name: str
    file: str
    prompt: bool = False
    conditions: list[str] = field(default_factory=list)  # all must hold (y) for the symbol to be set
    prompt_if: list[str] = field(default_factory=list)  # those of conditions that only make the prompt visible
    selects: list[tuple[str, str, str]] = field(default_factory=list)  # ("select" or "imply", symbol, its if)
    defaults: list[tuple[str, str]] = field(default_factory=list)  # (value, its if), in order
    in_choice: bool = False  # a choice's member: setting it unsets the alternative the config chose


BLOCK_END = re.compile(r"^(config|menuconfig|choice|endchoice|menu|endmenu|if|endif|source|rsource|osource|"
                       r"orsource|comment|mainmenu)\b")


class Index:
    """The config entries of a tree's Kconfig, for one arch (SRCARCH)."""

    def __init__(self, tree: Path, srcarch: str):
        self.tree, self.srcarch = tree, srcarch
        self.entries: dict[str, list[Entry]] = {}
        self._read(tree / "Kconfig", [], set())
        self.selectors: dict[str, list[tuple[str, str, Entry]]] = {}  # symbol -> (kind, if, the entry)
        for entries in self.entries.values():
            for entry in entries:
                for kind, target, cond in entry.selects:
                    self.selectors.setdefault(target, []).append((kind, cond, entry))

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
                              conditions=[c for _, c in stack if c], in_choice=any(k == "choice" for k, _ in stack),
                              prompt_if=[c for k, c in stack if k == "visible"])
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
                elif _block(stack) is not None:
                    j = _block(stack)
                    kind, old = stack[j]
                    stack[j] = (kind, f"({old}) && ({cond})" if old else cond)
            elif word == "visible" and entry is None and _block(stack) is not None and line.startswith("visible if"):
                stack.append(("visible", line[len("visible if"):].strip()))  # hides the menu's prompts only
            elif entry is not None and word in ("bool", "tristate", "string", "int", "hex", "prompt"):
                rest = line[len(word):].strip()
                if rest[:1] in ('"', "'"):  # either quote: '"MARK" target support' is a prompt too
                    entry.prompt = True
                    m = re.search(rest[0] + r'\s+if\s+(.+)$', rest)
                    if m:
                        entry.conditions.append(m.group(1).strip())
                        entry.prompt_if.append(m.group(1).strip())
            elif entry is not None and word in ("select", "imply") and len(line.split()) > 1:
                value, cond = _split_if(line[len(word):])
                entry.selects.append((word, value, cond))
            elif entry is not None and word in ("default", "def_bool", "def_tristate"):
                entry.defaults.append(_split_if(line[len(word):]))

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


def _split_if(text: str) -> tuple[str, str]:
    """'VALUE if COND' -> (VALUE, COND); no if: (VALUE, "")."""
    m = re.match(r"(.*?)\s+if\s+(.+)$", text.strip())
    return (m.group(1).strip(), m.group(2).strip()) if m else (text.strip(), "")


def _block(stack: list) -> int | None:
    """The menu or choice just opened (past its `visible if`s), whose own lines are being read."""
    j = len(stack) - 1
    while j >= 0 and stack[j][0] == "visible":
        j -= 1
    return j if j >= 0 and stack[j][0] in ("menu", "choice") else None


def _pop(stack: list, kind: str) -> None:
    for j in range(len(stack) - 1, -1, -1):
        if stack[j][0] == kind:
            del stack[j]
            while kind == "menu" and j < len(stack) and stack[j][0] == "visible":
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


# ---- reaching a symbol: directly, or through an option that selects it ----------------------------
HOPS = 3  # options that select an option that selects ...: how far a symbol with no prompt is followed
NEVER = {"COMPILE_TEST": "COMPILE_TEST is never enabled by derivation: it builds drivers for other arches' "
                         "hardware and makes WERROR the default"}
SHOWN = 6  # selectors named in a reason, at most


@dataclass(frozen=True)
class Route:
    """How a symbol with no usable prompt is set: `by` an option that selects (or implies) it, or
    its own default; the cheapest (`cost`, Planner.cost) of the `able` options of that kind the
    config can meet, out of the `of` the arch's Kconfig has."""
    symbol: str
    by: str
    kind: str  # "select", "imply" or "default"
    able: int
    of: int
    cost: int

    def sentence(self) -> str:
        if self.kind == "default":
            return (f"CONFIG_{self.symbol} has no prompt: its default ({self.by}) sets it "
                    f"({self.cost} symbol(s) to enable)")
        verb = {"select": "selects", "imply": "implies"}[self.kind]
        return (f"CONFIG_{self.symbol} has no prompt: enabled CONFIG_{self.by}, which {verb} it "
                f"(the smallest of {self.able} option(s) the lane can meet, of {self.of} that {self.kind} it: "
                f"{self.cost} symbol(s) to enable, counting what they select)")


@dataclass
class Plan:
    """What to enable (dependencies first) for a symbol or expression, or why it cannot be."""
    enable: list[str] = field(default_factory=list)
    why: list[str] = field(default_factory=list)
    routes: dict[str, Route] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.why

    def __add__(self, other: "Plan") -> "Plan":
        return Plan(list(dict.fromkeys(self.enable + other.enable)), self.why + other.why,
                    {**self.routes, **other.routes})


class Planner:
    """The cheapest way to set symbols from a config's values: a symbol's prompt when its
    conditions can be met, else (no prompt, or a prompt whose own `if` is unmet) an option that
    `select`s or `imply`s it - followed HOPS options deep - or its own default. Cost = symbols to
    enable plus the symbols they select that are off: measurable, and small for a library helper,
    large for a subsystem. `refused`: symbols asked for before that did not take - not again.
    `imply` counts as `select` here: for a symbol with no visible prompt kconfig takes the implied
    value (symbol.c, sym_calc_value), bounded by the symbol's own `depends on`, which a route
    meets in any case (a `select` would force it past them, with a warning: not done here)."""

    def __init__(self, index: Index, values: dict[str, str], refused: set[str] = frozenset()):
        self.index, self.values, self.refused = index, values, set(refused)
        self.memo: dict[tuple[str, int], Plan] = {}
        self.active: set[str] = set()

    def cost(self, plan: Plan, target: str = "") -> int:
        """Symbols to enable plus the symbols they select that are off (the target itself not counted)."""
        side = {t for s in plan.enable for e in self.index.entries.get(s, []) for k, t, _ in e.selects
                if k == "select" and t not in plan.enable and t != target and self.values.get("CONFIG_" + t) != "y"}
        return len(plan.enable) + len(side)

    def symbol(self, name: str, hops: int = HOPS) -> Plan:
        if self.values.get("CONFIG_" + name) == "y" or name == "y":
            return Plan()
        if (name, hops) in self.memo:
            return self.memo[(name, hops)]
        if name in self.active:
            return Plan(why=[f"{name} depends on itself"])
        self.active.add(name)
        try:
            plan = self._symbol(name, hops)
        finally:
            self.active.discard(name)
        self.memo[(name, hops)] = plan
        return plan

    def _symbol(self, name: str, hops: int) -> Plan:
        if name in NEVER:
            return Plan(why=[NEVER[name]])
        if name in self.refused:
            return Plan(why=[f"CONFIG_{name} was asked for and did not take"])
        entries = self.index.entries.get(name)
        if not entries:
            return Plan(why=[f"{name} is defined in no Kconfig this arch reads"])
        first = None
        for entry in (e for e in entries if e.prompt):
            plan = self.all_of(entry.conditions, hops) + Plan([name])
            if plan.ok:
                return plan
            first = first or plan
        return self._routed(name, entries, hops, first)

    def _routed(self, name: str, entries: list[Entry], hops: int, prompted: Plan | None) -> Plan:
        """No usable prompt: an option that selects or implies it, or its own default."""
        own = self._own_depends(entries, hops)
        options: list[tuple[tuple, Plan, Route]] = []
        tried: list[str] = []  # what each selector that cannot be met lacks
        every = self.index.selectors.get(name, []) if hops else []
        selectors = [s for s in every if not s[2].in_choice]
        tried += [f"CONFIG_{e.name} (a choice's member: setting it would unset the alternative the config chose)"
                  for _, _, e in every if e.in_choice]
        for kind, cond, entry in selectors:
            plan = self.symbol(entry.name, hops - 1) + self.all_of([cond] if cond else [], hops - 1) + own
            if plan.ok:
                cost = self.cost(plan, name)
                options.append(((cost, kind != "select", entry.name), plan,
                                Route(name, entry.name, kind, 0, sum(1 for s in selectors if s[0] == kind), cost)))
            else:
                tried.append(f"CONFIG_{entry.name} ({plan.why[0]})")
        for entry in (e for e in entries if not e.prompt):
            for value, cond in entry.defaults:
                plan = self.all_of([c for c in (value, cond, *entry.conditions) if c], hops)
                if value not in ("n", "m") and plan.ok:
                    cost = self.cost(plan, name)
                    by = value + (f" if {cond}" if cond else "")
                    options.append(((cost, 2, by), plan, Route(name, by, "default", 0, 0, cost)))
        if options:
            _, plan, route = min(options, key=lambda o: o[0])
            able = sum(1 for o in options if o[2].kind == route.kind)
            route = replace(route, able=able, of=route.of or able)
            return Plan(plan.enable, [], {**plan.routes, name: route})
        if not tried:
            if prompted is not None:
                return prompted
            if not hops:
                return Plan(why=[f"{name} has no prompt, and options that select it are followed {HOPS} deep only"])
            return Plan(why=[f"{name} has no prompt and no option this arch reads selects it"])
        shown = "; ".join(tried[:SHOWN]) + (f"; and {len(tried) - SHOWN} more" if len(tried) > SHOWN else "")
        head = f"{name} has no prompt" if prompted is None else f"{name}'s prompt is out of reach ({prompted.why[0]})"
        what = ("the one option that selects it cannot" if len(tried) == 1
                else f"none of the {len(tried)} options that select it can")
        return Plan(why=[f"{head}, and {what} be met here: {shown}"])

    def _own_depends(self, entries: list[Entry], hops: int) -> Plan:
        """A selected symbol's own `depends on` (and blocks around it): met, so that a select
        forces nothing past them. The cheapest of its entries'."""
        plans = [self.all_of([c for c in e.conditions if c not in e.prompt_if], hops) for e in entries]
        able = [p for p in plans if p.ok]
        return min(able, key=self.cost) if able else plans[0]

    def all_of(self, conditions: list[str], hops: int) -> Plan:
        plan = Plan()
        for cond in conditions:
            plan = plan + self.expr(parse(cond), hops)
        return plan

    def expr(self, node, hops: int) -> Plan:
        if evaluate(node, self.values) == 2:
            return Plan()
        kind = node[0]
        if kind == "sym":
            if node[1] in TRI:
                return Plan(why=[f"a condition is the constant {node[1]}"])
            return self._needed(node[1], hops)
        if kind == "and":
            return self.expr(node[1], hops) + self.expr(node[2], hops)
        if kind == "or":
            both = (self.expr(node[1], hops), self.expr(node[2], hops))
            able = [p for p in both if p.ok]
            return min(able, key=self.cost) if able else both[0]
        if kind == "cmp" and node[1] in ("=", "!=") and (node[3] == "y" if node[1] == "=" else node[3] == "n"):
            return self._needed(node[2], hops)
        return Plan(why=[f"needs {render(node)}"])

    def _needed(self, name: str, hops: int) -> Plan:
        plan = self.symbol(name, hops)
        return plan if plan.ok else Plan(why=[f"needs CONFIG_{name} ({plan.why[0]})"])


def assumed(index: Index, values: dict[str, str], enable: list[str]) -> dict[str, str]:
    """The values once `enable` is set, with what those select (and what that selects): so that a
    second symbol is planned knowing what the first one's plan sets already."""
    out = dict(values)
    todo = list(enable)
    while todo:
        name = todo.pop()
        if out.get("CONFIG_" + name) == "y":
            continue
        out["CONFIG_" + name] = "y"
        todo += [t for e in index.entries.get(name, []) for kind, t, cond in e.selects
                 if kind == "select" and (not cond or evaluate(parse(cond), out) == 2)]
    return out


def plan(index: Index, name: str, values: dict[str, str], refused: set[str] = frozenset()) -> Plan:
    """The symbols to enable so that CONFIG_<name> is set, with the routes taken, or why it cannot be."""
    return Planner(index, values, refused).symbol(name)
