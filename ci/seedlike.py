"""A test-only series that is the seed's in all but its patches: the benchmark's and the real tier's.

`write` puts it into a copy of configs/: the seed's YAML (base, arches, tests, fragments) under
another name, with these patch mails and a thread of its own (never the seed's message-id), and
returns the environment that points `invoke ci` at that copy with lore out of reach.
"""

from __future__ import annotations

import difflib
import re
import shutil
import subprocess
import time
from pathlib import Path

from pipeline.model import config

REPO = Path(__file__).resolve().parent.parent
SEED = "page_mapped"


def env(configs: Path) -> dict:
    """What points `invoke ci` at the copy of configs/, with lore out of reach."""
    return {"KSERIES_CONFIGS": str(configs), "KSERIES_LORE_URL": "http://127.0.0.1:9/none"}


def write(configs: Path, name: str, mails: list[str]) -> dict:
    if not configs.exists():
        shutil.copytree(REPO / "configs", configs)
    shutil.rmtree(configs / "series" / name, ignore_errors=True)
    (configs / "series" / name).mkdir()
    for i, text in enumerate(mails, 1):
        (configs / "series" / name / f"{i:04d}.patch").write_text(text)
    yaml = (REPO / "configs" / "series" / f"{SEED}.yaml").read_text()
    (configs / "series" / f"{name}.yaml").write_text(
        yaml.replace(f"name: {SEED}", f"name: {name}").replace(f"patches: {SEED}", f"patches: {name}")
        .replace(config.load_series(SEED).message_id, f"{name}@kseries.test"))
    return env(configs)


def reworded() -> list[str]:
    """The seed's patch mails as a v2 whose changelogs say more and whose code is the same."""
    return [re.sub(r"\n\n", "\n\nReworded for v2: the code is unchanged.\n\n", p.read_text(), count=1)
            .replace("[PATCH ", "[PATCH v2 ", 1) for p in sorted(config.load_series(SEED).patch_dir.glob("*.patch"))]


def note_patch(repo: Path, commit: str, path: str, subject: str, tag: str = "PATCH") -> str:
    """A real patch mail that adds a comment line at the end of path, different each time (so no
    cache holds its tree): a new series that changes one file and nothing else."""
    old = subprocess.run(["git", "-C", str(repo), "show", f"{commit}:{path}"], capture_output=True, text=True,
                         check=True).stdout.splitlines(keepends=True)
    new = old + [f"/* kseries test note {time.strftime('%Y%m%d-%H%M%S')} {time.monotonic_ns()} */\n"]
    diff = "".join(difflib.unified_diff(old, new, f"a/{path}", f"b/{path}"))
    return (f"From: Tester <t@example.org>\nSubject: [{tag}] {subject}\n\nA test patch.\n\n"
            f"Signed-off-by: Tester <t@example.org>\n---\ndiff --git a/{path} b/{path}\n{diff}")
