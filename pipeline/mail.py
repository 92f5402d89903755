"""Mailing-list mail into a series: what b4 does when it picks patches out of a thread.

Input is a list of raw mails (from lore, an mbox, a maildir, a directory of
.patch files, git format-patch or patchwork). Each mail is classified as a
patch, a cover letter (0/n), a reply or something else; the newest revision
(v2, v3 ... in the subject tags) wins; its patches are ordered by [PATCH k/n]
and must be complete and unique; every diff is checked for truncated hunks.
The cover letter's base-commit: and change-id: trailers are read, and review
trailers (Reviewed-by, Acked-by, Tested-by) given in the patches or in replies
to them (or to the cover letter, meaning every patch) are collected.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UserError
from .series import Patch, Series, diff_stats, split_subject

TAGS_RE = re.compile(r"^\s*\[(?P<tags>[^\]]*)\]")
REVISION_RE = re.compile(r"(?:^|\s)v(\d+)(?:\s|$)", re.I)
TRAILER_RE = re.compile(r"^(Reviewed-by|Acked-by|Tested-by|Reported-by):\s*(.+)$", re.M)
HUNK_RE = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")
REVIEW = ("Reviewed-by", "Acked-by", "Tested-by")


@dataclass
class Mail:
    name: str  # where it came from, for messages
    raw: bytes
    subject: str = ""
    sender: str = ""
    message_id: str = ""
    in_reply_to: str = ""
    body: str = ""
    kind: str = "other"  # patch | cover | reply | other
    index: int | None = None
    total: int | None = None
    revision: int = 1
    title: str = ""


@dataclass
class Parsed:
    """What the thread held besides the chosen patches, for display and provenance."""
    series: Series
    cover: Mail | None = None
    revision: int = 1
    base_commit: str = ""
    change_id: str = ""
    trailers: dict[int, list[str]] = field(default_factory=dict)  # patch index -> review trailers
    dropped: list[str] = field(default_factory=list)  # older revisions, replies, other mail


def _msgid(value) -> str:
    return str(value or "").strip().strip("<>").strip()


def read(name: str, raw: bytes) -> Mail:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    mail = Mail(name, raw)
    try:
        mail.subject = " ".join(str(msg.get("Subject", "")).split())
        mail.sender = str(msg.get("From", ""))
        mail.message_id = _msgid(msg.get("Message-Id"))
        mail.in_reply_to = _msgid(msg.get("In-Reply-To"))
        part = msg.get_body(preferencelist=("plain",)) if msg.is_multipart() else msg
        mail.body = part.get_content() if part is not None else ""
    except (LookupError, ValueError, TypeError, AttributeError):  # broken headers or charset
        mail.body = raw.decode("utf-8", "replace")
    if not isinstance(mail.body, str):
        mail.body = mail.body.decode("utf-8", "replace") if isinstance(mail.body, bytes) else ""
    has_diff = "\ndiff --git " in "\n" + mail.body
    k, n, mail.title = split_subject(mail.subject)
    tags = TAGS_RE.match(mail.subject)
    rev = REVISION_RE.search(tags.group("tags")) if tags else None
    mail.revision = int(rev.group(1)) if rev else 1
    mail.index, mail.total = k, n
    if re.match(r"^\s*(re|aw|fwd?)\s*:", mail.subject, re.I):
        mail.kind = "reply"
    elif k == 0:
        mail.kind = "cover"
    elif has_diff:
        mail.kind = "patch"
    return mail


def truncated(diff: str) -> str:
    """Why a diff is cut short ('' when every hunk has the lines its header promises)."""
    lines = diff.splitlines()
    i = 0
    path = "?"
    while i < len(lines):
        line = lines[i]
        if line.startswith("diff --git "):
            path = line.split(" b/", 1)[-1]
        m = HUNK_RE.match(line)
        if not m:
            i += 1
            continue
        old = int(m.group(1) if m.group(1) is not None else 1)
        new = int(m.group(2) if m.group(2) is not None else 1)
        i += 1
        while (old > 0 or new > 0) and i < len(lines):
            body = lines[i]
            if body.startswith("\\"):
                i += 1
                continue
            tag = body[:1]
            if tag == " " or body == "":
                old, new = old - 1, new - 1
            elif tag == "-":
                old -= 1
            elif tag == "+":
                new -= 1
            else:
                break
            i += 1
        if old > 0 or new > 0:
            return f"{path}: the hunk '{line}' ends {max(old, new)} line(s) early"
    return ""


def _trailers(text: str) -> list[str]:
    """Review trailers in a mail's own text, not in quoted lines."""
    found = []
    for m in TRAILER_RE.finditer(text):
        if m.group(1) in REVIEW:
            found.append(f"{m.group(1)}: {m.group(2).strip()}")
    return found


def parse(mails: list[Mail], where: str, title: str = "", out_dir: Path | None = None) -> Parsed:
    """Pick the series out of mails. out_dir: where each chosen patch is written for git am."""
    if not mails:
        raise UserError(f"{where} holds no mail at all. Point kseries at the mbox, maildir or "
                        "directory of .patch files of the series.")
    patches = [m for m in mails if m.kind == "patch"]
    covers = [m for m in mails if m.kind == "cover"]
    if not patches:
        kinds = {k: sum(1 for m in mails if m.kind == k) for k in ("cover", "reply", "other")}
        held = ", ".join(f"{n} {k}" for k, n in kinds.items() if n)
        raise UserError(
            f"{where} holds no patch mail ({len(mails)} mail(s): {held}). A patch mail has a "
            "subject like '[PATCH k/n] ...' and a 'diff --git' body, as git format-patch and b4 "
            "write them. Check that this is the series' thread and not only its discussion.")
    newest = max(m.revision for m in patches)
    chosen = [m for m in patches if m.revision == newest]
    dropped = [f"v{m.revision} {m.subject}" for m in patches if m.revision != newest]
    unique: dict[str, Mail] = {}
    for m in chosen:  # the same mail twice (a thread saved twice) is one mail
        unique.setdefault(m.message_id or m.raw.decode("utf-8", "replace"), m)
    chosen = list(unique.values())
    single = len(chosen) == 1 and chosen[0].index is None
    totals = {m.total for m in chosen if m.total is not None}
    if len(totals) > 1:
        raise UserError(
            f"The v{newest} patches in {where} disagree on the series length "
            f"({', '.join(sorted(f'/{t}' for t in totals))}): two series are mixed. "
            "Keep only one series' mails.")
    total = totals.pop() if totals else len(chosen)
    if not single and any(m.index is None for m in chosen):
        bad = next(m for m in chosen if m.index is None)
        raise UserError(f"{where}: '{bad.subject}' has no [PATCH k/{total}] number while the "
                        "other patches do. Renumber it or remove it.")
    by_index: dict[int, list[Mail]] = {}
    for m in chosen:
        by_index.setdefault(1 if single else m.index, []).append(m)
    missing = [k for k in range(1, total + 1) if k not in by_index]
    dups = sorted(k for k, ms in by_index.items() if len(ms) > 1)
    extra = sorted(k for k in by_index if k > total)
    if missing or dups or extra:
        older = {m.index for m in patches if m.revision != newest}
        mixed = [k for k in missing if k in older]
        raise UserError(
            f"The v{newest} series in {where} is incomplete or inconsistent: expected patches "
            f"1..{total}"
            + (f", missing {', '.join(map(str, missing))}" if missing else "")
            + (f", patch {', '.join(map(str, dups))} more than once" if dups else "")
            + (f", numbered beyond {total}: {', '.join(map(str, extra))}" if extra else "")
            + (f" (an older revision has {', '.join(map(str, mixed))}: revisions are mixed)" if mixed else "")
            + ". Fetch the whole thread of one revision (b4 am writes one), or add the missing "
              "patch mails and remove the duplicates.")
    cover = next((c for c in covers if c.revision == newest), None)
    ids = {m.message_id: m.index or 1 for m in chosen if m.message_id}
    trailers: dict[int, list[str]] = {k: _trailers(ms[0].body.split("\n---\n")[0]) for k, ms in by_index.items()}
    for reply in (m for m in mails if m.kind == "reply"):
        own = "\n".join(line for line in reply.body.splitlines() if not line.startswith(">"))
        given = _trailers(own)
        if not given:
            continue
        if cover is not None and reply.in_reply_to == cover.message_id:
            targets = list(by_index)
        elif reply.in_reply_to in ids:
            targets = [ids[reply.in_reply_to]]
        else:
            continue
        for k in targets:
            trailers[k] += [t for t in given if t not in trailers[k]]
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for old in out_dir.glob("*.patch"):
            old.unlink()
    result: list[Patch] = []
    for k in range(1, total + 1):
        m = by_index[k][0]
        cut = truncated(m.body)
        if cut:
            raise UserError(
                f"Patch {k}/{total} '{m.title or m.subject}' in {where} is truncated: {cut}. "
                "The mail was cut in transit or by an editor; fetch it again (b4 am, or the "
                "thread's t.mbox.gz from lore).")
        path = m.name
        if out_dir is not None:
            path = out_dir / f"{k:04d}.patch"
            path.write_bytes(m.raw)
        result.append(Patch(k, total, m.title or m.subject, m.sender, Path(path), diff_stats(m.body)))
    trailers_text = (cover.body if cover else "") + "\n" + "\n".join(m.body for m in chosen)
    base = re.search(r"^base-commit:\s*([0-9a-f]{7,40})\s*$", trailers_text, re.M)
    change = re.search(r"^change-id:\s*(\S+)\s*$", trailers_text, re.M)
    series_title = title or (cover.title if cover else result[0].subject)
    dropped += [f"reply: {m.subject}" for m in mails if m.kind == "reply"]
    dropped += [f"not a patch: {m.subject or m.name}" for m in mails if m.kind == "other"]
    return Parsed(Series(series_title, result, where), cover, newest,
                  base.group(1) if base else "", change.group(1) if change else "", trailers, dropped)
