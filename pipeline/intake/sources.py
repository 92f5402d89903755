"""Where a series' mails come from: lore by message-id, an mbox / maildir / patch
directory, a git range, or a patchwork series; and the series' own offline copy.

Every source gives raw mails; pipeline/mail.py picks the series out of them.
Network sources go through one fetch() with timeouts and retries (with
backoff) for 5xx answers and dropped connections; a downloaded thread is
cached by message-id, so an offline rerun uses the copy and says so.
"""

from __future__ import annotations

import gzip
import hashlib
import mailbox
import os
import re
import shutil
import subprocess
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from pipeline.model import config
from pipeline.intake import mail, thread
from pipeline.intake.http import RETRIES, fetch, ungzip
from pipeline.infra import paths
from pipeline.infra.errors import InfraError, UserError

DEFAULT_LORE = "https://lore.kernel.org/all"


@dataclass(frozen=True)
class Request:
    """The command line's choice of source; all empty means: the series YAML's own."""
    msgid: str = ""
    lore_url: str = ""
    mbox: str = ""
    git: str = ""  # repository path or URL
    range: str = ""  # BASE..TIP, with git
    patchwork: str = ""  # series id, with patchwork_url
    patchwork_url: str = ""

    @property
    def given(self) -> bool:
        return bool(self.msgid or self.mbox or self.git or self.patchwork)

    def check(self) -> None:
        chosen = [n for n, v in (("--msgid", self.msgid), ("--mbox", self.mbox), ("--git", self.git),
                                 ("--patchwork", self.patchwork)) if v]
        if len(chosen) > 1:
            raise UserError(f"{' and '.join(chosen)} both name the series' patches. Pass only one source.")
        if self.git and not re.fullmatch(r"[^.\s]\S*\.\.\S*[^.\s]", self.range or ""):
            raise UserError(
                f"--git {self.git} needs --range BASE..TIP (got '{self.range}'): the commits after BASE up "
                "to TIP are the series, e.g. --range v7.1..my-branch.")
        if self.range and not self.git:
            raise UserError("--range needs --git REPO: the repository that holds BASE..TIP.")


@dataclass
class Intake:
    parsed: thread.Parsed
    source: str  # provenance: where the patches came from
    base_commit: str = ""  # from a git range's BASE, else the mail's base-commit: trailer
    base_repo: str = ""  # where that commit can be fetched from
    staging: Path | None = None  # where the patch mails were written; dropped once kept elsewhere
    base_note: str = ""  # how the base was found when the mails do not name it
    net: tuple | None = None  # the series' net diffstat against its base, when the base is at hand
    chosen: dict | None = None  # for a series without a YAML: which tests and arches, and why

    def discard(self) -> None:
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)


def cache_dir() -> Path:
    from pipeline.infra.context import cache_root

    return cache_root() / "mail"


def split_mbox(data: bytes, where: str) -> list[mail.Mail]:
    """Mails of an mbox (From_ lines), or the one mail of a single message."""
    chunks = mail.split_mbox(data)
    if len(chunks) == 1:
        return [mail.read(where, chunks[0])]
    return [mail.read(f"{where} (mail {i})", chunk) for i, chunk in enumerate(chunks, 1)]


def check_mail_shape(mails: list[mail.Mail], where: str) -> None:
    """An input that is not mail at all (a wrong file, HTML, garbage) says so."""
    if mails and all(not m.subject and not m.message_id and not m.sender for m in mails):
        raise UserError(f"{where} is not mail: no message in it has a Subject, From or Message-Id "
                        "header. Pass an mbox (as lore's t.mbox.gz or b4 am write), a maildir or "
                        "a directory of git format-patch files.")


def from_lore(msgid: str, lore_url: str, retries: int = RETRIES) -> tuple[list[mail.Mail], str]:
    msgid = msgid.strip().strip("<>")
    if not re.fullmatch(r"[^\s/<>]+@[^\s/<>]+", msgid):
        raise UserError(f"--msgid '{msgid}' is not a message-id (something@host, as in a Message-Id "
                        "header or a lore.kernel.org/all/<id>/ link). Copy it from the cover letter.")
    url = f"{lore_url.rstrip('/')}/{msgid}/t.mbox.gz"
    cached = cache_dir() / (hashlib.sha256(msgid.encode()).hexdigest()[:24] + ".mbox")
    try:
        data = ungzip(fetch(url, "thread with that message-id", "--msgid / --lore-url", retries), url)
    except InfraError as exc:
        if not cached.exists():
            raise
        note = f"lore {url} (unreachable: {exc.message.split(' (')[0]}; the copy downloaded " \
               f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(cached.stat().st_mtime))} stood in)"
        return split_mbox(cached.read_bytes(), url), note
    mails = split_mbox(data, url)
    check_mail_shape(mails, url)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(cached)  # only a whole download is kept
    return mails, f"lore {url}"


def from_path(path_text: str) -> tuple[list[mail.Mail], str]:
    path = paths.input_file(path_text, "--mbox", "Pass the mbox, maildir or patch directory the series was "
                            "saved to (b4 am -o DIR writes one).", dirs=True)
    if path.is_dir() and all((path / d).is_dir() for d in ("cur", "new")):
        box = mailbox.Maildir(str(path), factory=None, create=False)
        mails = [mail.read(f"{path}/{key}", box.get_bytes(key)) for key in sorted(box.keys())]
    elif path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in (".patch", ".eml", ".mbx", ".mbox"))
        if not files:
            raise UserError(f"--mbox {path}: the directory holds no .patch, .eml or .mbox file. "
                            "Put the series' patch mails there (git format-patch -o DIR writes them).")
        mails = [m for f in files for m in split_mbox(f.read_bytes(), str(f))]
    else:
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError, zlib.error) as exc:
                raise UserError(f"--mbox {path} is a broken gzip file ({exc}). Download it again.") from exc
        mails = split_mbox(data, str(path))
    check_mail_shape(mails, str(path))
    return mails, f"mbox {path.resolve()}"


def from_git(repo: str, rng: str) -> tuple[list[mail.Mail], str, str]:
    base, tip = rng.split("..", 1)

    # --thread makes message-ids from the committer identity: a fixed one, whatever the user's config
    env = {**os.environ, "GIT_COMMITTER_NAME": "kseries", "GIT_COMMITTER_EMAIL": "kseries@localhost"}

    def git(*args: str) -> subprocess.CompletedProcess:  # bytes: a patch need not be UTF-8
        return subprocess.run(["git", "-C", repo, *args], capture_output=True, timeout=600, env=env)

    if git("rev-parse", "--git-dir").returncode != 0:
        raise UserError(f"--git {repo} is not a git repository. Pass the path of the kernel tree "
                        "that holds the series' branch.")
    for ref in (base, tip):
        if git("rev-parse", "-q", "--verify", f"{ref}^{{commit}}").returncode != 0:
            raise UserError(f"--range {rng}: '{ref}' is not a commit in {repo}. Use a branch, tag or "
                            "commit id that 'git log' in that repository knows.")
    base_sha = git("rev-parse", f"{base}^{{commit}}").stdout.decode().strip()
    out = git("format-patch", "--stdout", "--no-signature", "--thread", rng)
    if out.returncode != 0:
        raise UserError(f"git format-patch {rng} failed in {repo}: {out.stderr.decode()[-300:].strip()}")
    mails = split_mbox(out.stdout, f"{repo} {rng}")
    if not mails:
        raise UserError(f"--range {rng} in {repo} holds no commit (TIP is BASE or behind it). "
                        "Name the series' base and its last commit.")
    # a series from git has no k/n in its subjects: number them in order
    for i, m in enumerate(mails, 1):
        m.index, m.total, m.kind = i, len(mails), "patch" if "\ndiff --git " in "\n" + m.body else "other"
        m.revision = 1
    return mails, f"git {repo} {rng}", base_sha


def from_patchwork(series_id: str, url: str) -> tuple[list[mail.Mail], str]:
    import json

    if not series_id.isdigit():
        raise UserError(f"--patchwork '{series_id}' is not a series id: pass the number from the "
                        "patchwork series URL (…/project/<name>/list/?series=NNN).")
    if not url:
        raise UserError("--patchwork needs --patchwork-url, the patchwork instance "
                        "(e.g. https://patchwork.kernel.org).")
    api = f"{url.rstrip('/')}/api/series/{series_id}/"
    try:
        meta = json.loads(fetch(api, "patchwork series with that id", "--patchwork"))
    except ValueError as exc:
        raise InfraError(f"{api} did not answer JSON ({exc}); is {url} a patchwork instance?") from exc
    mbox_url = meta.get("mbox")
    if not mbox_url:
        raise InfraError(f"{api} names no mbox for series {series_id}; the patchwork API answered "
                         "something unexpected.")
    data = ungzip(fetch(mbox_url, "series mbox", "--patchwork"), mbox_url)
    mails = split_mbox(data, mbox_url)
    check_mail_shape(mails, mbox_url)
    return mails, f"patchwork {api}"


def obtain(request: Request, spec: config.SeriesConfig | None, out_dir: Path) -> Intake:
    """The series' patches from the requested source, written to out_dir for git am."""
    request.check()
    title = spec.title if spec and not request.given else ""
    base_sha = base_repo = ""
    if request.msgid:
        mails, source = from_lore(request.msgid, request.lore_url or os.environ.get("KSERIES_LORE_URL")
                                  or (spec.lore_url if spec else DEFAULT_LORE))
    elif request.mbox:
        mails, source = from_path(request.mbox)
    elif request.git:
        mails, source, base_sha = from_git(request.git, request.range)
        base_repo = request.git
    elif request.patchwork:
        mails, source = from_patchwork(request.patchwork, request.patchwork_url)
    elif spec is not None:
        return _default(spec, out_dir)
    else:
        raise UserError("No series given. Pass --series NAME (configs/series/NAME.yaml), or one source: "
                        "--msgid ID, --mbox FILE, --git REPO --range BASE..TIP or --patchwork ID.")
    parsed = thread.choose(mails, source.split(" (")[0], title, out_dir)
    return Intake(parsed, source, base_sha or parsed.base_commit, base_repo)


def _default(spec: config.SeriesConfig, out_dir: Path) -> Intake:
    """A series YAML's own source: its thread on lore, else its offline copy."""
    lore = os.environ.get("KSERIES_LORE_URL") or spec.lore_url
    why = ""
    try:
        mails, source = from_lore(spec.message_id, lore, retries=1)  # the offline copy is the fallback
        parsed = thread.choose(mails, source, spec.title, out_dir)
        return Intake(parsed, source, spec.base.commit)
    except (InfraError, UserError) as exc:
        found = re.search(r"\(([^()]*)\)\. ", exc.message)
        why = found.group(1) if found else exc.message.split(". ")[0]
    mails, _ = from_path(str(spec.patch_dir))
    where = spec.patch_dir.relative_to(config.REPO) if spec.patch_dir.is_relative_to(config.REPO) else spec.patch_dir
    parsed = thread.choose(mails, str(where), spec.title, out_dir)
    return Intake(parsed, f"offline copy {where} (lore unreachable: {why})", spec.base.commit)


def describe(got: Intake) -> str:
    """What `invoke series` prints and the run keeps as series/series.txt."""
    from pipeline.model.series import format_diffstat

    p = got.parsed
    lines = [f"{p.series.title}", f"source: {got.source}", f"revision: v{p.revision}"]
    if p.cover is not None:
        lines.append(f"cover letter: {p.cover.subject}")
    if got.base_commit:
        lines.append(f"base-commit: {got.base_commit}" + (f" ({got.base_note})" if got.base_note else ""))
    if p.change_id:
        lines.append(f"change-id: {p.change_id}")
    lines.append("")
    for patch in p.series.patches:
        lines.append(f"[PATCH {patch.label}] {patch.subject}")
        lines.append(f"    {patch.author}")
        lines += [f"    {t}" for t in p.trailers.get(patch.index, [])]
        if p.origins.get(patch.index, p.revision) != p.revision:
            lines.append(f"    taken from v{p.origins[patch.index]}: v{p.revision} is a partial reroll that "
                         "did not resend it")
    if got.net is not None:
        lines += ["", format_diffstat(list(got.net)).rstrip("\n")]
    else:
        lines += ["", format_diffstat(p.series.files).rstrip("\n") + "  (summed per patch: the base is not "
                  "at hand for the net change)"]
    lines += [f"note: {n}" for n in p.notes]
    if p.dropped:
        lines += ["", f"left out ({len(p.dropped)}):"] + [f"  {d}" for d in p.dropped]
    return "\n".join(lines) + "\n"
