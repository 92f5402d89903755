"""Is each mail what its author sent? A mail cut in transit is found before it reaches the build.

git's patch parser (mail.numstat) rejects a hunk cut in its middle, but not a
cut git cannot see: at a hunk or file boundary, after a file's header, or in
the middle of a hunk's last line. What the author sent says what to expect:

- git format-patch writes each patch's diffstat above its diff: a diff that
  holds fewer files, insertions or deletions than its own diffstat was cut;
- a mail ends with a line end: a diff line without one was cut mid-line;
- the cover letter's diffstat names every file the series changes: a file
  no patch changes was lost with the end of a patch the mail cannot vouch for.
"""

from __future__ import annotations

import re

from pipeline.model.series import FileStat

SUMMARY = re.compile(r"^ ?(\d+) files? changed(?:, (\d+) insertions?\(\+\))?(?:, (\d+) deletions?\(-\))?\s*$", re.M)
STAT_LINE = re.compile(r"^ (\S.*?)\s+\|\s+(?:\d+|Bin\b)")
DIFF_START = re.compile(r"^(diff --git |diff -|--- \S.*\n\+\+\+ |Index: |GIT binary patch)", re.M)


class Diffstat:
    """A diffstat block as git writes it: the files it names and its summary line."""

    def __init__(self, paths: list[str], files: int, insertions: int, deletions: int):
        self.paths, self.files, self.insertions, self.deletions = paths, files, insertions, deletions

    def phrase(self) -> str:
        return (f"{self.files} file{'s' * (self.files != 1)} changed, {self.insertions} insertion(s)(+), "
                f"{self.deletions} deletion(s)(-)")


def diffstat(text: str) -> Diffstat | None:
    """The first diffstat block in text (file lines, then 'N files changed, ...'), or None."""
    for found in SUMMARY.finditer(text):
        above = text[:found.start()].rstrip("\n").split("\n")
        paths = []
        for line in reversed(above):
            stat = STAT_LINE.match(line)
            if not stat:
                break
            paths.insert(0, stat.group(1).strip())
        if paths or int(found.group(1)) == 0:
            return Diffstat(paths, int(found.group(1)), int(found.group(2) or 0), int(found.group(3) or 0))
    return None


def own_diffstat(body: str) -> Diffstat | None:
    """The diffstat git format-patch writes between a patch's '---' line and its diff."""
    start = DIFF_START.search(body)
    head = body[:start.start()] if start else body
    sep = [m.end() for m in re.finditer(r"^---[ \t]*$", head, re.M)]
    return diffstat(head[sep[-1]:]) if sep else None


def names(path: str) -> list[str]:
    """What a diffstat path stands for: both sides of a rename ('a => b', 'dir/{a => b}/f')."""
    brace = re.fullmatch(r"(.*)\{(.*) => (.*)\}(.*)", path)
    if brace:
        pre, old, new, post = brace.groups()
        return [re.sub("//+", "/", pre + old + post), re.sub("//+", "/", pre + new + post)]
    return [p.strip() for p in path.split(" => ")]


def covered(path: str, changed: list[str]) -> bool:
    """Does some changed file match a diffstat path (git abbreviates long ones as '.../tail')?"""
    for name in names(path):
        if name.startswith(".../"):
            if any(c.endswith(name[3:]) for c in changed):
                return True
        elif name in changed:
            return True
    return False


def gone(announced: Diffstat, changed: list[str]) -> list[str]:
    """The files a diffstat names that none of the changed paths is."""
    changed = [n for path in changed for n in names(path)]
    return [p for p in announced.paths if not covered(p, changed)]


def diff_paths(body: str) -> list[str]:
    """The files a diff's headers name (what is there of it, whether git can read it or not)."""
    return re.findall(r"^\+\+\+ (?:b/)?(\S+)", body, re.M)


def short_of(announced: Diffstat, stats: tuple[FileStat, ...]) -> str:
    """'' when the diff holds all its diffstat announces, else what is missing."""
    ins, dels = sum(f.insertions for f in stats), sum(f.deletions for f in stats)
    if len(stats) >= announced.files and ins >= announced.insertions and dels >= announced.deletions:
        return ""
    lost = gone(announced, [f.path for f in stats])
    return (f"its diffstat announces {announced.phrase()}, its diff holds {len(stats)} file(s), {ins} "
            f"insertion(s), {dels} deletion(s)" + (f" ({', '.join(lost)}: gone)" if lost else ""))


def cut_mid_line(raw: bytes, body: str) -> str:
    """'' unless the mail ends inside a line of its diff (no line end after it): that line, quoted."""
    if not raw or raw.endswith(b"\n"):
        return ""
    last = body.rsplit("\n", 1)[-1]
    if last[:1] in (" ", "+", "-", "@") and DIFF_START.search(body):
        return f"it ends in the middle of a line of its diff ('{last[:60]}', no line end)"
    return ""


def cover_short_of(cover_body: str, stats: list[FileStat]) -> tuple[list[str], str, Diffstat | None]:
    """What the patches lack of the cover letter's diffstat: the files it names that no patch
    changes, and ('' or what they hold) lines: the series' diff (base..tip) never inserts or
    deletes more lines than its patches do together, so patches holding fewer lost some."""
    announced = diffstat(cover_body)
    if announced is None:
        return [], "", None
    ins, dels = sum(f.insertions for f in stats), sum(f.deletions for f in stats)
    lines = (f"the patches insert {ins} and delete {dels} together"
             if ins < announced.insertions or dels < announced.deletions else "")
    return gone(announced, [f.path for f in stats]), lines, announced
