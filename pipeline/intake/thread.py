"""A thread's mails into the series to test: what b4 am does when it picks a series out of a thread.

- The newest revision wins. A partial reroll (v3 resends only patch 2/2 of v2)
  takes each patch from the newest revision that has it, and says so.
- Patches are ordered by [PATCH k/n] and must be complete and unique.
- The cover letter is the [PATCH 0/n] mail, else the mail the patches answer.
- Review trailers come from the patches themselves and from replies anywhere
  below a patch (a reply to a reply too) or below the cover letter (then for
  every patch); trailers given to an older revision's patch follow it to the
  newest revision when the diff is unchanged (same git patch-id). Their order
  is b4's: a patch's own replies in the order b4 walks the thread, then what
  followed it by patch-id, then the cover letter's. A partial reroll without a
  cover letter of its own has the cover letter of the revision it fills from.
- Each patch is checked by git's own patch parser: a truncated or mangled
  diff is an input error naming the mail and the line. A cut git cannot see
  (cut.py: against the patch's own diffstat, a last line without its end, the
  cover letter's diffstat) is an input error naming the patch and what is gone.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.infra.errors import UserError
from pipeline.intake import cut
from pipeline.intake import mail as mails_
from pipeline.intake.mail import Mail
from pipeline.model.series import Patch, Series


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
    origins: dict[int, int] = field(default_factory=dict)  # patch index -> revision it was taken from
    thread: dict = field(default_factory=dict)  # headers of the cover letter and the patches, for replies
    notes: list[str] = field(default_factory=list)  # what the thread says that does not stop the run


def choose(mails: list[Mail], where: str, title: str = "", out_dir: Path | None = None) -> Parsed:
    """Pick the series out of mails. out_dir: where each chosen patch is written for git am."""
    if not mails:
        raise UserError(f"{where} holds no mail at all. Point kseries at the mbox, maildir or "
                        "directory of .patch files of the series.")
    mails = _unique(mails)
    patches = [m for m in mails if m.kind == "patch"]
    if not patches:
        _no_diff(mails, where, max((m.revision for m in mails), default=1), None)
        kinds = {k: sum(1 for m in mails if m.kind == k) for k in ("cover", "reply", "other")}
        held = ", ".join(f"{n} {k}" for k, n in kinds.items() if n)
        raise UserError(
            f"{where} holds no patch mail ({len(mails)} mail(s): {held}){_cut_last(mails)}. A patch mail has a "
            "subject like '[PATCH k/n] ...' and a diff in its body, as git format-patch and b4 "
            "write them. Check that this is the series' thread and not only its discussion.")
    newest = max(m.revision for m in patches)
    by_index, total = _newest_per_index(patches, newest, where, mails)
    chosen = [by_index[k] for k in range(1, total + 1)]
    cover = _cover(mails, chosen, newest)
    trailers = _trailers(mails, chosen, cover, patches)
    result = [_patch(m, k, total, where, out_dir) for k, m in enumerate(chosen, 1)]
    notes = _against_cover(cover, chosen, result, where)
    text = (cover.body if cover else "") + "\n" + "\n".join(m.body for m in chosen)
    base = re.search(r"^base-commit:\s*([0-9a-f]{7,40})\s*$", text, re.M)
    change = re.search(r"^change-id:\s*(\S+)\s*$", text, re.M)
    series_title = title or (cover.title if cover else result[0].subject)
    used = {id(m) for m in chosen} | {id(cover)}
    dropped = [f"v{m.revision} {m.subject}" for m in patches if id(m) not in used]
    dropped += [f"reply: {m.subject}" for m in mails if m.kind == "reply"]
    dropped += [f"not a patch: {m.subject or m.name}" for m in mails if m.kind in ("other", "cover") and id(m) not in used]
    origins = {k: m.revision for k, m in enumerate(chosen, 1)}
    heads = {"cover": mails_.headers(cover) if cover else None, "patches": [mails_.headers(m) for m in chosen]}
    return Parsed(Series(series_title, result, where), cover, newest, base.group(1) if base else "",
                  change.group(1) if change else "", trailers, dropped, origins, heads, notes)


def _unique(mails: list[Mail]) -> list[Mail]:
    """The same mail twice (a thread saved twice, two lists) is one mail."""
    seen: dict[str, Mail] = {}
    for m in mails:
        seen.setdefault(m.message_id or m.raw.decode("utf-8", "replace"), m)
    return list(seen.values())


def threads(mails: list[Mail]):
    """thread(mail) -> an id of the thread it is in (mails joined by In-Reply-To and References)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for m in mails:
        for p in m.parents:
            parent[find(p)] = find(m.message_id or str(id(m)))
    return lambda m: find(m.message_id or str(id(m)))


def _newest_per_index(patches: list[Mail], newest: int, where: str,
                      patches_and_all: list[Mail]) -> tuple[dict[int, Mail], int]:
    """Patch k from the newest revision that has it (a partial reroll fills from the revision before)."""
    latest = [m for m in patches if m.revision == newest]
    totals = {m.total for m in latest if m.total is not None}
    if len(totals) > 1:
        raise UserError(
            f"The v{newest} patches in {where} disagree on the series length "
            f"({', '.join(sorted(f'/{t}' for t in totals))}): two series are mixed. "
            "Keep only one series' mails.")
    if len(latest) == 1 and latest[0].index is None:
        return {1: latest[0]}, 1
    total = totals.pop() if totals else len(latest)
    if any(m.index is None for m in latest):
        bad = next(m for m in latest if m.index is None)
        raise UserError(f"{where}: '{bad.subject}' has no [PATCH k/{total}] number while the "
                        "other patches do. Renumber it or remove it.")
    counts: dict[int, int] = {}
    for m in latest:
        counts[m.index] = counts.get(m.index, 0) + 1
    dups = sorted(k for k, n in counts.items() if n > 1)
    extra = sorted(k for k in counts if k > total)
    by_index = {m.index: m for m in latest}
    thread = threads(patches_and_all)
    mine = {thread(m) for m in latest}
    for older in sorted({m.revision for m in patches if m.revision < newest}, reverse=True):
        for m in patches:  # a partial reroll: the same thread's earlier revision fills what was not resent
            if m.revision == older and m.total == total and m.index not in by_index \
                    and 0 < (m.index or 0) <= total and thread(m) in mine:
                by_index[m.index] = m
    missing = [k for k in range(1, total + 1) if k not in by_index]
    if missing:
        _no_diff(patches_and_all, where, newest, missing)
    elsewhere = sorted({m.index for m in patches if m.revision < newest and m.index in missing})
    if missing or dups or extra:
        raise UserError(
            f"The v{newest} series in {where} is incomplete or inconsistent: expected patches "
            f"1..{total}"
            + (f", missing {', '.join(map(str, missing))}" if missing else "")
            + (f", patch {', '.join(map(str, dups))} more than once" if dups else "")
            + (f", numbered beyond {total}: {', '.join(map(str, extra))}" if extra else "")
            + (f" (an older revision in another thread has {', '.join(map(str, elsewhere))}: revisions are "
               "mixed)" if elsewhere else "") + _cut_last(patches_and_all)
            + ". Fetch the whole thread of one revision (b4 am writes one), or add the missing "
              "patch mails and remove the duplicates.")
    return by_index, total


def _cover(mails: list[Mail], chosen: list[Mail], newest: int) -> Mail | None:
    """The [PATCH 0/n] of the newest revision, else the diff-less mail the newest patches answer.
    A partial reroll without either has the cover letter of the revision it fills from (as b4 am)."""
    for rev in sorted({m.revision for m in chosen} | {newest}, reverse=True):
        cover = next((m for m in mails if m.kind == "cover" and m.revision == rev), None)
        if cover is not None:
            return cover
        by_id = {m.message_id: m for m in mails if m.message_id}
        answered = {m.in_reply_to for m in chosen if m.revision == rev and m.in_reply_to}
        if len(answered) == 1:
            parent = by_id.get(answered.pop())
            if parent is not None and parent.kind != "patch":
                parent.kind = "cover"
                return parent
    return None


def _no_diff(mails: list[Mail], where: str, revision: int, missing: list[int] | None) -> None:
    """A [PATCH k/n] mail (not a reply) without a diff, where patch k is missing: it was cut."""
    from liblore import series as lseries

    for m in mails:
        if m.kind == "patch" or m.index is None or m.index == 0 or m.revision != revision:
            continue
        if (missing is not None and m.index not in missing) or lseries.parse_patch_subject(m.subject).is_reply:
            continue
        lines = m.raw.replace(b"\r\n", b"\n").count(b"\n") + 1
        announced = cut.own_diffstat(m.body)
        if not m.body.strip():
            ends = "in its headers"
        elif announced is not None:
            ends = f"after its diffstat, which announces {announced.phrase()} ({', '.join(announced.paths)})"
        else:
            ends = "in its commit message"
        raise UserError(
            f"Patch {m.index}/{m.total} '{m.title or m.subject}' ({m.name}) in {where} holds no diff: the mail "
            f"ends {ends}, at line {lines}, so its diff is gone"
            + (f" (and patches {', '.join(map(str, missing))} of {m.total} are missing)" if missing and len(missing) > 1
               else "") + ". The mail was cut in transit or when it was saved; fetch the thread again "
            "(b4 am, or its t.mbox.gz from lore).")
    covers = [m for m in mails if m.kind == "cover" and m.revision == revision and m.total]
    if missing is None and covers:
        c = covers[0]
        raise UserError(
            f"{where} holds the cover letter '{c.subject}' ({c.name}) but none of the {c.total} patches it "
            f"announces: patches 1..{c.total} are missing. The mailbox ends in or after the cover letter (it "
            "was cut, or only the cover letter was saved); fetch the whole thread (b4 am, or its t.mbox.gz "
            "from lore).")


def _cut_last(mails: list[Mail]) -> str:
    """'; its last mail ... ends in its headers' when the mailbox was cut there, else ''."""
    last = mails[-1] if mails else None
    if last is None:
        return ""
    if b"\n\n" not in last.raw.replace(b"\r\n", b"\n"):
        return f"; its last mail ({last.name}) ends in its headers: the mailbox was cut there"
    if last.kind == "patch" and cut.DIFF_START.search(last.body):  # the mailbox cut inside its diff too?
        why = cut.cut_mid_line(last.raw, last.body) or mails_.numstat(last.body)[1]
        if why:
            return f"; its last mail, patch {last.index}/{last.total} ({last.name}), was cut too: {why}"
    return ""


def _against_cover(cover: Mail | None, chosen: list[Mail], result: list[Patch], where: str) -> list[str]:
    """The cover letter's diffstat against the patches: a file no patch changes is an input error when
    a patch cannot vouch for itself (it has no diffstat of its own), else a note."""
    if cover is None:
        return []
    gone, lines, announced = cut.cover_short_of(cover.body, [f for p in result for f in p.files])
    if not gone and not lines:
        return []
    bare = [k for k, m in enumerate(chosen, 1) if cut.own_diffstat(m.body) is None]
    said = f"the cover letter '{cover.subject}' announces {announced.phrase()}, but " + "; ".join(
        ([f"no patch changes {', '.join(gone)}"] if gone else []) + ([lines] if lines else []))
    if bare:
        raise UserError(
            f"The series in {where} is short of its cover letter: {said}. Patch(es) "
            f"{', '.join(f'{k}/{len(chosen)}' for k in bare)} carry no diffstat of their own, so one of them may "
            "have lost its end in transit. Fetch the thread again (b4 am, or its t.mbox.gz from lore); if it "
            "arrives the same, the cover letter is out of date: ask the author which is right.")
    return [f"{said}; every patch holds what its own diffstat announces, so the cover letter is out of date"]


def _targets(reply: Mail, by_id: dict[str, Mail]) -> list[Mail]:
    """The patches and cover letters above a reply, nearest first (through replies to replies)."""
    out, seen, queue = [], set(), list(reply.parents)
    while queue:
        pid = queue.pop(0)
        if pid in seen:
            continue
        seen.add(pid)
        above = by_id.get(pid)
        if above is None:
            continue
        if above.kind in ("patch", "cover"):
            out.append(above)
        queue += [p for p in above.parents if p not in seen]
    return out


def _trailers(mails: list[Mail], chosen: list[Mail], cover: Mail | None, patches: list[Mail]) -> dict[int, list[str]]:
    """Per patch, in b4's order: its own trailers, its replies', those that followed it by patch-id,
    then the cover letter's replies'."""
    by_id = {m.message_id: m for m in mails if m.message_id}
    index = {id(m): k for k, m in enumerate(chosen, 1)}
    given: dict[int, list[str]] = {k: mails_.review_trailers(m) for k, m in enumerate(chosen, 1)}
    to_cover: list[str] = []
    older: dict[int, list[str]] = {}  # id(older patch) -> trailers given to it
    root = (cover or chosen[0]).message_id
    for reply in walk([m for m in mails if m.kind == "reply"], mails, root):
        offered = mails_.reply_trailers(reply)
        if not offered:
            continue
        above = _targets(reply, by_id)
        target = above[0] if above else None
        if target is None:
            continue
        if target is cover:
            _add(to_cover, offered)
        elif id(target) in index:
            _add(given[index[id(target)]], offered)
        elif target.kind == "patch":
            _add(older.setdefault(id(target), []), offered)
    if older:
        ids = {id(m): m for m in patches}
        for k, m in enumerate(chosen, 1):
            mine = patch_id(m.body)
            for oid, offered in older.items():
                if mine and patch_id(ids[oid].body) == mine:
                    _add(given[k], offered)
    for k in given:
        _add(given[k], to_cover)
    return given


def walk(replies: list[Mail], mails: list[Mail], root: str) -> list[Mail]:
    """replies in the order b4 reads them: liblore's walk of the thread from its root (a reply whose
    parent comes later in the mailbox, and that names only that parent, comes after it); replies the
    walk does not reach keep their place after the others."""
    from email.message import EmailMessage

    from liblore import utils as lutils

    heads = []
    for m in mails:
        if not m.message_id:
            continue
        head = EmailMessage()
        head["Message-Id"] = f"<{m.message_id}>"
        if m.in_reply_to:
            head["In-Reply-To"] = f"<{m.in_reply_to}>"
        if m.references:
            head["References"] = " ".join(f"<{r}>" for r in m.references)
        heads.append(head)
    order = {lutils.get_clean_msgid(h): i for i, h in enumerate(lutils.get_strict_thread(heads, root) or [])}
    return sorted(replies, key=lambda m: order.get(m.message_id, len(order)))


def _add(to: list[str], offered: list[str]) -> None:
    for t in offered:
        name, _, value = t.partition(": ")
        if not any(o.partition(": ")[0].lower() == name.lower() and o.partition(": ")[2] == value for o in to):
            to.append(t)


def patch_id(diff: str) -> str:
    """git patch-id --stable: the same change has the same id, whatever its context lines moved."""
    done = subprocess.run(["git", "patch-id", "--stable"], input=diff.encode(), capture_output=True, timeout=60)
    return done.stdout.decode().split(" ")[0] if done.returncode == 0 else ""


def _patch(m: Mail, k: int, total: int, where: str, out_dir: Path | None) -> Patch:
    m.body = mails_.as_git_reads(m.body)[0]
    stats, complaint = mails_.numstat(m.body)
    at = re.search(r"at line (\d+)", complaint)
    if at:  # git counts lines of the body; name the line of the mail
        head = m.raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].count(b"\n") + 2
        complaint = complaint.replace(at.group(0), f"at line {int(at.group(1)) + head} of the mail")
    name = f"Patch {k}/{total} '{m.title or m.subject}' ({m.name}) in {where}"
    announced = cut.own_diffstat(m.body)
    mid = cut.cut_mid_line(m.raw, m.body)
    if mid:  # git would call it corrupt; say what is gone
        lost = cut.gone(announced, cut.diff_paths(m.body)) if announced else []
        raise UserError(
            f"{name} was cut: {mid}" + (f"; its diffstat announces {announced.phrase()} ({', '.join(lost)}: gone)"
                                        if lost else "") + ". The mail lost its end in transit or when it was "
            "saved; fetch the thread again (b4 am, or its t.mbox.gz from lore).")
    if (complaint or not stats) and not re.search(r"^diff --git ", m.body, re.M):
        raise UserError(
            f"{name} is a plain diff (no 'diff --git' header) that git cannot read: "
            f"{complaint or 'no file is changed'}. kseries takes plain diffs as git am applies them (unified, hunks whose line counts "
            "match, paths with one leading directory as 'diff -urN a/ b/' writes them); this one git am "
            "cannot apply either. Ask its author for it as git format-patch writes it.")
    if complaint or not stats:
        raise UserError(
            f"{name} is not a patch git can read: {complaint or 'no file is changed'}. The mail was cut or "
            "mangled in transit or by an editor; fetch it again (b4 am, or the thread's t.mbox.gz from lore).")
    short = cut.short_of(announced, stats) if announced else ""
    if short:
        raise UserError(
            f"{name} was cut: {short}. The mail lost its end in transit or when it was saved (or the diff "
            "was edited after git format-patch); fetch the thread again (b4 am, or its t.mbox.gz from lore), "
            "and if it arrives the same, ask its author to resend the patch.")
    path = Path(m.name)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        if k == 1:
            for old in out_dir.glob("*.patch"):
                old.unlink()
        path = mails_.write(m, f"{k}/{total}", out_dir / f"{k:04d}.patch")
    return Patch(k, total, m.title or m.subject, m.sender, path, stats)
