"""Stage 'apply': the series applied with git am, one commit per patch, in the series'
kept worktree (stages/worktree.py: made from the base's in seconds, reset to the base
each run, dates kept where the content is, so a rerun with nothing changed rebuilds nothing).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.infra.context import Context
from pipeline.model.results import Case, Status
from pipeline.infra import locks
from pipeline.model.lane import base_tree
from pipeline.model.series import Series
from pipeline.stages import worktree
from pipeline.stages.interface import Outcome, Work

CONFLICT_RES = [
    re.compile(r"^error: patch failed: (\S+?):\d+", re.M),
    re.compile(r"^CONFLICT \([^)]*\): (?:Merge conflict in )?(\S+)", re.M),
    re.compile(r"^error: (\S+): does not exist in index", re.M),
    re.compile(r"^error: (\S+): already exists in (?:index|working directory)", re.M),
]


@dataclass
class Applied:
    worktree: Path
    base: str
    commits: list[str] = field(default_factory=list)
    cases: list[Case] = field(default_factory=list)
    ok: bool = True
    already: bool = False  # a patch failed because the base already has it: the input's fault
    message: str = ""


def conflict_files(output: str) -> list[str]:
    files: list[str] = []
    for regex in CONFLICT_RES:
        for name in regex.findall(output):
            if name not in files:
                files.append(name)
    return files


def merged(ctx: Context, wt: Path, patches: list) -> bool:
    """Is the base already carrying these patches? Then they reverse-apply, last first
    (in a scratch index, so the worktree is not touched)."""
    index = wt.parent / f".{wt.name}.reverse-index"
    env = {"GIT_INDEX_FILE": str(index)}
    try:
        ctx.runner.git(wt, "read-tree", "HEAD", env=env)
        return all(ctx.runner.git(wt, "apply", "--cached", "-R", str(p.path), env=env,
                                  log=ctx.log("apply.log"), check=False).returncode == 0
                   for p in reversed(patches))
    finally:
        index.unlink(missing_ok=True)


def run(ctx: Context, repo: Path, name: str, base: str, series: Series) -> Applied:
    # no O= directory of this series yet: each arch's first one is seeded from the base's
    age = worktree.fresh(ctx, name, list((ctx.cache / "build" / name).glob("*/out")))
    wt, keep = worktree.kept(ctx, repo, name, base, age=age)
    result = Applied(wt, base)
    log = ctx.log("apply.log")
    env = {"GIT_COMMITTER_DATE": "2000-01-01T00:00:00Z"}
    for i, patch in enumerate(series.patches):
        start = time.monotonic()
        done = ctx.runner.git(
            wt, "-c", "core.hooksPath=/dev/null", "am", "-3", "--keep-cr", str(patch.path),
            env=env, log=log, check=False,
        )
        seconds = time.monotonic() - start
        if done.returncode == 0:
            head = ctx.runner.git(wt, "rev-parse", "HEAD").output.strip()
            result.commits.append(head)
            result.cases.append(Case("apply", patch.subject, Status.PASS, seconds, f"commit {head[:12]}",
                                     patch=patch.index, patches=patch.total))
            continue
        files = conflict_files(done.output)
        ctx.runner.git(wt, "am", "--abort", check=False)
        where = f" in {', '.join(files)}" if files else ""
        result.ok = False
        if merged(ctx, wt, series.patches[i:]):
            result.already = True
            result.message = (
                f"patch {patch.label} '{patch.subject}' is already in base {base[:12]}: it does not "
                "apply, but its reverse does. The series (or this patch) has been merged there; test "
                "it on the base it was posted against (base-commit: in the cover letter), or drop "
                "the merged patches"
            )
        else:
            result.message = (
                f"patch {patch.label} '{patch.subject}' does not apply to base {base[:12]}: "
                f"conflict{where}"
            )
        result.cases.append(Case("apply", patch.subject, Status.FAIL, seconds, result.message, done.output[-3000:],
                                 patch=patch.index, patches=patch.total))
        for later in series.patches[i + 1:]:
            result.cases.append(
                Case("apply", later.subject, Status.SKIP, 0, f"not tried: patch {patch.label} failed to apply",
                     patch=later.index, patches=later.total)
            )
        break
    if result.ok:
        restored = worktree.restore_mtimes(ctx, wt, keep)
        if keep:
            ctx.runner.note(f"# kept the mtime of {restored}/{len(keep)} files whose content did not change")
    return result


def stage(work: Work) -> Outcome:
    """The series' patches on the base, in the series' kept worktree."""
    src = work.need("source")
    applied = run(work.ctx, Path(src.artifacts["repo"]), work.series_dirs, src.artifacts["commit"],
                  Series(work.spec.title, work.patches))
    work.provenance["tip"] = applied.commits[-1] if applied.commits else ""
    return Outcome(Status.PASS if applied.ok else Status.FAIL,
                   applied.message or f"{len(applied.commits)} patches applied", applied.cases,
                   artifacts={"worktree": str(applied.worktree), "commits": applied.commits},
                   fault="input" if applied.already else "")  # merged already: the wrong base, not the series


def checkout(work: Work) -> Outcome:
    """The base's own kept worktree, for a base lane: reset under its own lock (every arch's base
    lane checks it out; each arch's build directories have locks of their own)."""
    src = work.need("source")
    commit, ctx = src.artifacts["commit"], work.ctx
    say = lambda text: ctx.progress.say("checkout", work.lane.name, text)  # noqa: E731
    with locks.hold(ctx.cache, locks.dirs(base_tree(commit)), say, ctx.run_dir.name):
        tree = worktree.kept(ctx, Path(src.artifacts["repo"]), base_tree(commit), commit)[0]
    return Outcome(Status.PASS, f"base {commit[:12]} in {tree}", artifacts={"worktree": str(tree)})
