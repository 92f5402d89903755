"""The run as a reply mail to the series' thread, as kernel developers know them from 0-day and BPF CI.

An RFC 5322 reply to the cover letter (or the first patch when there is none):
In-Reply-To and References from the thread, To the author, Cc the thread's
recipients, "Re: <subject>". Plain text under 80 columns: the verdict first,
a patch x arch matrix, each regression or new warning with its patch, arch,
test and a short excerpt, how to reproduce it, and where the full logs are.
--send delivers it over SMTP; host, port, TLS and credentials come from the
environment (KSERIES_SMTP_*), nothing is stored.
"""

from __future__ import annotations

import email.policy
import email.utils
import json
import os
import smtplib
import textwrap
from email.message import EmailMessage
from pathlib import Path

from pipeline.infra.errors import InfraError, UserError
from pipeline.model.lane import Role
from pipeline.model.results import RunRecord, Status

WIDTH = 78


def thread_of(run_dir: Path) -> dict:
    path = run_dir / "series" / "thread.json"
    if not path.is_file():
        raise UserError(f"{run_dir} has no series/thread.json: the run does not know the thread to reply to "
                        "(it was made by an older kseries). Rerun the series.")
    return json.loads(path.read_text())


def compose(record: RunRecord, run_dir: Path, sender: str = "", logs_url: str = "") -> EmailMessage:
    thread = thread_of(run_dir)
    parent = thread.get("cover") or (thread.get("patches") or [None])[0]
    if not parent or not parent.get("message_id"):
        raise UserError(f"The series of {run_dir.name} came without message-ids (a git range or patch files), "
                        "so there is no thread to reply to. Send the report by hand: summary.txt.")
    author = parent["from"]
    cc = [a for a in email.utils.getaddresses([parent.get("to", ""), parent.get("cc", "")])
          if a[1] and a[1].lower() != email.utils.parseaddr(author)[1].lower()]
    msg = EmailMessage(policy=email.policy.SMTP.clone(linesep="\n"))
    msg["From"] = sender or os.environ.get("KSERIES_MAIL_FROM", "kseries <kseries@localhost>")
    msg["To"] = author
    if cc:
        msg["Cc"] = ", ".join(email.utils.formataddr(a) for a in dict.fromkeys(cc))
    subject = parent["subject"]
    msg["Subject"] = subject if subject.lower().startswith("re:") else f"Re: {subject}"
    msg["In-Reply-To"] = f"<{parent['message_id']}>"
    msg["References"] = " ".join(f"<{r}>" for r in [*parent.get("references", []), parent["message_id"]])
    msg["Message-Id"] = email.utils.make_msgid("kseries")
    msg["Date"] = email.utils.formatdate(localtime=False)
    msg.set_content(body(record, run_dir, author, logs_url), charset="utf-8", cte="8bit")
    return msg


def body(record: RunRecord, run_dir: Path, author: str, logs_url: str = "") -> str:
    name = (email.utils.parseaddr(author)[0] or "there").split()[0].strip('"')
    patches = sorted({(c.patch, c.patches) for c in record.cases if c.patch}, key=lambda p: p[0])
    lines = [f"Hi {name},", "", *_wrap(f"kseries tested \"{record.title}\" on {', '.join(record.arches)}: "
                                       f"{record.verdict}."), ""]
    prov = record.provenance
    lines += [f"  base {prov.get('base-commit', '?')[:12]}   tip {prov.get('tip', '?')[:12]}   run {record.run_id}", ""]
    lines += matrix(record, patches) + [""]
    lines += findings(record)
    where = logs_url.rstrip("/") + "/" + record.run_id if logs_url else str(run_dir)
    lanes = [s.role.tag(s.arch) for s in record.stages if s.stage == "build" and s.role is Role.SERIES]
    lines += ["Reproduce a lane's kernel and its boot: run sh reproducer.sh in the lane's", "directory "
              "(Docker, and the images 'invoke setup' builds):"]
    lines += [f"  {where}/{lane}/reproducer.sh" for lane in lanes]
    lines += ["", "Full report and logs:", f"  {where}/summary.txt", f"  {where}/logs/", ""]
    return "\n".join(lines) + "-- \nkseries: CI for Linux kernel patch series\n"


def matrix(record: RunRecord, patches: list[tuple[int, int]]) -> list[str]:
    """Rows: each patch's build (W: it adds warnings), boot, check and each suite; columns: arches."""
    arches = list(record.arches)
    head = f"  {'':<30}" + "".join(f"{a:<10}" for a in arches)
    rows = [head.rstrip()]

    def cell(arch: str, cases) -> str:
        if not cases:
            return "-"
        bad = [c for c in cases if c.status in (Status.FAIL, Status.ERROR, Status.MISS)]
        if any(c.stage == "suite" for c in cases):
            ran = [c for c in cases if c.status != Status.SKIP]
            return f"{sum(1 for c in ran if c.status == Status.PASS)}/{len(ran)}" if ran else "skip"
        return bad[0].status.value if bad else Status.worst(c.status for c in cases).value

    series = [c for c in record.cases if c.role is Role.SERIES]
    subjects = {c.patch: c.test for c in series if c.stage == "apply"}
    for k, n in patches:
        label = f"{k}/{n} {subjects.get(k, '')}"[:28]
        cells = []
        for a in arches:
            built = [c for c in series if c.arch == a and c.stage == "per-patch" and c.patch == k]
            text = cell(a, [c for c in built if c.test == "build"])
            if any(c.test == "warnings" and c.status == Status.FAIL for c in built):
                text += " W"
            cells.append(text)
        rows.append(f"  {label:<30}" + "".join(f"{x:<10}" for x in cells))
    groups = ["boot", "check", *sorted({c.suite for c in series if c.stage == "suite"})]
    for group in groups:
        cells = [cell(a, [c for c in series if c.arch == a and c.group == group]) for a in arches]
        rows.append(f"  {group:<30}" + "".join(f"{x:<10}" for x in cells))
    return [r.rstrip() for r in rows]


SHOWN = 8  # regressions listed per patch; summary.txt has them all


def findings(record: RunRecord) -> list[str]:
    from pipeline.report.summary import by_patch
    from pipeline.run.policy import own_failures, placed_splats

    lines = []
    groups = by_patch(record)
    if groups:
        lines.append(f"Regressions against the base ({sum(len(g) for g in groups.values())}):")
        for introduced, group in groups.items():
            if introduced or len(groups) > 1:
                lines += _wrap(f"introduced by {introduced} ({len(group)}):" if introduced else
                               f"not bisected ({len(group)}):", "  ")
            for v in group[:SHOWN]:
                lines += _wrap(f"{v.arch} {v.suite} {v.test}: base {v.base} -> series {v.series}", "    ")
                lines += [f"      > {x[:WIDTH - 8]}" for x in v.excerpt.splitlines()[:3] if x.strip()]
            if len(group) > SHOWN:
                lines.append(f"    ... and {len(group) - SHOWN} more (summary.txt lists every one)")
    elif record.verdicts:
        lines.append(f"No regressions against the base ({len(record.verdicts)} tests compared).")
    own = own_failures(record)
    placed = placed_splats(record)
    if own:
        lines += ["", "Failures of the series' own build, boot and checks:"]
        for c in own:
            by = f" [introduced by {placed[c.arch]}]" if c.stage == "check" and c.arch in placed else ""
            lines += _wrap(f"{c.arch or 'all'} {c.name}: {c.message}{by}", "  ")
            lines += [f"    > {x[:WIDTH - 6]}" for x in c.detail.splitlines()[:4] if x.strip()]
    broken = [c for c in record.cases if c.status.broken]
    if broken:
        lines += ["", "Not the series' fault (infrastructure or kseries), not blamed:"]
        lines += [x for c in broken[:5] for x in _wrap(f"{c.arch or 'all'} {c.name}: {c.message}", "  ")]
    return lines + [""]


def _wrap(text: str, indent: str = "") -> list[str]:
    """A paragraph (no indent) or an item (indented, its continuation lines a little more)."""
    more = indent + "  " if indent else ""
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=more) or [""]


def send(msg: EmailMessage) -> str:
    """Deliver over SMTP: KSERIES_SMTP_HOST, _PORT, _TLS (starttls, ssl or none), _USER, _PASSWORD."""
    host = os.environ.get("KSERIES_SMTP_HOST", "")
    if not host:
        raise UserError("--send needs an SMTP server: set KSERIES_SMTP_HOST (and KSERIES_SMTP_PORT, "
                        "KSERIES_SMTP_TLS=starttls|ssl|none, KSERIES_SMTP_USER, KSERIES_SMTP_PASSWORD).")
    tls = os.environ.get("KSERIES_SMTP_TLS", "starttls")
    port = int(os.environ.get("KSERIES_SMTP_PORT", "465" if tls == "ssl" else "587"))
    try:
        smtp = smtplib.SMTP_SSL(host, port, timeout=30) if tls == "ssl" else smtplib.SMTP(host, port, timeout=30)
        with smtp:
            if tls == "starttls":
                smtp.starttls()
            if os.environ.get("KSERIES_SMTP_USER"):
                smtp.login(os.environ["KSERIES_SMTP_USER"], os.environ.get("KSERIES_SMTP_PASSWORD", ""))
            refused = smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        raise InfraError(f"The SMTP server {host}:{port} did not take the mail ({type(exc).__name__}: {exc}). "
                         "Check KSERIES_SMTP_* and the network; the mail was not sent.") from exc
    if refused:
        raise InfraError(f"The SMTP server {host}:{port} refused recipients: {', '.join(refused)}.")
    return f"sent to {msg['To']}" + (f", cc {msg['Cc']}" if msg["Cc"] else "") + f" via {host}:{port}"
