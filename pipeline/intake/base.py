"""What a series applies to, when its mails do not say: the base guessed from the diffs' index
lines (as `b4 am --guess-base` does), and the series' net change against a base at hand.

Each file's first diff in the series names the blob it changes (`index 83fb34b..8bc9ce5`); a
commit whose tree holds every one of those blobs is a base the series applies to. Candidates
are the commits the kseries cache already holds (its refs), newest first.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from pipeline.infra.runner import Runner
from pipeline.model.series import FileStat

INDEX = re.compile(r"^diff --git a/(\S+) b/\S+\n(?:(?:old|new|deleted|similarity|rename|copy)[^\n]*\n)*"
                   r"index ([0-9a-f]{7,40})\.\.", re.M)


def preimages(bodies: list[str]) -> dict[str, str]:
    """path -> the abbreviated blob its first diff in the series starts from (new files left out)."""
    found: dict[str, str] = {}
    for body in bodies:
        for path, blob in INDEX.findall(body):
            if path not in found and set(blob) != {"0"}:
                found[path] = blob
    return found


def _is_repo(repo: Path, runner: Runner) -> bool:
    return repo.is_dir() and runner.git(repo, "rev-parse", "--git-dir", check=False).returncode == 0


def guess(repo: Path, bodies: list[str], runner: Runner | None = None) -> tuple[str, str] | None:
    """(commit, how) for the newest cached commit holding every preimage blob, or None."""
    runner = runner or Runner()
    wanted = preimages(bodies)
    if not wanted or not _is_repo(repo, runner):
        return None
    refs = runner.git(repo, "for-each-ref", "--sort=-committerdate", "--format=%(objectname) %(refname)",
                      check=False).output.split("\n")
    for line in (r for r in refs if r.strip()):
        commit, ref = line.split(" ", 1)
        if all(runner.git(repo, "rev-parse", "-q", "--verify", f"{commit}:{path}", check=False)
               .output.strip().startswith(blob) for path, blob in wanted.items()):
            return commit, (f"guessed from the index lines of the patches: {commit[:12]} ({ref}) holds all "
                            f"{len(wanted)} preimage blob(s)")
    return None


def net_stat(repo: Path, base: str, patches: list[Path], runner: Runner | None = None) -> tuple[FileStat, ...] | None:
    """The whole series' change against base (git diff --numstat after applying every patch in a
    scratch index), or None when the base is not at hand or a patch does not apply there."""
    runner = runner or Runner()
    if not _is_repo(repo, runner) or runner.git(repo, "cat-file", "-e", f"{base}^{{commit}}",
                                                 check=False).returncode != 0:
        return None
    with tempfile.TemporaryDirectory(prefix="kseries-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        runner.git(repo, "read-tree", base, env=env)
        for patch in patches:
            if runner.git(repo, "apply", "--cached", str(patch), env=env, check=False).returncode:
                return None
        tree = runner.git(repo, "write-tree", env=env).output.strip()
    out = runner.git(repo, "diff", "--numstat", base, tree).output
    stats = []
    for line in out.splitlines():
        ins, dels, path = line.split("\t", 2)
        stats.append(FileStat(path, int(ins) if ins != "-" else 0, int(dels) if dels != "-" else 0))
    return tuple(stats)
