"""A thread's mails into the series to test: what b4 am does when it picks a series out of a thread.

- The newest revision wins. A partial reroll (v3 resends only patch 2/2 of v2)
  takes each patch from the newest revision that has it, and says so.
- Patches are ordered by [PATCH k/n] and must be complete and unique.
- The cover letter is the [PATCH 0/n] mail, else the mail the patches answer.
- Review trailers come from the patches themselves and from replies anywhere
  below a patch (a reply to a reply too) or below the cover letter (then for
  every patch); trailers given to an older revision's patch follow it to the
  newest revision when the diff is unchanged (same git patch-id).
- Each patch is checked by git's own patch parser: a truncated or mangled
  diff is an input error naming the mail and the line.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.infra.errors import UserError
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


def choose(mails: list[Mail], where: str, title: str = "", out_dir: Path | None = None) -> Parsed:
    """Pick the series out of mails. out_dir: where each chosen patch is written for git am."""
    if not mails:
        raise UserError(f"{where} holds no mail at all. Point kseries at the mbox, maildir or "
                        "directory of .patch files of the series.")
    mails = _unique(mails)
    patches = [m for m in mails if m.kind == "patch"]
    if not patches:
        kinds = {k: sum(1 for m in mails if m.kind == k) for k in ("cover", "reply", "other")}
        held = ", ".join(f"{n} {k}" for k, n in kinds.items() if n)
        raise UserError(
            f"{where} holds no patch mail ({len(mails)} mail(s): {held}). A patch mail has a "
            "subject like '[PATCH k/n] ...' and a diff in its body, as git format-patch and b4 "
            "write them. Check that this is the series' thread and not only its discussion.")
    newest = max(m.revision for m in patches)
    by_index, total = _newest_per_index(patches, newest, where, mails)
    chosen = [by_index[k] for k in range(1, total + 1)]
    cover = _cover(mails, chosen, newest)
    trailers = _trailers(mails, chosen, cover, patches)
    result = [_patch(m, k, total, where, out_dir) for k, m in enumerate(chosen, 1)]
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
                  change.group(1) if change else "", trailers, dropped, origins, heads)


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
    elsewhere = sorted({m.index for m in patches if m.revision < newest and m.index in missing})
    if missing or dups or extra:
        raise UserError(
            f"The v{newest} series in {where} is incomplete or inconsistent: expected patches "
            f"1..{total}"
            + (f", missing {', '.join(map(str, missing))}" if missing else "")
            + (f", patch {', '.join(map(str, dups))} more than once" if dups else "")
            + (f", numbered beyond {total}: {', '.join(map(str, extra))}" if extra else "")
            + (f" (an older revision in another thread has {', '.join(map(str, elsewhere))}: revisions are "
               "mixed)" if elsewhere else "")
            + ". Fetch the whole thread of one revision (b4 am writes one), or add the missing "
              "patch mails and remove the duplicates.")
    return by_index, total


def _cover(mails: list[Mail], chosen: list[Mail], newest: int) -> Mail | None:
    """The [PATCH 0/n] of the newest revision, else the diff-less mail the newest patches answer."""
    cover = next((m for m in mails if m.kind == "cover" and m.revision == newest), None)
    if cover is not None:
        return cover
    by_id = {m.message_id: m for m in mails if m.message_id}
    answered = {m.in_reply_to for m in chosen if m.revision == newest and m.in_reply_to}
    if len(answered) == 1:
        parent = by_id.get(answered.pop())
        if parent is not None and parent.kind != "patch":
            parent.kind = "cover"
            return parent
    return None


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
    by_id = {m.message_id: m for m in mails if m.message_id}
    index = {id(m): k for k, m in enumerate(chosen, 1)}
    given: dict[int, list[str]] = {k: mails_.review_trailers(m) for k, m in enumerate(chosen, 1)}
    older: dict[int, list[str]] = {}  # id(older patch) -> trailers given to it
    for reply in (m for m in mails if m.kind == "reply"):
        offered = mails_.reply_trailers(reply)
        if not offered:
            continue
        above = _targets(reply, by_id)
        target = above[0] if above else None
        if target is None:
            continue
        if target is cover:
            for k in given:
                _add(given[k], offered)
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
    return given


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
    stats, complaint = mails_.numstat(m.body)
    at = re.search(r"at line (\d+)", complaint)
    if at:  # git counts lines of the body; name the line of the mail
        head = m.raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].count(b"\n") + 2
        complaint = complaint.replace(at.group(0), f"at line {int(at.group(1)) + head} of the mail")
    if complaint or not stats:
        raise UserError(
            f"Patch {k}/{total} '{m.title or m.subject}' ({m.name}) in {where} is not a patch git can "
            f"read: {complaint or 'no file is changed'}. The mail was cut or mangled in transit or "
            "by an editor; fetch it again (b4 am, or the thread's t.mbox.gz from lore).")
    path = Path(m.name)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        if k == 1:
            for old in out_dir.glob("*.patch"):
                old.unlink()
        path = mails_.write(m, f"{k}/{total}", out_dir / f"{k:04d}.patch")
    return Patch(k, total, m.title or m.subject, m.sender, path, stats)
