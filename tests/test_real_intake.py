"""The real tier for intake: thread shapes that used to break at apply or at intake, through a
real `invoke ci` on x86_64 (the seed's base and caches, so only the series lane builds)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.infra.context import Context, cache_root
from pipeline.infra.progress import Progress
from pipeline.infra.runner import Runner
from pipeline.model import config
from pipeline.stages import source

pytestmark = pytest.mark.real
REPO = Path(__file__).resolve().parent.parent
SEED = config.load_series("page_mapped")
PATCHES = sorted(SEED.patch_dir.glob("*.patch"))


def ci(*args: str, results: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invoke", "ci", "--series", "page_mapped", "--arch", "x86_64",
                           "--results", str(results), *args], cwd=REPO, capture_output=True, text=True,
                          timeout=3600)


def passed(proc, results: Path) -> dict:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    record = json.loads((results / "latest" / "results.json").read_text())
    stages = {(s["stage"], s["role"], s["suite"]): s["status"] for s in record["stages"]}
    assert stages[("apply", "series", "")] == "PASS" and stages[("build", "series", "")] == "PASS"
    assert stages[("boot", "series", "")] == "PASS"
    return record


def test_a_crlf_mbox_of_plain_diffs_applies_builds_and_boots(tmp_path):
    """CRLF line ends (a Windows mailer) and diffs without 'diff --git' (diff -u, quilt)."""
    mails = []
    for p in PATCHES:
        text = re.sub(r"^diff --git .*\nindex .*\n", "", p.read_text(), flags=re.M)
        assert "diff --git" not in text
        mails.append(text.replace("\n", "\r\n"))
    mbox = tmp_path / "crlf-plain.mbox"
    mbox.write_bytes("".join(mails).encode())
    record = passed(ci("--mbox", str(mbox), results=tmp_path / "results"), tmp_path / "results")
    assert record["provenance"]["patches"].startswith("mbox") or str(mbox) in record["provenance"]["patches"]


def test_git_range_with_a_from_line_in_a_commit_message(tmp_path):
    """kseries' own format-patch intake of a branch whose commit message has a line 'From the ...'."""
    ctx = Context(tmp_path / "run", cache_root(), Runner(tmp_path / "c.log"), Progress())
    base = source.ensure_base(ctx, SEED)
    repo = tmp_path / "linux"
    subprocess.run(["git", "clone", "-q", "--shared", "--bare", str(base.repo), str(repo)], check=True)
    parent, env = base.commit, {"GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "dev@example.org",
                                "GIT_COMMITTER_NAME": "Dev", "GIT_COMMITTER_EMAIL": "dev@example.org"}
    for i, patch in enumerate(PATCHES, 1):
        tree = source.apply_to_tree(ctx, repo, f"{parent}^{{tree}}", [patch])
        message = (f"patch {i}\n\nFrom the datasheet, nothing changes here.\nFrom here on: patch {i}.\n\n"
                   "Signed-off-by: Dev <dev@example.org>\n")  # checkpatch wants one
        parent = ctx.runner.git(repo, "commit-tree", tree, "-p", parent, "-m", message, env=env).output.strip()
    record = passed(ci("--git", str(repo), "--range", f"{base.commit}..{parent}", results=tmp_path / "results"),
                    tmp_path / "results")
    assert [s for s in record["stages"] if s["stage"] == "apply"][0]["message"] == "3 patches applied"
