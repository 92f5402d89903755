"""Series intake, hermetic: a loopback HTTP server plays lore and patchwork; mboxes,
maildirs and git ranges are built in tmp_path from the seed's real patch mails.
Every bad input goes through the real command line: exit 2 (input) or 3 (network),
one paragraph naming the input and the fix, and no run left behind."""

import gzip
import http.server
import json
import mailbox
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

from pipeline.stages import apply
from pipeline.model import config
from pipeline.intake import sources as intake, mail
from pipeline.infra.context import Context
from pipeline.infra.progress import Progress
from pipeline.infra.runner import Runner

SEED = config.load_series("page_mapped")
SEED_MAILS = [p.read_bytes() for p in sorted(SEED.patch_dir.glob("*.patch"))]
COVER_ID = SEED.message_id


def mbox(*mails: bytes) -> bytes:
    return b"".join(b"From kseries Mon Sep 17 00:00:00 2001\n" + (m if m.endswith(b"\n") else m + b"\n")
                    for m in mails)


def msg(subject: str, body: str, msgid: str = "", reply_to: str = "", sender: str = "A <a@example.org>") -> bytes:
    head = f"From: {sender}\nSubject: {subject}\n"
    head += f"Message-Id: <{msgid}>\n" if msgid else ""
    head += f"In-Reply-To: <{reply_to}>\n" if reply_to else ""
    return (head + "\n" + body).encode()


def revision(raw: bytes, rev: str) -> bytes:
    """A seed mail as revision rev of its series: its subject and its message-ids say so."""
    return raw.replace(b"[PATCH ", f"[PATCH {rev} ".encode(), 1).replace(b"-v1-", f"-{rev}-".encode())


COVER = msg("[PATCH 0/3] mm: remove page_mapped()",
            "Let's remove page_mapped().\n\n---\nbase-commit: a2ddbfd1af0f54ea84bf17f0400088815d012e8d\n"
            "change-id: 20260422-page_mapped-a49a892fa432\n", COVER_ID)
PATCH2_ID = re.search(rb"Message-Id: <([^>]+)>", SEED_MAILS[1]).group(1).decode()
THREAD = mbox(COVER, *SEED_MAILS,
              msg("Re: [PATCH 0/3] mm: remove page_mapped()", "> Let's\nAcked-by: Zi Yan <ziy@example.org>\n",
                  "r1@x", COVER_ID, sender="Zi Yan <ziy@example.org>"),
              msg("Re: [PATCH 2/3] bpf: arena", "> diff --git a/x b/x\n> Reviewed-by: Not Given <q@x.org>\n"
                  "Reviewed-by: Alexei <ast@example.org>\n", "r2@x", PATCH2_ID, sender="Alexei <ast@example.org>"))


class Lore(http.server.BaseHTTPRequestHandler):
    routes: dict = {}
    hits: dict = {}

    def do_GET(self):
        Lore.hits[self.path] = Lore.hits.get(self.path, 0) + 1
        answer = Lore.routes.get(self.path)
        if callable(answer):
            answer = answer(Lore.hits[self.path])
        if answer is None:
            answer = (404, b"not found")
        code, body = answer
        if code == "slow":
            time.sleep(3)
            code = 200
        self.send_response(code)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Lore)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_port}"
    Lore.routes.update({
        f"/all/{COVER_ID}/t.mbox.gz": (200, gzip.compress(THREAD)),
        "/all/v2@x/t.mbox.gz": (200, gzip.compress(mbox(
            *[revision(m, "v1") for m in SEED_MAILS], *[revision(m, "v2") for m in SEED_MAILS]))),
        "/all/flaky@x/t.mbox.gz": lambda n: (503, b"busy") if n == 1 else (200, gzip.compress(THREAD)),
        "/all/broken@x/t.mbox.gz": (500, b"oops"),
        "/all/slow@x/t.mbox.gz": ("slow", b""),
        "/all/garbage@x/t.mbox.gz": (200, b"\x1f\x8b\x08\x00garbage-not-deflate"),
        "/all/html@x/t.mbox.gz": (200, b"<html><body>Search results</body></html>"),
        "/api/series/7/": (200, json.dumps({"name": "mm: remove page_mapped()", "version": 1,
                                            "mbox": f"{url}/series/7/mbox/"}).encode()),
        "/series/7/mbox/": (200, mbox(*SEED_MAILS)),
    })
    yield url
    srv.shutdown()


def cli(*args, tmp_path: Path, env=None, cmd="series"):
    from conftest import invoke

    full = {"KSERIES_CACHE": str(tmp_path / "cache"), "KSERIES_HTTP_TIMEOUT": "1",
            "KSERIES_HTTP_BACKOFF": "0.05", **(env or {})}
    results = tmp_path / "results"
    extra = ["--results", str(results)] if cmd == "ci" else []
    return invoke(cmd, *args, *extra, env=full)


def subjects(out: str) -> list[str]:
    return re.findall(r"^\[PATCH (\d+/\d+)\] ", out, re.M)


# ---- good inputs -----------------------------------------------------------
def test_lore_thread_by_msgid_shows_the_three_seed_patches(server, tmp_path):
    proc = cli("--msgid", COVER_ID, "--lore-url", f"{server}/all", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert subjects(out) == ["1/3", "2/3", "3/3"]
    assert "[PATCH 3/3] mm: remove page_mapped()" in out
    assert f"source: lore {server}/all/{COVER_ID}/t.mbox.gz" in out
    assert "base-commit: a2ddbfd1af0f54ea84bf17f0400088815d012e8d" in out
    assert "change-id: 20260422-page_mapped-a49a892fa432" in out
    assert "cover letter: [PATCH 0/3] mm: remove page_mapped()" in out
    # the cover's ack reaches every patch; the patch-2 review only patch 2; quoted trailers don't count
    assert out.count("Acked-by: Zi Yan <ziy@example.org>") == 3
    assert out.count("Reviewed-by: Alexei <ast@example.org>") == 1
    assert "Not Given" not in out
    assert " 5 files changed, 7 insertions(+), 17 deletions(-)" in out
    assert (tmp_path / "cache" / "mail").is_dir()  # cached by message-id


def test_newest_revision_wins(server, tmp_path):
    proc = cli("--msgid", "v2@x", "--lore-url", f"{server}/all", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "revision: v2" in proc.stdout and subjects(proc.stdout) == ["1/3", "2/3", "3/3"]
    assert proc.stdout.count("  v1 [PATCH v1 ") == 3  # listed as left out


def test_a_5xx_is_retried(server, tmp_path):
    proc = cli("--msgid", "flaky@x", "--lore-url", f"{server}/all", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert Lore.hits["/all/flaky@x/t.mbox.gz"] == 2


def test_offline_rerun_uses_the_cached_thread(server, tmp_path):
    assert cli("--msgid", COVER_ID, "--lore-url", f"{server}/all", tmp_path=tmp_path).returncode == 0
    proc = cli("--msgid", COVER_ID, "--lore-url", "http://127.0.0.1:9/all", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "stood in" in proc.stdout and subjects(proc.stdout) == ["1/3", "2/3", "3/3"]


def test_mbox_gz_maildir_patch_dir_and_b4_output(tmp_path):
    (tmp_path / "t.mbox.gz").write_bytes(gzip.compress(THREAD))
    box = mailbox.Maildir(str(tmp_path / "md"), create=True)
    for m in SEED_MAILS:
        box.add(m)
    # b4 am writes one .mbx: From_ lines, the collected trailers and a Link: added to each patch
    b4 = mbox(*[m.replace(b"\n---\n", b"\nReviewed-by: B Four <b4@example.org>\nLink: https://lore/x\n---\n", 1)
                for m in SEED_MAILS])
    (tmp_path / "v1_20260427_david_mm_remove_page_mapped.mbx").write_bytes(b4)
    for source in ("t.mbox.gz", "md", "v1_20260427_david_mm_remove_page_mapped.mbx", str(SEED.patch_dir)):
        proc = cli("--mbox", str(tmp_path / source), tmp_path=tmp_path)
        assert proc.returncode == 0, (source, proc.stderr)
        assert subjects(proc.stdout) == ["1/3", "2/3", "3/3"], source
    assert proc.stdout.count("Reviewed-by") == 0
    proc = cli("--mbox", str(tmp_path / "v1_20260427_david_mm_remove_page_mapped.mbx"), tmp_path=tmp_path)
    assert proc.stdout.count("Reviewed-by: B Four <b4@example.org>") == 3


def test_git_range(tmp_path):
    repo = small_repo(tmp_path)
    proc = cli("--git", str(repo), "--range", "base..HEAD", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert subjects(proc.stdout) == ["1/2", "2/2"]
    assert "[PATCH 2/2] lib: second change" in proc.stdout
    base = subprocess.run(["git", "-C", str(repo), "rev-parse", "base"], capture_output=True, text=True).stdout.strip()
    assert f"base-commit: {base}" in proc.stdout


def test_patchwork_series(server, tmp_path):
    proc = cli("--patchwork", "7", "--patchwork-url", server, tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert subjects(proc.stdout) == ["1/3", "2/3", "3/3"] and f"patchwork {server}/api/series/7/" in proc.stdout


def test_series_yaml_with_a_source_flag_takes_only_the_patches_from_the_flag(server, tmp_path):
    proc = cli("--series", "page_mapped", "--msgid", "v2@x", "--lore-url", f"{server}/all", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "revision: v2" in proc.stdout
    assert "series: page_mapped   arches: x86_64, arm64, sh4" in proc.stdout


def small_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    env = ["-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "lib.c").write_text("int one(void)\n{\n\treturn 1;\n}\n")
    for i, (msg_, text) in enumerate([("base", None), ("lib: first change", "int one(void)\n{\n\treturn 2;\n}\n"),
                                      ("lib: second change", "int one(void)\n{\n\treturn 3;\n}\n")]):
        if text:
            (repo / "lib.c").write_text(text)
        subprocess.run(["git", "-C", str(repo), *env, "add", "."], check=True)
        subprocess.run(["git", "-C", str(repo), *env, "commit", "-q", "-m", msg_], check=True)
        if i == 0:
            subprocess.run(["git", "-C", str(repo), "tag", "base"], check=True)
    return repo


# ---- bad inputs ------------------------------------------------------------
def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def patch_with(raw: bytes, k: int, n: int) -> bytes:
    return re.sub(rb"\[PATCH \d+/\d+\]", f"[PATCH {k}/{n}]".encode(), raw, count=1)


def bad_inputs(tmp_path: Path, server: str) -> list[tuple[str, list[str], int, list[str]]]:
    """(what, argv, exit code, phrases the message must hold)."""
    m1, m2, m3 = SEED_MAILS
    cut = m3[: m3.index(b"@@", m3.index(b"diff --git a/mm/rmap.c")) + 200]
    configs = tmp_path / "configs"
    import shutil

    shutil.copytree(config.REPO / "configs", configs)
    (configs / "series" / "page_mapped.yaml").write_text("name: page_mapped\ntests: [boot\n")
    return [
        ("malformed mbox", ["--mbox", write(tmp_path, "bad.mbox", b"From x\n\x00\x01 garbage\n\nmore\n")], 2,
         ["bad.mbox is not mail", "Pass an mbox"]),
        ("truncated patch", ["--mbox", write(tmp_path, "cut.mbox", mbox(m1, m2, cut))], 2,
         ["Patch 3/3 'mm: remove page_mapped()'", "is not a patch git can read: corrupt patch at line",
          "of the mail", "fetch it again"]),
        ("patch k/n missing", ["--mbox", write(tmp_path, "gap.mbox", mbox(m1, m3))], 2,
         ["gap.mbox is incomplete", "missing 2"]),
        ("duplicate patch", ["--mbox", write(tmp_path, "dup.mbox", mbox(m1, m2, m3, patch_with(
            m3.replace(b"Message-Id: <", b"Message-Id: <other-"), 2, 3)))], 2, ["patch 2 more than once"]),
        ("two revisions mixed", ["--mbox", write(tmp_path, "mixed.mbox", mbox(
            revision(m1, "v2"), revision(m2, "v2"), revision(m3, "v1")))], 2,
         ["v2 series", "missing 3", "an older revision in another thread has 3: revisions are mixed"]),
        ("mixed series lengths", ["--mbox", write(tmp_path, "len.mbox", mbox(m1, patch_with(m2, 2, 4), m3))], 2,
         ["disagree on the series length", "two series are mixed"]),
        ("non-patch mail only", ["--mbox", write(tmp_path, "talk.mbox", mbox(
            msg("Re: [PATCH 0/3] mm", "Looks good"), msg("Meeting notes", "none")))], 2,
         ["holds no patch mail (2 mail(s): 1 reply, 1 other)"]),
        ("empty mbox", ["--mbox", write(tmp_path, "empty.mbox", b"")], 2, ["holds no mail at all"]),
        ("no such mbox", ["--mbox", str(tmp_path / "nope.mbox")], 2, ["nope.mbox: no such file"]),
        ("wrong base in a git range", ["--git", str(small_repo(tmp_path)), "--range", "v0.0..HEAD"], 2,
         ["--range v0.0..HEAD: 'v0.0' is not a commit"]),
        ("not a git repository", ["--git", str(tmp_path), "--range", "a..b"], 2, ["is not a git repository"]),
        ("range without BASE..TIP", ["--git", str(tmp_path), "--range", "HEAD"], 2, ["needs --range BASE..TIP"]),
        ("two sources", ["--mbox", "x", "--msgid", "a@b"], 2, ["--msgid and --mbox both name", "only one"]),
        ("not a message-id", ["--msgid", "page_mapped"], 2, ["--msgid 'page_mapped' is not a message-id"]),
        ("404", ["--msgid", "missing@x", "--lore-url", f"{server}/all"], 2,
         ["answered HTTP 404", "missing@x", "Check the value given to --msgid"]),
        ("500", ["--msgid", "broken@x", "--lore-url", f"{server}/all"], 3,
         ["after 3 attempt(s) (HTTP 500)", "--mbox FILE"]),
        ("timeout", ["--msgid", "slow@x", "--lore-url", f"{server}/all"], 3, ["no answer within 1.0 s"]),
        ("gzip garbage", ["--msgid", "garbage@x", "--lore-url", f"{server}/all"], 3, ["corrupt gzip stream"]),
        ("HTML instead of mail", ["--msgid", "html@x", "--lore-url", f"{server}/all"], 2, ["is not mail"]),
        ("patchwork id", ["--patchwork", "seven", "--patchwork-url", server], 2, ["is not a series id"]),
        ("no series at all", [], 2, ["No series given"]),
        ("unknown series", ["--series", "nosuch"], 2, ["Unknown series 'nosuch'", "Known series: page_mapped"]),
        ("unknown arch", ["--series", "page_mapped", "--arch", "mips"], 2, ["Unknown", "mips", "x86_64"]),
        ("bad YAML", ["--series", "page_mapped", "--env", str(configs)], 2, ["is not valid YAML"]),
        ("ad hoc series without a base", ["--mbox", str(SEED.patch_dir)], 2,
         ["names no base", "--series NAME"]),
    ]


def test_bad_inputs_are_one_paragraph_with_the_right_exit_code(server, tmp_path):
    cases = bad_inputs(tmp_path, server)
    assert len(cases) >= 15
    for what, argv, code, phrases in cases:
        env = {}
        if "--env" in argv:
            env = {"KSERIES_CONFIGS": argv[-1]}
            argv = argv[:-2]
        proc = cli(*argv, tmp_path=tmp_path, env=env, cmd="ci")
        err = proc.stderr
        assert proc.returncode == code, (what, proc.returncode, err, proc.stdout[-500:])
        assert "Traceback" not in err and err.startswith("kseries: "), (what, err)
        flat = " ".join(err.split())
        for phrase in phrases:
            assert phrase in flat, (what, phrase, flat)
        assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir()), what
    assert not list((tmp_path / "cache" / "mail").glob("*.tmp")) if (tmp_path / "cache" / "mail").exists() else True


def test_already_applied_patch_is_named_as_such_and_nothing_is_left_applied(tmp_path):
    """Real git am on a small real tree: the series' second patch is already in the base."""
    repo = small_repo(tmp_path)
    out = tmp_path / "mails"
    got = intake.obtain(intake.Request(git=str(repo), range="base..HEAD"), None, out)
    series = got.parsed.series
    ctx = Context(tmp_path / "run", tmp_path / "cache", Runner(tmp_path / "commands.log"), Progress())
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    applied = apply.run(ctx, repo, "small", head, series)  # the base is the tip: both are merged
    assert not applied.ok and applied.already
    assert "patch 1/2 'lib: first change' is already in base" in applied.message
    wt = tmp_path / "cache" / "trees" / "small"
    status = subprocess.run(["git", "-C", str(wt), "status", "--porcelain"], capture_output=True, text=True)
    assert status.stdout == ""  # git am was aborted: nothing half-applied
    assert subprocess.run(["git", "-C", str(wt), "rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout.strip() == head


def test_truncated_hunk_detection_on_the_real_patches():
    for raw in SEED_MAILS:
        stats, why = mail.numstat(mail.read("x", raw).body)
        assert why == "" and stats
    body = mail.read("x", SEED_MAILS[2]).body
    assert "corrupt patch at line" in mail.numstat(body[: body.rindex("\n", 0, len(body) - 40)])[1]
