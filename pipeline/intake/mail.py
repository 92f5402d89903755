"""One mail of a thread: what it is (patch, cover letter, reply, other), where it sits, what it says.

Subjects, trailers and mbox splitting are b4's own rules, from liblore (b4's
message handling as a library): `[PATCHv2 1/3]`, `[RFC PATCH net-next 0/4]`
and `Re:` in other languages are read as b4 reads them; trailer names are
case-insensitive, `<mailto:...>` junk is dropped, a reply's trailer counts
only when it names a person and that person sent the reply. The diff itself
is judged by git's own patch parser (git apply --numstat), so a plain
`diff -u` is a patch and a truncated or mangled one is named with its line.
"""

from __future__ import annotations

import email.policy
import email.utils
import re
import subprocess
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from liblore import series as lseries
from liblore import utils as lutils

from pipeline.model.series import FileStat

REVIEW = ("reviewed-by", "acked-by", "tested-by")  # endorsements shown beside a patch
PATCH_TYPES = ("text/x-patch", "text/x-diff", "text/plain")


@dataclass
class Mail:
    name: str  # where it came from, for messages
    raw: bytes
    subject: str = ""
    sender: str = ""  # "Name <addr>" as the From header says
    to: str = ""
    cc: str = ""
    author: tuple[str, str] = ("", "")  # who wrote the patch: an in-body From: wins
    date: str = ""
    message_id: str = ""
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    body: str = ""  # the text: message, then any attached patch
    kind: str = "other"  # patch | cover | reply | other
    index: int | None = None
    total: int | None = None
    revision: int = 1
    title: str = ""
    trailers: list = field(default_factory=list)  # liblore Trailer: own ones, or a reply's self-attested ones
    crlf: bool = False

    @property
    def parents(self) -> tuple[str, ...]:
        """Who this mail answers, nearest first."""
        return tuple(p for p in dict.fromkeys([self.in_reply_to, *reversed(self.references)]) if p)


def split_mbox(data: bytes) -> list[bytes]:
    """An mbox's mails (b4's From_-line rule: a body line 'From the datasheet' is no separator)."""
    if data[:5] != b"From ":
        return [data] if data.strip() else []
    chunks = lutils.split_mbox_as_bytes(data)
    if chunks:  # liblore ends the last mail with a line end the mailbox may not have (cut.cut_mid_line)
        chunks[-1] = chunks[-1][:-1]
    return [m for m in chunks if m.strip()]


def _attachments(msg: EmailMessage) -> str:
    """Patches sent as attachments (text/x-patch and friends), after the message text."""
    if not msg.is_multipart():
        return ""
    body = msg.get_body(preferencelist=("plain",))
    out = []
    for part in msg.walk():
        if part is body or part.is_multipart() or part.get_content_type() not in PATCH_TYPES:
            continue
        data = part.get_payload(decode=True) or b""
        text = data.decode(part.get_content_charset() or "utf-8", "replace")
        if lutils.body_has_diff(text):
            out.append(text)
    return "\n".join(out)


def read(name: str, raw: bytes) -> Mail:
    mail = Mail(name, raw, crlf=b"\r\n" in raw[:4096])
    try:
        msg = lutils.parse_message(raw.replace(b"\r\n", b"\n"))
        mail.subject = " ".join(lutils.msg_get_subject(msg).split())
        mail.sender = lutils.clean_header(str(msg.get("From", "")))
        mail.author = lutils.msg_get_author(msg, use_inbody=True)
        mail.date = lutils.clean_header(str(msg.get("Date", "")))
        mail.to = lutils.clean_header(", ".join(str(v) for v in msg.get_all("To", [])))
        mail.cc = lutils.clean_header(", ".join(str(v) for v in msg.get_all("Cc", [])))
        mail.message_id = lutils.get_clean_msgid(msg) or ""
        mail.in_reply_to = lutils.get_clean_msgid(msg, "In-Reply-To") or ""
        mail.references = tuple(re.findall(r"<([^>]+)>", str(msg.get("References", ""))))
        text = lutils.msg_get_payload(msg, strip_signature=False)
        extra = _attachments(msg)
        mail.body = text + ("\n" + extra if extra else "")
        mail.trailers = lseries.extract_trailers(msg) if not extra else \
            [lseries.Trailer.parse(n, v) for n, v in lutils.split_body_parts(text).trailers]
    except (LookupError, ValueError, TypeError, AttributeError, IndexError):  # broken headers or charset
        mail.body = raw.decode("utf-8", "replace")
    subject = lseries.parse_patch_subject(mail.subject)
    mail.title = subject.title
    mail.revision = subject.version
    if not subject.counters_inferred:
        mail.index, mail.total = subject.counter, subject.expected
    has_diff = bool(re.search(r"^(diff --git |--- \S.*\n\+\+\+ |GIT binary patch)", mail.body, re.M))
    if subject.is_reply:
        mail.kind = "reply"
    elif subject.is_cover:
        mail.kind = "cover"
    elif has_diff:
        mail.kind = "patch"
    elif mail.in_reply_to:
        mail.kind = "reply"  # answers a mail of the thread, whatever its subject says
    return mail


def headers(mail: Mail) -> dict:
    """What a reply to this mail needs: who, where in the thread, about what."""
    return {"message_id": mail.message_id, "subject": mail.subject, "from": mail.sender, "to": mail.to,
            "cc": mail.cc, "references": list(mail.references)}


def review_trailers(mail: Mail) -> list[str]:
    """The endorsements a patch carries itself (Reviewed-by, Acked-by, Tested-by), as 'Name: value'."""
    return [written(t) for t in mail.trailers if t.key in REVIEW]


def reply_trailers(mail: Mail) -> list[str]:
    """What a reply gives: person trailers from their own sender (liblore drops the rest)."""
    return [written(t) for t in mail.trailers if t.is_person]


def written(trailer) -> str:
    """'Name: value' as the reviewer wrote it, as b4 copies it into the commit: a display name keeps
    the quotes it was typed with and gets none it was not (RFC 5322 quoting is for headers, and
    liblore adds it); encoded words are decoded and '<mailto:>' junk is gone."""
    if not trailer.is_person or not trailer.addr:
        return f"{trailer.name}: {trailer.value}"
    name, addr = lutils.clean_header(trailer.addr[0]), trailer.addr[1]
    return f"{trailer.name}: {name} <{addr}>" if name and name != addr else f"{trailer.name}: {addr}"


PLAIN_PAIR = re.compile(r"^--- (\S+)[^\n]*\n\+\+\+ (\S+)[^\n]*(?=\n@@ )", re.M)


def as_git_reads(body: str) -> tuple[str, int]:
    """A plain diff made in the tree itself (`diff -u lib/x.c.orig lib/x.c`, or of files with no
    directory: patch -p0) as git am reads it: each file's header as a/PATH b/PATH, so git's one
    stripped leading directory is not the tree's own (lib/x.c is not x.c). A diff whose two sides
    start with different directories (a/ b/, linux.orig/ linux/) is left as it is, and so is one
    with a 'diff --git' header or only new and deleted files (nothing tells). Returns the body and
    how many headers changed."""
    if re.search(r"^diff --git ", body, re.M):
        return body, 0
    pairs = [(old, new) for old, new in PLAIN_PAIR.findall(body) if "/dev/null" not in (old, new)]
    if not pairs or any("/" in old and "/" in new and old.split("/", 1)[0] != new.split("/", 1)[0]
                        for old, new in pairs):
        return body, 0

    def header(m: re.Match) -> str:
        old, new = m.group(1), m.group(2)
        return (f"--- {'/dev/null' if old == '/dev/null' else 'a/' + (old if new == '/dev/null' else new)}\n"
                f"+++ {'/dev/null' if new == '/dev/null' else 'b/' + new}")
    return PLAIN_PAIR.subn(header, body)


def numstat(diff: str) -> tuple[tuple[FileStat, ...], str]:
    """git's own reading of a patch: (per-file stats, '' or git's complaint, e.g. 'corrupt patch at line 66')."""
    done = subprocess.run(["git", "apply", "--numstat", "-"], input=diff.encode(), capture_output=True, timeout=60)
    if done.returncode != 0:
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return (), (why[0].removeprefix("error: ") if why else f"git apply exited {done.returncode}")
    stats = []
    for line in done.stdout.decode("utf-8", "replace").splitlines():
        ins, dels, path = line.split("\t", 2)
        stats.append(FileStat(path, int(ins) if ins != "-" else 0, int(dels) if dels != "-" else 0))
    return tuple(stats), ""


def render(mail: Mail, label: str) -> bytes:
    """The patch as one clean mail for git am: LF line ends, the attachment inline, 8-bit UTF-8."""
    msg = EmailMessage(policy=email.policy.SMTP.clone(linesep="\n", max_line_length=None))
    name, addr = mail.author if mail.author[1] else ("", mail.sender)
    msg["From"] = email.utils.formataddr((name, addr)) if name else addr
    if mail.date:
        msg["Date"] = mail.date
    if mail.message_id:
        msg["Message-Id"] = f"<{mail.message_id}>"
    msg["Subject"] = f"[PATCH {label}] {mail.title}"
    body = mail.body.replace("\r\n", "\n")
    msg.set_content(body if body.endswith("\n") else body + "\n", charset="utf-8", cte="8bit")
    return b"From kseries Mon Sep 17 00:00:00 2001\n" + msg.as_bytes()


def write(mail: Mail, label: str, path: Path) -> Path:
    path.write_bytes(render(mail, label))
    return path
