"""A thread cut in transit never reaches the build as if it were what the author sent.

The thread is the seed series' three patch mails behind a cover letter as b4 writes
one (shortlog and diffstat: 5 files changed). It is cut at points git's own patch
parser cannot see (a file or hunk boundary, the middle of a hunk's last line, after
a file's header, before the diff) and at points it can, and each cut mailbox goes
through the real command line: exit 2, one paragraph naming the patch and what is
gone, or the patches that are missing; never exit 0 with fewer files than announced.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.model import config

REPO = Path(__file__).resolve().parent.parent
SEED = sorted(config.load_series("page_mapped").patch_dir.glob("*.patch"))
FROM = b"From kseries Mon Sep 17 00:00:00 2001\n"
COVER = b"""From: "David Hildenbrand (Arm)" <david@kernel.org>
Date: Mon, 27 Apr 2026 13:43:13 +0200
Subject: [PATCH 0/3] mm: remove page_mapped()
Message-Id: <20260427-page_mapped-v1-0-e89c3592c74c@kernel.org>

Let's remove page_mapped().

---
David Hildenbrand (Arm) (3):
      sh: use folio_mapped() instead of page_mapped() in sh4_flush_cache_page()
      bpf/arena: use page_ref_count() instead of page_mapped()
      mm: remove page_mapped()

 arch/sh/mm/cache-sh4.c |  2 +-
 include/linux/mm.h     | 10 ----------
 kernel/bpf/arena.c     |  2 +-
 mm/memory.c            |  2 +-
 mm/rmap.c              |  8 ++++----
 5 files changed, 7 insertions(+), 17 deletions(-)
---
base-commit: a2ddbfd1af0f54ea84bf17f0400088815d012e8d
change-id: 20260422-page_mapped-a49a892fa432

Best regards,
-- 
David Hildenbrand (Arm) <david@kernel.org>

"""
THREAD = FROM + COVER + b"".join(p.read_bytes() + b"\n" for p in SEED)


def at(marker: bytes, after: int = 0, nth: int = 0, shift: int = 0) -> int:
    """The offset just after the nth occurrence of marker (or after its line, with after=1), plus shift."""
    pos = -1
    for _ in range(nth + 1):
        pos = THREAD.index(marker, pos + 1)
    end = pos + len(marker)
    return (THREAD.index(b"\n", end) + 1 if after else end) + shift


P3 = b"Subject: [PATCH 3/3]"
# (where the mail is cut, offset, phrases the one paragraph must hold)
CUTS = [
    ("inside the cover letter's headers", at(b"Date: Mon, 27 Apr 2026 13:43:13", after=1),
     ["holds no patch mail", "ends in its headers: the mailbox was cut there"]),
    ("inside the cover letter, before its diffstat", at(b"      mm: remove page_mapped()", after=1),
     ["cover letter '[PATCH 0/3] mm: remove page_mapped()'", "none of the 3 patches", "patches 1..3 are missing"]),
    ("cleanly between the cover letter and patch 1", THREAD.index(b"From 0000000000000000000000000000000000000000"),
     ["none of the 3 patches", "patches 1..3 are missing"]),
    ("cleanly between patch 2 and patch 3", THREAD.index(b"From 0000", THREAD.index(b"[PATCH 2/3]")),
     ["incomplete", "missing 3"]),
    ("in patch 2 inside its hunk, the mailbox ending there", at(b"+\t\tif (page_cnt == 1 && page_ref_count(page) > 1)", after=1),
     ["incomplete", "missing 3", "patch 2/3", "was cut too: corrupt patch at line"]),
    ("inside patch 3's headers, before its Subject", at(b"Message-Id: <20260427-page_mapped-v1-3", after=1),
     ["incomplete", "missing 3", "(mail 4)) ends in its headers: the mailbox was cut there"]),
    ("inside patch 3's headers, after its Subject", at(P3, after=1),
     ["Patch 3/3 'mm: remove page_mapped()'", "holds no diff", "ends in its headers"]),
    ("in patch 3's commit message", at(b"Let's replace the last user", after=1),
     ["Patch 3/3 'mm: remove page_mapped()'", "holds no diff", "ends in its commit message"]),
    ("in patch 3 after its diffstat", at(b"3 files changed, 5 insertions(+), 15 deletions(-)", after=1),
     ["Patch 3/3", "holds no diff", "after its diffstat", "include/linux/mm.h, mm/memory.c, mm/rmap.c"]),
    ("in patch 3 after mm/memory.c's header, before its hunk", at(b"index 2c3309d..ab7d094 100644", after=1),
     ["Patch 3/3 'mm: remove page_mapped()'", "was cut", "its diffstat announces 3 files changed",
      "mm/rmap.c: gone"]),
    ("in patch 3 in the middle of mm/memory.c's last hunk line", at(b"\t\t\tif (mapping_evict_folio(", shift=-8),
     ["Patch 3/3 'mm: remove page_mapped()'", "was cut", "its diffstat announces 3 files changed",
      "mm/rmap.c: gone"]),
    ("in patch 3 between two hunks of mm/rmap.c", at(b"\tif (flags & TTU_SYNC)\n"),
     ["Patch 3/3", "was cut", "5 insertion(s)(+), 15 deletion(s)(-)", "3 file(s), 3 insertion(s), 13 deletion(s)"]),
    ("in patch 3 inside a hunk of mm/rmap.c", at(b"-\t * try_to_unmap() may return", after=1),
     ["Patch 3/3", "corrupt patch at line", "of the mail"]),
    ("in patch 3 in the middle of the last line of its diff", len(THREAD) - 3,
     ["Patch 3/3", "was cut", "ends in the middle of a line of its diff"]),
]


def series(path: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invoke", "series", "--mbox", str(path)], cwd=REPO,
                          capture_output=True, text=True, timeout=120, env=env)


def test_the_whole_thread_is_one_series_of_five_files(tmp_path):
    path = tmp_path / "whole.mbox"
    path.write_bytes(THREAD)
    proc = series(path)
    assert proc.returncode == 0, proc.stderr
    assert re.findall(r"^\[PATCH (\d/3)\]", proc.stdout, re.M) == ["1/3", "2/3", "3/3"]
    assert " 5 files changed, 7 insertions(+), 17 deletions(-)" in proc.stdout and "note:" not in proc.stdout


@pytest.mark.parametrize("what,offset,phrases", CUTS, ids=[c[0] for c in CUTS])
def test_a_cut_thread_is_an_input_error_naming_what_is_gone(tmp_path, what, offset, phrases):
    path = tmp_path / "cut.mbox"
    path.write_bytes(THREAD[:offset])
    proc = series(path)
    flat = " ".join(proc.stderr.split())
    assert proc.returncode == 2, (what, proc.returncode, proc.stdout[-600:], flat)
    assert flat.startswith("kseries: input error: ") and "Traceback" not in flat and proc.stdout == "", flat
    assert proc.stderr.count("\n\n") == 0, flat  # one paragraph
    for phrase in phrases:
        assert phrase in flat, (what, phrase, flat)


def test_a_cut_at_a_file_or_hunk_boundary_is_a_patch_git_takes_whole():
    """Cuts at a file or hunk boundary are patches git's own parser takes whole: the checks of
    kseries' own (cut.py) are what stop them."""
    from pipeline.intake import mail, sources

    taken = []
    for what, offset, _ in CUTS:
        last = sources.split_mbox(THREAD[:offset], "cut")[-1]
        if last.subject.startswith(P3.decode()[9:]) and "\ndiff --git" in last.body \
                and mail.numstat(last.body)[1] == "":
            taken.append(what)
    assert taken == [CUTS[9][0], CUTS[11][0]], taken


def test_a_cover_letter_that_announces_a_file_no_patch_changes(tmp_path):
    """Patches that carry no diffstat (plain sends) cannot vouch for themselves: the cover letter's
    diffstat is the check; patches that do carry one make a stale cover letter a note, not an error."""
    bare = re.sub(rb"\n---\n( \S.*\n)+ \d+ files? changed.*\n", b"\n---\n", THREAD)
    cut = bare.replace(bare[bare.index(b"diff --git a/mm/rmap.c"):], b"")  # patch 3 ends after mm/memory.c
    path = tmp_path / "bare.mbox"
    path.write_bytes(cut)
    proc = series(path)
    flat = " ".join(proc.stderr.split())
    assert proc.returncode == 2, proc.stdout
    assert "announces 5 files changed, 7 insertion(s)(+), 17 deletion(s)(-), but no patch changes mm/rmap.c" in flat
    assert "Patch(es) 1/3, 2/3, 3/3 carry no diffstat" in flat
    stale = THREAD.replace(b" mm/rmap.c              |  8 ++++----\n",
                           b" mm/rmap.c              |  8 ++++----\n mm/util.c              |  2 +-\n")
    path.write_bytes(stale)
    proc = series(path)
    assert proc.returncode == 0, proc.stderr
    assert "note: the cover letter '[PATCH 0/3] mm: remove page_mapped()' announces" in " ".join(proc.stdout.split())
    assert "no patch changes mm/util.c" in proc.stdout


def test_patches_without_diffstats_cut_between_hunks_are_short_of_the_cover_letter_s_lines(tmp_path):
    """Every file still there, but the last hunks of mm/rmap.c gone, in patches that carry no
    diffstat: the series' diff never changes more lines than its patches do together, so fewer
    than the cover letter announces is a cut."""
    bare = re.sub(rb"\n---\n( \S.*\n)+ \d+ files? changed.*\n", b"\n---\n", THREAD)
    rmap = bare.index(b"diff --git a/mm/rmap.c")
    last_hunk = bare.rindex(b"\n@@ ", rmap) + 1
    assert bare.index(b"\n@@ ", rmap) + 1 < last_hunk  # a hunk of mm/rmap.c stays
    path = tmp_path / "hunks.mbox"
    path.write_bytes(bare[:last_hunk])
    proc = series(path)
    flat = " ".join(proc.stderr.split())
    assert proc.returncode == 2, proc.stdout
    assert "announces 5 files changed, 7 insertion(s)(+), 17 deletion(s)(-), but the patches insert" in flat
    assert "Traceback" not in proc.stderr
