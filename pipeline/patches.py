"""Where the series' patches come from: lore first, else the offline copy in configs/."""

from __future__ import annotations

import email
import email.policy
import gzip
import os
import shutil
from pathlib import Path

from . import config
from .context import Context
from .series import Series, load_patch_dir, split_subject

LORE_TIMEOUT = 15


def lore_url(spec: config.Series) -> str:
    base = os.environ.get("KSERIES_LORE_URL") or spec.lore_url
    return f"{base.rstrip('/')}/{spec.message_id}/t.mbox.gz"


def from_lore(ctx: Context, spec: config.Series, dest: Path) -> tuple[Series | None, str]:
    """Download the thread and keep its [PATCH k/n] mails (k >= 1); (None, why) when unreachable."""
    import requests

    url = lore_url(spec)
    ctx.runner.note(f"GET {url}")
    try:
        resp = requests.get(url, timeout=LORE_TIMEOUT)
    except requests.RequestException as exc:
        return None, f"{url}: {type(exc).__name__}"
    if resp.status_code != 200:
        return None, f"{url}: HTTP {resp.status_code}"
    try:
        mbox = gzip.decompress(resp.content)
    except OSError:
        mbox = resp.content
    shutil.rmtree(dest, ignore_errors=True)
    (dest / "mails").mkdir(parents=True)
    (dest / "thread.mbox").write_bytes(mbox)
    ctx.runner.run(["git", "mailsplit", f"-o{dest / 'mails'}", dest / "thread.mbox"])
    kept = dest / "patches"
    kept.mkdir()
    for mail in sorted((dest / "mails").iterdir()):
        raw = mail.read_bytes()
        subject = " ".join(str(email.message_from_bytes(raw, policy=email.policy.default).get("Subject", "")).split())
        k, _, _ = split_subject(subject)
        if k and not subject.lower().startswith("re:") and b"\ndiff --git " in raw:
            shutil.copy(mail, kept / f"{k:04d}.patch")
    if not any(kept.iterdir()):
        return None, f"{url}: the thread holds no patch mails"
    return load_patch_dir(kept, spec.title, f"lore {url}"), ""


def obtain(ctx: Context, spec: config.Series) -> tuple[Series, dict]:
    series, why = from_lore(ctx, spec, ctx.run_dir / "series")
    if series:
        return series, {"patches": series.source}
    offline = load_patch_dir(spec.patch_dir, spec.title, f"offline copy {spec.patch_dir}")
    return offline, {"patches": f"offline copy {spec.patch_dir.relative_to(config.REPO) if spec.patch_dir.is_relative_to(config.REPO) else spec.patch_dir} (lore unreachable: {why})"}
