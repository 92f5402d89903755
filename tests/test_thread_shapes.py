"""Thread shapes kernel developers send, each read by kseries and by `b4 am` (the reference).

Every thread here is written by this file: a small real git tree, its commits
as format-patch mails, then the shape (replies to replies, rerolls, plain
diffs, attachments, CRLF, ...). kseries' patches, order, revision and review
trailers must equal what b4 am picks from the same mbox; where b4 only warns
(a truncated patch), kseries stops with an input error naming the mail and line.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest

from pipeline.infra.errors import UserError
from pipeline.intake import sources, thread

FROM = b"From kseries Mon Sep 17 00:00:00 2001\n"
REPO = Path(__file__).resolve().parent.parent
DEV = "Dev Eloper <dev@example.org>"
pytestmark = pytest.mark.skipif(not shutil.which("b4"), reason="b4 (the reference) is not installed: "
                                "pip install -e '.[test]'")


def git(repo: Path, *args: str) -> str:
    env = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "Dev Eloper",
           "GIT_AUTHOR_EMAIL": "dev@example.org", "GIT_COMMITTER_NAME": "Dev Eloper",
           "GIT_COMMITTER_EMAIL": "dev@example.org", "GIT_AUTHOR_DATE": "2026-05-01T10:00:00Z",
           "GIT_COMMITTER_DATE": "2026-05-01T10:00:00Z", "PATH": "/usr/bin:/bin:/usr/local/bin"}
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True,
                          env=env).stdout


def tree(tmp_path: Path, n: int = 3, message: str = "") -> tuple[Path, list[str]]:
    """A git tree with one file per patch; n commits, each changing its own file. Returns the
    repo and the commits' format-patch mail bodies (from the commit message on)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for i in range(1, n + 1):
        (repo / f"f{i}.c").write_text("".join(f"int v{i}_{j} = {j};\n" for j in range(12)))
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "tag", "base")
    bodies = []
    for i in range(1, n + 1):
        text = (repo / f"f{i}.c").read_text().replace(f"int v{i}_5 = 5;", f"long v{i}_5 = 50;")
        (repo / f"f{i}.c").write_text(text)
        git(repo, "commit", "-q", "-am", f"f{i}: widen v{i}_5\n\n{message or 'Because it overflows.'}\n\n"
            f"Signed-off-by: {DEV}")
        patch = git(repo, "format-patch", "-1", "--stdout", "HEAD")
        bodies.append(patch.split("\n\n", 1)[1])
    return repo, bodies


def mail(msgid: str, subject: str, body: str, sender: str = DEV, reply_to: str = "", refs: tuple = (),
         minute: int = 0) -> bytes:
    head = (f"From: {sender}\nDate: Fri, 01 May 2026 10:{minute:02d}:00 +0000\nSubject: {subject}\n"
            f"Message-Id: <{msgid}>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
            "Content-Transfer-Encoding: 8bit\n")
    if reply_to:
        head += f"In-Reply-To: <{reply_to}>\nReferences: {' '.join(f'<{r}>' for r in (*refs, reply_to))}\n"
    return (head + "\n" + body).encode()


def series(bodies: list[str], rev: int = 1, cover: bool = True, prefix: str = "PATCH") -> list[bytes]:
    n = len(bodies)
    v = f" v{rev}" if rev > 1 else ""
    root = f"v{rev}-0@example.org"
    out = [mail(root, f"[{prefix}{v} 0/{n}] widen things", "Cover.\n\nbase-commit: 0000\n")] if cover else []
    for i, body in enumerate(bodies, 1):
        out.append(mail(f"v{rev}-{i}@example.org", f"[{prefix}{v} {i}/{n}] f{i}: widen v{i}_5", body,
                        reply_to=root if cover else "", minute=i))
    return out


def mbox(path: Path, mails: list[bytes]) -> Path:
    path.write_bytes(b"".join(FROM + (m if m.endswith(b"\n") else m + b"\n") for m in mails))
    return path


def b4(path: Path, msgid: str) -> dict:
    """What `b4 am` picks: [(k, n, title)], the revision, and per patch the trailers it adds."""
    home = path.parent / "b4home"
    home.mkdir(exist_ok=True)
    (home / ".gitconfig").write_text("[b4]\n  midmask = http://127.0.0.1:9/%s\n  linkmask = http://127.0.0.1:9/%s\n")
    done = subprocess.run(["b4", "am", "-C", "-m", str(path), "-o", str(path.parent / "b4out"), msgid],
                          capture_output=True, text=True, env={"HOME": str(home), "PATH": os.environ["PATH"]},
                          timeout=120)
    patches, trailers, revision = [], {}, 1
    for line in (done.stdout + done.stderr).splitlines():
        m = re.match(r"^  \[PATCH(?: v\d+->v(\d+)| +v(\d+))? (\d+)/(\d+)\] (.*)$", line)
        if m:
            revision = max(revision, int(m.group(1) or m.group(2) or 1))
            patches.append((int(m.group(3)), int(m.group(4)), m.group(5)))
            continue
        t = re.match(r"^    \+ (.*)$", line)
        if t and patches:
            trailers.setdefault(patches[-1][0], []).append(t.group(1))
    return {"patches": patches, "revision": revision, "trailers": trailers, "output": done.stdout + done.stderr}


def kseries(path: Path, tmp_path: Path):
    mails = sources.split_mbox(path.read_bytes(), str(path))
    return thread.choose(mails, str(path), out_dir=tmp_path / "staged")


def same_as_b4(path: Path, msgid: str, tmp_path: Path):
    """kseries (in-process, and `invoke series --mbox` as a user runs it) against b4 am."""
    ref = b4(path, msgid)
    shown = subprocess.run([sys.executable, "-m", "invoke", "series", "--mbox", str(path)], cwd=REPO,
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and not shown.stderr, shown.stderr
    listed = [(int(k), int(n), s) for k, n, s in re.findall(r"^\[PATCH (\d+)/(\d+)\] (.*)$", shown.stdout, re.M)]
    assert listed == ref["patches"], shown.stdout
    for k, trailers in ref["trailers"].items():
        block = shown.stdout.split(f"[PATCH {k}/")[1].split("\n[PATCH")[0]
        assert all(tr in block for tr in trailers), (k, trailers, block)
    got = kseries(path, tmp_path)
    assert [(p.index, p.total, p.subject) for p in got.series.patches] == ref["patches"], ref["output"]
    assert got.revision == ref["revision"], ref["output"]
    assert {k: v for k, v in got.trailers.items() if v} == ref["trailers"], ref["output"]
    return got, ref


def applies(repo: Path, got) -> None:
    """The staged patch mails go through git am -3 --keep-cr (as the apply stage runs it)."""
    git(repo, "checkout", "-q", "-f", "base")
    for p in got.series.patches:
        git(repo, "am", "-3", "--keep-cr", str(p.path))


def test_trailers_in_a_reply_to_a_reply_count(tmp_path):
    _, bodies = tree(tmp_path)
    mails = series(bodies)
    mails.append(mail("r1@x.org", "Re: [PATCH 2/3] f2: widen v2_5", "> hunk\nHmm, why?\n", "Ann <ann@x.org>",
                      "v1-2@example.org", ("v1-0@example.org",)))
    mails.append(mail("r2@x.org", "Re: [PATCH 2/3] f2: widen v2_5", "> why?\nOverflow.\n\nReviewed-by: Ann <ann@x.org>\n",
                      "Ann <ann@x.org>", "r1@x.org", ("v1-0@example.org", "v1-2@example.org")))
    got, _ = same_as_b4(mbox(tmp_path / "t.mbox", mails), "v1-0@example.org", tmp_path)
    assert got.trailers[2] == ["Reviewed-by: Ann <ann@x.org>"]


def test_plain_unified_diffs_are_patches(tmp_path):
    repo, bodies = tree(tmp_path, 2)
    plain = [re.sub(r"^diff --git .*\nindex .*\n", "", b, flags=re.M) for b in bodies]
    assert all("diff --git" not in b for b in plain)
    got, _ = same_as_b4(mbox(tmp_path / "t.mbox", series(plain)), "v1-0@example.org", tmp_path)
    assert [f.path for p in got.series.patches for f in p.files] == ["f1.c", "f2.c"]
    applies(repo, got)


def test_a_partial_reroll_takes_the_older_revision_for_what_was_not_resent(tmp_path):
    _, bodies = tree(tmp_path, 2)
    v1 = series(bodies)
    v2_2 = mail("v2-2@example.org", "[PATCH v2 2/2] f2: widen v2_5", bodies[1].replace("Because", "As"),
                reply_to="v1-2@example.org", refs=("v1-0@example.org",), minute=30)
    got, ref = same_as_b4(mbox(tmp_path / "t.mbox", [*v1, v2_2]), "v1-0@example.org", tmp_path)
    assert "Partial reroll" in ref["output"] and got.origins == {1: 1, 2: 2}


def test_patchv2_without_a_space_is_revision_2(tmp_path):
    _, bodies = tree(tmp_path)
    v1 = series(bodies)
    v2 = [m.replace(b"[PATCH v2 ", b"[PATCHv2 ") for m in series(bodies, rev=2)]
    v2[0] = v2[0].replace(b"Message-Id: <v2-0@example.org>", b"Message-Id: <v2-0@example.org>\n"
                                                               b"In-Reply-To: <v1-0@example.org>")
    got, _ = same_as_b4(mbox(tmp_path / "t.mbox", [*v1, *v2]), "v1-0@example.org", tmp_path)
    assert got.revision == 2 and len(got.dropped) >= 3


def test_a_body_line_starting_with_from_is_not_a_new_mail(tmp_path):
    repo, bodies = tree(tmp_path, 2, message="From the datasheet, v5 is 50.\nFrom here on it is long.")
    mails = series(bodies)
    rd = mbox(tmp_path / "rd.mbox", [re.sub(rb"(?m)^(>*From )", rb">\1", m) for m in mails])  # as lore writes
    got, _ = same_as_b4(rd, "v1-0@example.org", tmp_path)
    assert "From the datasheet" in got.series.patches[0].path.read_text()
    # unescaped, as git format-patch --stdout writes it (b4's mailbox module cannot read that one)
    assert len(kseries(mbox(tmp_path / "o.mbox", mails), tmp_path).series.patches) == 2
    mails, _, _ = sources.from_git(str(repo), "base..HEAD")  # kseries' own format-patch intake
    assert [m.index for m in mails] == [1, 2]


def test_diffstat_does_not_count_the_signature(tmp_path):
    _, bodies = tree(tmp_path, 2)
    got = kseries(mbox(tmp_path / "t.mbox", series(bodies)), tmp_path)
    assert [(f.path, f.insertions, f.deletions) for f in got.series.files] == [("f1.c", 1, 1), ("f2.c", 1, 1)]


def test_trailer_values_and_senders_are_checked(tmp_path):
    _, bodies = tree(tmp_path)
    mails = series(bodies)
    mails.append(mail("r1@x.org", "Re: [PATCH 1/3] f1: widen v1_5",
                      "Tested-by: Bob <bob@x.org<mailto:bob@x.org>>\n", "Bob <bob@x.org>", "v1-1@example.org",
                      ("v1-0@example.org",)))
    mails.append(mail("r2@x.org", "Re: [PATCH 2/3] f2: widen v2_5", "Tested-by: not yet, will test tomorrow\n",
                      "Bob <bob@x.org>", "v1-2@example.org", ("v1-0@example.org",)))
    mails.append(mail("r3@x.org", "Re: [PATCH 3/3] f3: widen v3_5", "Acked-by: Carol <carol@x.org>\n",
                      "Mallory <mallory@x.org>", "v1-3@example.org", ("v1-0@example.org",)))
    got, _ = same_as_b4(mbox(tmp_path / "t.mbox", mails), "v1-0@example.org", tmp_path)
    assert got.trailers[1] == ["Tested-by: Bob <bob@x.org>"] and not got.trailers[2] and not got.trailers[3]


def test_trailer_names_are_case_insensitive(tmp_path):
    _, bodies = tree(tmp_path)
    mails = series(bodies)
    mails.append(mail("r1@x.org", "Re: [PATCH 0/3] widen things", "Reviewed-By: Ann <ann@x.org>\n",
                      "Ann <ann@x.org>", "v1-0@example.org"))
    got, _ = same_as_b4(mbox(tmp_path / "t.mbox", mails), "v1-0@example.org", tmp_path)
    assert all(got.trailers[k] == ["Reviewed-By: Ann <ann@x.org>"] for k in (1, 2, 3))


def test_a_reply_without_re_still_gives_its_trailers(tmp_path):
    _, bodies = tree(tmp_path)
    mails = series(bodies)
    mails.append(mail("r1@x.org", "[PATCH 2/3] f2: widen v2_5", "Acked-by: Ann <ann@x.org>\n",
                      "Ann <ann@x.org>", "v1-2@example.org", ("v1-0@example.org",)))
    got, _ = same_as_b4(mbox(tmp_path / "t.mbox", mails), "v1-0@example.org", tmp_path)
    assert got.trailers[2] == ["Acked-by: Ann <ann@x.org>"]


def test_a_crlf_mbox_applies(tmp_path):
    repo, bodies = tree(tmp_path)
    path = mbox(tmp_path / "t.mbox", series(bodies))
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    got, _ = same_as_b4(path, "v1-0@example.org", tmp_path)
    applies(repo, got)
    assert git(repo, "show", "HEAD:f3.c").count("\r") == 0


def test_a_patch_sent_as_an_attachment_is_found(tmp_path):
    repo, bodies = tree(tmp_path)
    mails = series(bodies)
    message, diff = bodies[2].split("\n---\n", 1)
    att = EmailMessage()
    for k, v in (("From", DEV), ("Date", "Fri, 01 May 2026 10:03:00 +0000"), ("Subject", "[PATCH 3/3] f3: widen v3_5"),
                 ("Message-Id", "<v1-3@example.org>"), ("In-Reply-To", "<v1-0@example.org>"),
                 ("References", "<v1-0@example.org>")):
        att[k] = v
    att.set_content(message + "\n")
    att.add_attachment(diff, subtype="x-patch", filename="0003.patch")
    mails[3] = att.as_bytes()
    got, _ = same_as_b4(mbox(tmp_path / "t.mbox", mails), "v1-0@example.org", tmp_path)
    applies(repo, got)
    assert "long v3_5 = 50;" in (repo / "f3.c").read_text()


def test_a_cover_without_0_of_n_and_trailers_carried_by_patch_id(tmp_path):
    _, bodies = tree(tmp_path)
    v1 = series(bodies)
    v1.append(mail("r1@x.org", "Re: [PATCH 1/3] f1: widen v1_5", "Reviewed-by: Ann <ann@x.org>\n",
                   "Ann <ann@x.org>", "v1-1@example.org", ("v1-0@example.org",)))
    v2 = series(bodies, rev=2)
    v2[0] = mail("v2-0@example.org", "widen things, take two", "Changes: none in 1/3.\n",
                 reply_to="v1-0@example.org")
    got, _ = same_as_b4(mbox(tmp_path / "t.mbox", [*v1, *v2]), "v1-0@example.org", tmp_path)
    assert got.cover is not None and got.cover.message_id == "v2-0@example.org"
    assert got.trailers[1] == ["Reviewed-by: Ann <ann@x.org>"]


def test_a_truncated_or_mangled_patch_is_an_input_error_naming_the_line(tmp_path):
    _, bodies = tree(tmp_path)
    mails = series(bodies)
    mails[3] = mails[3][: mails[3].rindex(b"@@") + 60]
    with pytest.raises(UserError, match=r"Patch 3/3 .* corrupt patch at line \d+ of the mail"):
        kseries(mbox(tmp_path / "cut.mbox", mails), tmp_path)
    mails = series(bodies)
    mails[2] = re.sub(rb"@@ -(\d)", rb"@@ -x\1", mails[2])
    with pytest.raises(UserError, match=r"Patch 2/3 .* corrupt patch at line \d+"):
        kseries(mbox(tmp_path / "mangled.mbox", mails), tmp_path)


def test_without_a_base_commit_the_base_is_guessed_from_the_index_lines(tmp_path):
    from pipeline.intake import base

    repo, bodies = tree(tmp_path)
    # the same file changed twice: the net diffstat is not the sum of the patches'
    text = (repo / "f1.c").read_text().replace("long v1_5 = 50;", "long v1_5 = 51;")
    (repo / "f1.c").write_text(text)
    git(repo, "commit", "-q", "-am", "f1: once more")
    bodies.append(git(repo, "format-patch", "-1", "--stdout", "HEAD").split("\n\n", 1)[1])
    got = kseries(mbox(tmp_path / "t.mbox", series(bodies, cover=False)), tmp_path)
    found = base.guess(repo, bodies)
    assert found is not None and found[0] == git(repo, "rev-parse", "base").strip()
    assert "preimage blob" in found[1]
    net = base.net_stat(repo, found[0], [p.path for p in got.series.patches])
    assert [(f.path, f.insertions, f.deletions) for f in net] == [("f1.c", 1, 1), ("f2.c", 1, 1), ("f3.c", 1, 1)]
    assert sum(f.insertions for f in got.series.files) == 4  # summed per patch: f1.c twice


def test_display_names_are_kept_as_the_reviewer_wrote_them(tmp_path):
    """A trailer is the reviewer's text, not an RFC 5322 header: no quotes added where none were typed
    (liblore adds them), none lost where they were (b4 keeps them)."""
    _, bodies = tree(tmp_path, 2)
    mails = series(bodies)
    for i, (sender, line) in enumerate([
            ("Ann Reviewer <ann@x.org>", "Reviewed-by: Ann Reviewer (corporate) <ann@x.org>"),
            ("Bob Tester <bob@x.org>", "Tested-by: Tester, Bob <bob@x.org>"),
            ("Carol <carol@x.org>", "Acked-by: Carol Acker [corp] <carol@x.org>"),
            ("Dan <dan@x.org>", 'Reviewed-by: "Quoted, Dan" <dan@x.org>')]):
        mails.append(mail(f"r{i}@x.org", "Re: [PATCH 1/2] f1: widen v1_5", f"> hunk\n\n{line}\n", sender,
                          "v1-1@example.org", ("v1-0@example.org",), minute=20 + i))
    got, _ = same_as_b4(mbox(tmp_path / "t.mbox", mails), "v1-0@example.org", tmp_path)
    assert got.trailers[1] == ["Reviewed-by: Ann Reviewer (corporate) <ann@x.org>",
                               "Tested-by: Tester, Bob <bob@x.org>", "Acked-by: Carol Acker [corp] <carol@x.org>",
                               'Reviewed-by: "Quoted, Dan" <dan@x.org>']


def test_a_partial_reroll_has_the_cover_letter_of_the_revision_it_fills_from(tmp_path):
    """v3 resends only 2/2 (a reply to v2's 2/2): 1/2 comes from v2 with its trailers, and a review
    of v2's cover letter counts for every patch of the series, the resent one too (as b4 am)."""
    _, bodies = tree(tmp_path, 2)
    v2 = series(bodies, rev=2)
    v2.append(mail("c@x.org", "Re: [PATCH v2 0/2] widen things", "> Cover.\n\nReviewed-by: Ann <ann@x.org>\n",
                   "Ann <ann@x.org>", "v2-0@example.org", minute=20))
    v2.append(mail("p@x.org", "Re: [PATCH v2 1/2] f1: widen v1_5", "> hunk\n\nAcked-by: Bob <bob@x.org>\n",
                   "Bob <bob@x.org>", "v2-1@example.org", ("v2-0@example.org",), minute=21))
    v3 = mail("v3-2@example.org", "[PATCH v3 2/2] f2: widen v2_5", bodies[1].replace("Because", "As"),
              reply_to="v2-2@example.org", refs=("v2-0@example.org",), minute=40)
    got, ref = same_as_b4(mbox(tmp_path / "t.mbox", [*v2, v3]), "v2-0@example.org", tmp_path)
    assert "partial reroll" in ref["output"] and got.origins == {1: 2, 2: 3}
    assert got.cover is not None and got.cover.message_id == "v2-0@example.org"
    assert got.trailers == {1: ["Acked-by: Bob <bob@x.org>", "Reviewed-by: Ann <ann@x.org>"],
                            2: ["Reviewed-by: Ann <ann@x.org>"]}


def test_trailer_order_is_b4s(tmp_path):
    """A patch's own replies first, in the order b4 walks the thread (a reply to a reply that names only
    its parent, saved before that parent, comes after it), then the cover letter's."""
    _, bodies = tree(tmp_path, 2)
    mails = series(bodies)
    mails.append(mail("c@x.org", "Re: [PATCH 0/2] widen things", "> Cover.\n\nTested-by: Tim <tim@x.org>\n",
                      "Tim <tim@x.org>", "v1-0@example.org", minute=10))
    nested = mail("n@x.org", "Re: [PATCH 1/2] f1: widen v1_5", "> why?\n\nAcked-by: Bob <bob@x.org>\n",
                  "Bob <bob@x.org>", "q@x.org", minute=50)
    mails.append(re.sub(rb"References: .*\n", b"", nested))  # a mailer that keeps only In-Reply-To
    mails.append(mail("q@x.org", "Re: [PATCH 1/2] f1: widen v1_5", "> hunk\n\nWhy?\n", "Carol <carol@x.org>",
                      "v1-1@example.org", ("v1-0@example.org",), minute=20))
    mails.append(mail("d@x.org", "Re: [PATCH 1/2] f1: widen v1_5", "> hunk\n\nReviewed-by: Ann <ann@x.org>\n",
                      "Ann <ann@x.org>", "v1-1@example.org", ("v1-0@example.org",), minute=30))
    got, _ = same_as_b4(mbox(tmp_path / "t.mbox", mails), "v1-0@example.org", tmp_path)
    assert got.trailers[1] == ["Reviewed-by: Ann <ann@x.org>", "Acked-by: Bob <bob@x.org>",
                               "Tested-by: Tim <tim@x.org>"]


def test_plain_diffs_are_taken_as_git_am_applies_them(tmp_path):
    """diff -urN output (timestamps, 'linux.orig/' and 'linux/' as the leading directories) is a patch like any
    other, trailers and all; a plain diff git am cannot apply (its hunk counts do not match its lines) is
    an input error that says so, not 'cut in transit'."""
    repo, bodies = tree(tmp_path, 2)

    def urn(body: str) -> str:
        body = re.sub(r"^diff --git a/(\S+) b/\S+\nindex .*\n", r"diff -urNp linux.orig/\1 linux/\1\n", body, flags=re.M)
        body = re.sub(r"^--- a/(\S+)$", r"--- linux.orig/\1\t2026-05-01 10:00:00.000000000 +0000", body, flags=re.M)
        return re.sub(r"^\+\+\+ b/(\S+)$", r"+++ linux/\1\t2026-05-01 10:05:00.000000000 +0000", body, flags=re.M)

    mails = series([urn(b) for b in bodies])
    mails.append(mail("r@x.org", "Re: [PATCH 2/2] f2: widen v2_5", "> hunk\n\nReviewed-by: Ann <ann@x.org>\n",
                      "Ann <ann@x.org>", "v1-2@example.org", ("v1-0@example.org",), minute=20))
    got, _ = same_as_b4(mbox(tmp_path / "t.mbox", mails), "v1-0@example.org", tmp_path)
    assert [f.path for p in got.series.patches for f in p.files] == ["f1.c", "f2.c"]
    applies(repo, got)
    miscounted = [urn(bodies[0]).replace("@@ -3,7 +3,7 @@", "@@ -3,9 +3,9 @@"), bodies[1]]
    assert "@@ -3,9 +3,9 @@" in miscounted[0]
    path = mbox(tmp_path / "m.mbox", series(miscounted))
    with pytest.raises(UserError, match=r"Patch 1/2 .* is a plain diff \(no 'diff --git' header\) that git cannot "
                                        r"read: corrupt patch at line \d+ of the mail\. .* git am cannot apply"):
        kseries(path, tmp_path)
    git(repo, "checkout", "-q", "-f", "base")
    single = tmp_path / "one.patch"
    single.write_bytes(series(miscounted)[1])
    assert subprocess.run(["git", "-C", str(repo), "am", str(single)], capture_output=True).returncode != 0
    subprocess.run(["git", "-C", str(repo), "am", "--abort"], capture_output=True)


def test_a_plain_diff_made_in_the_tree_itself_is_applied_to_its_own_path(tmp_path):
    """`diff -u lib/f1.c.orig lib/f1.c` (and of a top-level file, f2.c.orig f2.c): patch -p0 diffs.
    git am strips one leading directory from each path, so as sent it would look for f1.c and
    fail; kseries stages them with a/ and b/ put before the tree's own paths, and they apply."""
    repo = tmp_path / "repo"
    (repo / "lib").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "lib" / "f1.c").write_text("".join(f"int a{j} = {j};\n" for j in range(12)))
    (repo / "f2.c").write_text("".join(f"int b{j} = {j};\n" for j in range(12)))
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "tag", "base")
    bodies = []
    for path, old, new in (("lib/f1.c", "int a5 = 5;", "long a5 = 50;"), ("f2.c", "int b5 = 5;", "long b5 = 50;")):
        (repo / path).write_text((repo / path).read_text().replace(old, new))
        git(repo, "commit", "-q", "-am", f"{path}: widen\n\nBecause.\n\nSigned-off-by: {DEV}")
        body = git(repo, "format-patch", "-1", "--stdout", "HEAD").split("\n\n", 1)[1]
        body = re.sub(r"^diff --git .*\nindex .*\n", "", body, flags=re.M)
        body = re.sub(r"^--- a/(\S+)$", r"--- \1.orig\t2026-05-01 10:00:00 +0000", body, flags=re.M)
        bodies.append(re.sub(r"^\+\+\+ b/(\S+)$", r"+++ \1\t2026-05-01 10:05:00 +0000", body, flags=re.M))
    assert "--- lib/f1.c.orig" in bodies[0] and "+++ f2.c" in bodies[1]
    got = kseries(mbox(tmp_path / "p0.mbox", series(bodies)), tmp_path)
    assert [f.path for p in got.series.patches for f in p.files] == ["lib/f1.c", "f2.c"]
    applies(repo, got)
    assert "long a5 = 50;" in (repo / "lib" / "f1.c").read_text()
