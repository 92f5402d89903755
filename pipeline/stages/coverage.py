"""Stages 'compiled' and 'coverage': proof that every file the series changes was compiled.

Per series lane, after its build ('compiled'): which changed .c/.S files this
kernel compiled (kbuild's .cmd file of the object, the object part of
vmlinux.a or a module, or compiled after the current .config), and for each
changed header how many compiled objects include it (the deps lists of the
same .cmd files). Once every lane has run ('coverage'): one testcase per
changed file, naming the lanes that compiled it. A changed source file no lane
compiled is a FAIL naming the Kconfig symbol its Makefile gates it with; a
file of an arch this run has no lane for is not covered, and says so.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.model.lane import Lane, Role
from pipeline.model.results import Case, Status
from pipeline.stages.interface import Outcome, Work

CODE = (".c", ".S", ".h")


def changed(patches: list) -> list[str]:
    """The .c, .S and .h files the series changes, in order of first change."""
    return list(dict.fromkeys(f.path for p in patches for f in p.files if f.path.endswith(CODE)))


def archive_members(out: Path) -> set[str]:
    """Objects linked into vmlinux: the names of the thin archive vmlinux.a, and modules'."""
    members: set[str] = set()
    thin = out / "vmlinux.a"
    if thin.is_file():
        data = thin.read_bytes()
        pos = 8 if data.startswith(b"!<thin>\n") else len(data)
        while pos + 60 <= len(data):  # a symbol table ("/", "/SYM64/") may come before the names ("//")
            name, size = data[pos:pos + 16], int(data[pos + 48:pos + 58].decode().strip() or 0)
            if name.startswith(b"//"):
                table = data[pos + 60:pos + 60 + size]
                members |= {n.decode() for n in table.split(b"/\n") if n.strip()}
                break
            if not name.startswith(b"/"):
                break
            pos += 60 + size + (size & 1)
    order = out / "modules.order"
    if order.is_file():
        members |= {line.strip().replace(".ko", ".o") for line in order.read_text().splitlines() if line.strip()}
    return members


def current_cmds(out: Path, members: set[str] | None = None):
    """(object, .cmd file) of every object the current build in out made: linked into vmlinux or a
    module, or compiled after the current .config (a .cmd left by an earlier config is not)."""
    members = archive_members(out) if members is None else members
    config_time = (out / ".config").stat().st_mtime if (out / ".config").exists() else 0
    for cmd in out.rglob(".*.o.cmd"):
        obj = str(cmd.relative_to(out).parent / cmd.name[1:-4])
        if obj in members or cmd.stat().st_mtime >= config_time:
            yield obj, cmd


def scan(out: Path, files: list[str]) -> tuple[list[str], dict[str, int]]:
    """(the changed sources this O= directory compiled, changed header -> compiled objects including it)."""
    headers = {f: 0 for f in files if f.endswith(".h")}
    wanted = {f"/src/{h}": h for h in headers}
    made = set()
    for obj, cmd in current_cmds(out):
        made.add(obj)
        if wanted:
            text = cmd.read_text(errors="replace")
            for path, header in wanted.items():
                if path + " " in text or path + "\n" in text:
                    headers[header] += 1
    compiled = [f for f in files if not f.endswith(".h") and f.rsplit(".", 1)[0] + ".o" in made]
    return compiled, headers


def compiled_inputs(out: Path) -> set[str] | None:
    """Every source and header the current build in out compiled from (kbuild's .cmd files of
    linked objects or of objects compiled under the current .config), or None without a build."""
    members = archive_members(out)
    if not members:
        return None
    found: set[str] = set()
    for _, cmd in current_cmds(out, members):
        found.update(m.group(1) for m in re.finditer(r"/src/(\S+?)(?:\s|$)", cmd.read_text(errors="replace")))
    return found


def unaffected(paths: list[str], inputs: set[str], own_arch_dir: str) -> bool:
    """Can none of these changed files change what this arch's build compiles? Only when each is
    another arch's (arch/<other>/), documentation, or a C/asm/Rust file no compiled object reads."""
    for path in paths:
        other = re.match(r"arch/([^/]+)/", path)
        if other and other.group(1) != own_arch_dir:
            continue
        if path.startswith("Documentation/") or path == "MAINTAINERS":
            continue
        if path.endswith((".c", ".S", ".h", ".rs")) and not path.startswith(("tools/", "scripts/")) \
                and path not in inputs:
            continue
        return False
    return True


def lane(work: Work) -> Outcome:
    """What this lane's kernel compiled of the series' changed files."""
    files = changed(work.patches)
    if not files:
        return Outcome(Status.SKIP, "the series changes no .c, .S or .h file")
    compiled, headers = scan(Path(work.need("build").artifacts["out_dir"]), files)
    sources = [f for f in files if not f.endswith(".h")]
    parts = [f"{len(compiled)} of {len(sources)} changed source file(s) compiled"]
    parts += [f"{h}: included by {n} object(s)" for h, n in headers.items()]
    return Outcome(Status.PASS, "; ".join(parts), facts={"compiled": compiled, "includers": headers})


def gate(tree: Path, source: str) -> str:
    """The Kconfig symbols its Makefiles build the source under: 'CONFIG_X (dir/Makefile), CONFIG_Y'."""
    from pipeline.stages import kbuild

    symbols = kbuild.gates(tree, source) or []
    if not symbols:
        return ""
    where = next((f"{Path(source).parent}/{n}" for n in ("Kbuild", "Makefile")
                  if (tree / Path(source).parent / n).is_file()), "")
    return ", ".join([f"{symbols[0]} ({where})", *symbols[1:]])


CANNOT = ("is defined in no Kconfig this arch reads", "has no prompt")  # no fragment can set such a symbol


def unmet(work: Work, tree: Path, source: str, lanes: list[str]) -> tuple[str, bool]:
    """Why the lanes' configs leave the source out: per lane, the gating symbols that are off and
    what each needs (from the derive stage, or read from Kconfig when derivation did not run); and
    whether no lane could compile it whatever its config (each lacks a symbol its arch cannot have,
    such as CONFIG_64BIT on a 32-bit arch)."""
    from pipeline.run.select import arch_dir
    from pipeline.stages import build, kbuild, kconfig
    from pipeline.stages.derive import why_not

    symbols = kbuild.gates(tree, source) or []
    parts, able = [], []
    for arch in (a for a in work.arches if a.name in lanes):
        if work.find("build", arch.name, Role.SERIES, "") is None:
            continue
        # the lane's own copy: a kept O= may hold another run's config by now (a build taken from the lane cache)
        cfg = Lane(arch, Role.SERIES, work.ctx.run_dir).dir / "config"
        if not cfg.is_file():
            continue
        values = build.parse_config(cfg.read_text())
        off = [s for s in symbols if values.get(s) != "y"]
        derived = work.find("derive", arch.name, Role.SERIES, "")
        known = derived.facts.get("unmet", {}) if derived is not None else {}
        index = None
        for sym in off:
            why = known.get(sym)
            if why is None:
                index = index or kconfig.Index(tree, arch_dir(arch))
                why = why_not(index, sym.removeprefix("CONFIG_"), values)
            parts.append(f"{arch.name}: {sym} is off ({why})")
            if any(why.startswith(f"{sym.removeprefix('CONFIG_')} {c}") for c in CANNOT):
                break  # the arch decides this symbol: no config of this lane compiles the file
        else:
            able.append(arch.name)
    if parts and work.spec is not None and not work.spec.derive:
        parts.append("config derivation is off")
    return "; ".join(parts), bool(parts) and not able


def summary(work: Work) -> Outcome:
    """One testcase per changed file: the lanes that compiled it, or why none did."""
    files = changed(work.patches)
    lanes = {a.name: work.find("compiled", a.name, Role.SERIES, "") for a in work.arches}
    ran = {a: r for a, r in lanes.items() if r is not None and r.status == Status.PASS}
    if not files or not ran:
        why = "the series changes no .c, .S or .h file" if not files else "no lane's build passed"
        return Outcome(Status.SKIP, why)
    tree = Path(work.need("apply").artifacts["worktree"])
    dirs = {a.name: a.kernel.image_path.split("/")[1] for a in work.arches if a.name in ran}  # arch/<dir>/
    cases = [_case(f, ran, dirs, tree) for f in files]
    for case in cases:
        if case.status == Status.FAIL and not case.test.endswith(".h"):
            why, impossible = unmet(work, tree, case.test, list(ran))
            if impossible:  # another arch's lane would compile it: this run has none
                case.status = Status.SKIP
                case.message = f"not covered: no lane of this run can compile it ({', '.join(ran)}) - {why}"
            else:
                case.message += f" - {why}" if why else ""
    bad = [c.test for c in cases if c.status == Status.FAIL]
    status = Status.worst([Status.PASS, *(c.status for c in cases)])
    return Outcome(status, f"not compiled on any lane: {', '.join(bad)}" if bad else
                   f"{len(files)} changed file(s): each compiled on at least one lane", cases)


def _case(path: str, ran: dict, dirs: dict, tree: Path) -> Case:
    if path.endswith(".h"):
        counts = {a: r.facts.get("includers", {}).get(path, 0) for a, r in ran.items()}
        users = {a: n for a, n in counts.items() if n}
        if users:
            return Case("coverage", path, Status.PASS, 0, "included by " + ", ".join(
                f"{n} object(s) on {a}" for a, n in users.items()))
        status = Status.SKIP if _foreign(path, dirs) else Status.FAIL
        return Case("coverage", path, status, 0, f"no compiled object on {', '.join(ran)} includes it"
                    + (f" ({_foreign(path, dirs)})" if status == Status.SKIP else ""))
    on = [a for a, r in ran.items() if path in r.facts.get("compiled", [])]
    if on:
        return Case("coverage", path, Status.PASS, 0, f"compiled on {', '.join(on)}")
    foreign = _foreign(path, dirs)
    if foreign:
        return Case("coverage", path, Status.SKIP, 0, f"not covered: {foreign}")
    symbol = gate(tree, path)
    return Case("coverage", path, Status.FAIL, 0, f"not compiled on any lane ({', '.join(ran)}): "
                + (f"its Makefiles build it under {symbol}, which no lane's config enables" if symbol
                   else "no lane's config builds it (no gating symbol found in its Makefile)"))


def _foreign(path: str, dirs: dict) -> str:
    """Why an arch/<dir>/ file cannot be compiled by this run's lanes ('' when it can)."""
    m = re.match(r"arch/([^/]+)/", path)
    if not m or m.group(1) in dirs.values():
        return ""
    return f"arch/{m.group(1)} code, and this run has no lane for that arch"
