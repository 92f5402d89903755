"""Compiler diagnostics from a build log, and the set of warnings a build directory holds.

A diagnostic's identity leaves out its line and column, so a hunk elsewhere in
the file that shifts lines does not make an old warning look new. An
incremental build prints warnings only for what it recompiled, so each kept O=
directory remembers, per source file, the warnings its last compile gave
(`.kseries-warnings.json`): a file recompiled cleanly forgets its old ones.
Steps are compared as sets, not counts, so one warning cannot silently take
another's place.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

DIAG = re.compile(r"^(?P<file>[^\s:][^:]*?):(?P<line>\d+):(?:(?P<col>\d+):)? (?:fatal )?(?P<kind>warning|error): "
                  r"(?P<message>.*?)(?: \[(?P<option>-W[^\]]+)\])?\s*$")
COMPILED = re.compile(r"^\s+(?:CC|AS|CPP|LDS)\s+(?:\[M\]\s+)?(?P<obj>\S+)\.(?:o|s|i|lds)\s*$")
STATE = ".kseries-warnings.json"
PREFIXES = ("/src/", "../", "./")


@dataclass(frozen=True)
class Diagnostic:
    file: str
    line: int
    column: int
    kind: str  # warning | error
    message: str
    option: str = ""  # -Wunused-variable, -Werror=..., or ""

    @property
    def key(self) -> str:
        """Identity without position: file, kind, option, message."""
        return f"{self.file}: {self.kind}: {self.message}" + (f" [{self.option}]" if self.option else "")

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.kind}: {self.message}" + \
            (f" [{self.option}]" if self.option else "")


def normal_path(path: str) -> str:
    for prefix in PREFIXES:
        while path.startswith(prefix):
            path = path[len(prefix):]
    return path


# warnings of the tools after the compiler: objtool on an object, modpost, the linker. Their
# identity leaves out code offsets (func+0x1a), which move with any change.
TOOLS = [(re.compile(r"^(?P<file>\S+?\.o): warning: (?P<message>objtool: .*)$"), None),
         (re.compile(r"^WARNING: (?P<message>modpost: .*)$"), "modpost"),
         (re.compile(r"^(?:\S+-)?ld(?:\.lld|\.bfd)?: (?:\S+: )?warning: (?P<message>.*)$"), "ld")]
OFFSET = re.compile(r"\+0x[0-9a-f]+(?:/0x[0-9a-f]+)?")
LINKED = re.compile(r"^\s+(?:LD|MODPOST|OBJTOOL)\s+(?:\S*/)?(?:vmlinux|Module\.symvers|modules)", re.M)


def tool_warning(line: str) -> Diagnostic | None:
    for regex, file in TOOLS:
        m = regex.match(line)
        if m:
            return Diagnostic(normal_path(file or m.group("file")), 0, 0, "warning",
                              OFFSET.sub("", m.group("message").strip()))
    return None


def parse(text: str) -> list[Diagnostic]:
    found, seen = [], set()
    for line in text.splitlines():
        m = DIAG.match(line)
        if not m:
            tool = tool_warning(line)
            if tool is not None and (tool.key, 0) not in seen:
                seen.add((tool.key, 0))
                found.append(tool)
            continue
        d = Diagnostic(normal_path(m.group("file")), int(m.group("line")), int(m.group("col") or 0),
                       m.group("kind"), m.group("message").strip(), m.group("option") or "")
        if (d.key, d.line) not in seen:  # make -j can print one twice; a header is seen from many files
            seen.add((d.key, d.line))
            found.append(d)
    return found


def compiled_sources(text: str) -> set[str]:
    """Source files (by object stem) the build recompiled: 'mm/rmap' for '  CC  mm/rmap.o'."""
    return {m.group("obj") for line in text.splitlines() if (m := COMPILED.match(line))}


def update(out_dir: Path, log_text: str) -> dict[str, list[str]]:
    """Fold one build's log into the O= directory's remembered warnings; return the new state."""
    path = out_dir / STATE
    try:
        state: dict[str, list[str]] = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        state = {}
    diags = [d for d in parse(log_text) if d.kind == "warning"]
    for stem in compiled_sources(log_text):
        for ext in (".c", ".S", ".o"):
            state.pop(stem + ext, None)  # recompiled: its warnings are those printed now, if any
    if LINKED.search(log_text):  # linked again: the link-time tools' warnings are those printed now
        for file in ("vmlinux.o", "vmlinux", "modpost", "ld"):
            state.pop(file, None)
    by_file: dict[str, set[str]] = {}
    for d in diags:
        by_file.setdefault(d.file, set()).add(d.key)
    for file, keys in by_file.items():
        fresh = file.endswith((".c", ".S", ".o")) or file in ("modpost", "ld")
        state[file] = sorted(keys) if fresh else sorted(set(state.get(file, [])) | keys)
    path.write_text(json.dumps(state, indent=0, sort_keys=True))
    return state


def warning_set(state: dict[str, list[str]]) -> set[str]:
    return {k for keys in state.values() for k in keys}

