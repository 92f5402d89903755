"""A posted series as a domain object: patches in order, subjects, diffstat.

The patches are read from a directory of git format-patch files (the offline
copy kept in configs/series/) or from a downloaded mbox split by git mailsplit.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.infra.errors import UserError

SUBJECT_RE = re.compile(r"^\s*\[(?P<tags>[^\]]*?)\]\s*(?P<title>.*)$", re.S)
COUNT_RE = re.compile(r"(?:^|\s)(\d+)/(\d+)(?:\s|$)")


@dataclass(frozen=True)
class FileStat:
    path: str
    insertions: int
    deletions: int


@dataclass(frozen=True)
class Patch:
    index: int
    total: int
    subject: str
    author: str
    path: Path
    files: tuple[FileStat, ...]

    @property
    def label(self) -> str:
        return f"{self.index}/{self.total}"


@dataclass
class Series:
    title: str
    patches: list[Patch] = field(default_factory=list)
    source: str = ""

    @property
    def files(self) -> list[FileStat]:
        """Per-file totals over the whole series, sorted by path as git does."""
        totals: dict[str, list[int]] = {}
        for patch in self.patches:
            for f in patch.files:
                t = totals.setdefault(f.path, [0, 0])
                t[0] += f.insertions
                t[1] += f.deletions
        return [FileStat(p, i, d) for p, (i, d) in sorted(totals.items())]

    @property
    def touched(self) -> list[str]:
        return [f.path for f in self.files]


def diff_stats(diff: str) -> tuple[FileStat, ...]:
    """Per-file insertions/deletions of a unified git diff."""
    stats: list[FileStat] = []
    path, ins, dels, in_hunk = None, 0, 0, False
    for line in diff.splitlines():
        if line.startswith("diff --git "):
            if path is not None:
                stats.append(FileStat(path, ins, dels))
            parts = line.split(" b/", 1)
            path, ins, dels, in_hunk = (parts[1] if len(parts) == 2 else line), 0, 0, False
        elif path is None:
            continue
        elif line.startswith("+++ ") and not in_hunk:
            if line[4:] != "/dev/null":
                path = line[6:] if line.startswith("+++ b/") else line[4:]
        elif line.startswith("--- ") and not in_hunk:
            continue
        elif line.startswith("@@"):
            in_hunk = True
        elif in_hunk and line.startswith("+"):
            ins += 1
        elif in_hunk and line.startswith("-"):
            dels += 1
        elif line.startswith("-- ") and line.strip() == "--":
            break  # signature separator
    if path is not None:
        stats.append(FileStat(path, ins, dels))
    return tuple(stats)


def parse_patch_file(path: Path) -> tuple[str, str, str]:
    """(subject, author, diff text) of one format-patch file."""
    raw = path.read_bytes()
    if not raw.strip():
        raise UserError(f"The patch file {path} is empty. Replace it with the mail of that patch.")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    subject = " ".join(str(msg.get("Subject", "")).split())
    author = str(msg.get("From", ""))
    body = msg.get_body(preferencelist=("plain",)) if msg.is_multipart() else msg
    text = body.get_content() if body is not None else ""
    if not subject or "diff --git " not in text:
        raise UserError(
            f"{path} is not a patch mail: it needs a Subject header and a 'diff --git' "
            "body, as written by git format-patch or b4. Replace it with the patch mail."
        )
    return subject, author, text


def split_subject(subject: str) -> tuple[int | None, int | None, str]:
    m = SUBJECT_RE.match(subject)
    if not m:
        return None, None, subject
    count = COUNT_RE.search(" " + m.group("tags") + " ")
    if not count:
        return None, None, m.group("title").strip()
    return int(count.group(1)), int(count.group(2)), m.group("title").strip()


def load_patch_dir(directory: Path, title: str, source: str) -> Series:
    files = sorted(p for p in directory.iterdir() if p.suffix in (".patch", ".eml", ".mbox") or p.name.isdigit())
    if not files:
        raise UserError(f"{directory} holds no .patch files. Put the series' patch mails there.")
    parsed = []
    for i, path in enumerate(files, 1):
        subject, author, text = parse_patch_file(path)
        k, n, clean = split_subject(subject)
        parsed.append((k or i, n or len(files), clean, author, path, diff_stats(text)))
    parsed.sort(key=lambda p: p[0])
    indices = [p[0] for p in parsed]
    total = parsed[0][1]
    if indices != list(range(1, total + 1)):
        missing = sorted(set(range(1, total + 1)) - set(indices))
        dup = sorted({i for i in indices if indices.count(i) > 1})
        raise UserError(
            f"The series in {directory} is incomplete or inconsistent: expected patches 1..{total}"
            + (f", missing {', '.join(map(str, missing))}" if missing else "")
            + (f", duplicated {', '.join(map(str, dup))}" if dup else "")
            + ". Add the missing patch mails or remove the duplicates."
        )
    patches = [Patch(k, n, s, a, p, st) for k, n, s, a, p, st in parsed]
    return Series(title=title, patches=patches, source=source)


def format_diffstat(files: list[FileStat]) -> str:
    """git's --stat format, ending with the 'N files changed' summary line."""
    if not files:
        return " 0 files changed\n"
    name_w = max(len(f.path) for f in files)
    counts = [f.insertions + f.deletions for f in files]
    num_w = max(len(str(c)) for c in counts)
    graph_w = max(0, 80 - name_w - num_w - 6)
    biggest = max(counts) or 1
    lines = []
    for f, c in zip(files, counts):
        ins, dels = f.insertions, f.deletions
        if biggest > graph_w and graph_w > 0:
            scale = graph_w / biggest
            ins, dels = round(ins * scale), round(dels * scale)
        lines.append(f" {f.path:<{name_w}} | {c:>{num_w}} {'+' * ins}{'-' * dels}".rstrip())
    n = len(files)
    total_ins = sum(f.insertions for f in files)
    total_del = sum(f.deletions for f in files)
    summary = f" {n} file{'s' if n != 1 else ''} changed"
    if total_ins or not total_del:
        summary += f", {total_ins} insertion{'s' if total_ins != 1 else ''}(+)"
    if total_del or not total_ins:
        summary += f", {total_del} deletion{'s' if total_del != 1 else ''}(-)"
    return "\n".join(lines + [summary]) + "\n"
