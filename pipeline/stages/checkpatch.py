"""Stage 'checkpatch': the kernel's own scripts/checkpatch.pl on each patch, one testcase each.

The script comes from the base commit (a series cannot change the rules it is
judged by) and runs in the toolchain container, without network, over the
patched tree. What fails a patch is the series' choice (`checkpatch.fail_on`:
error, warning or never); below that level its findings are informative.
"""

from __future__ import annotations

import re
import shlex
import shutil
import time
from pathlib import Path

from pipeline.model import config
from pipeline.infra.containers import Container, Mount
from pipeline.infra.context import Context
from pipeline.infra.errors import InfraError
from pipeline.model.results import Case, Status
from pipeline.stages.interface import Outcome, Work

FINDING = re.compile(r"^(?P<level>ERROR|WARNING|CHECK):(?P<type>[A-Z0-9_]+): (?P<message>.*)$")
WHERE = re.compile(r"^#\d+: FILE: (?P<where>\S+?):?$")
END = re.compile(r"^=== kseries-checkpatch (?P<n>\d+) exit (?P<code>\d+)$")
SCRIPTS = ("scripts/checkpatch.pl", "scripts/spelling.txt", "scripts/const_structs.checkpatch")
RANK = {"CHECK": 0, "WARNING": 1, "ERROR": 2}


def findings(text: str) -> list[tuple[str, str, str, str]]:
    """(level, type, message, file:line) for each finding in checkpatch's default output."""
    found: list[list[str]] = []
    for line in text.splitlines():
        m = FINDING.match(line)
        if m:
            found.append([m.group("level"), m.group("type"), m.group("message"), ""])
            continue
        w = WHERE.match(line)
        if w and found and not found[-1][3]:
            found[-1][3] = w.group("where")
    return [tuple(f) for f in found]


def scripts(ctx: Context, repo: Path, base: str) -> Path:
    """checkpatch.pl and its data files from the base commit, extracted once per base."""
    dest = ctx.cache / "checkpatch" / base[:12]
    if (dest / SCRIPTS[0]).is_file():
        return dest
    tmp = dest.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    present = [p for p in SCRIPTS if ctx.runner.git(repo, "cat-file", "-e", f"{base}:{p}", check=False).returncode == 0]
    if SCRIPTS[0] not in present:
        raise InfraError(f"the base commit {base[:12]} has no {SCRIPTS[0]}: checkpatch cannot run")
    ctx.runner.git(repo, "archive", "--format=tar", "-o", str(tmp / "rules.tar"), base, *present)
    ctx.runner.run(["tar", "-x", "-f", str(tmp / "rules.tar"), "-C", str(tmp)])
    (tmp / "rules.tar").unlink()
    tmp.rename(dest)
    return dest


def judge(patch, text: str, code: int | None, policy: config.Checkpatch) -> Case:
    where = {"patch": patch.index, "patches": patch.total}
    found = findings(text)
    counts = {lvl: sum(1 for f in found if f[0] == lvl) for lvl in RANK}
    summary = ", ".join(f"{counts[lvl]} {lvl.lower()}{'s' if counts[lvl] != 1 else ''}"
                        for lvl in sorted(RANK, key=RANK.get, reverse=True) if counts[lvl]) or "clean"
    listed = "; ".join(f"{lvl}:{typ} {where} {msg}".replace("  ", " ") for lvl, typ, msg, where in found[:5])
    if code is None or (code != 0 and not found):
        return Case("checkpatch", patch.subject, Status.ERROR, 0,
                    "checkpatch.pl did not finish or failed without a finding (see its output)", text[-3000:], **where)
    worst = max((RANK[f[0]] for f in found), default=-1)
    limit = RANK.get(policy.fail_on.upper(), len(RANK))  # "never": above every level
    if worst >= limit:
        return Case("checkpatch", patch.subject, Status.FAIL, 0,
                    f"{summary} (the series fails on {policy.fail_on}): {listed}", text[-6000:], **where)
    return Case("checkpatch", patch.subject, Status.PASS, 0, summary + (f" (informative): {listed}" if found else ""),
                text[-6000:] if found else "", **where)


def run(ctx: Context, repo: Path, base: str, worktree: Path, patches: list, policy: config.Checkpatch) -> list[Case]:
    image = ctx.image("toolchain")
    rules = scripts(ctx, repo, base)
    inbox = ctx.run_dir / "checkpatch"
    shutil.rmtree(inbox, ignore_errors=True)
    inbox.mkdir(parents=True)
    for i, patch in enumerate(patches, 1):
        shutil.copy(patch.path, inbox / f"{i:04d}.patch")
    args = ["--show-types", "--color=never", *(f"--ignore={t}" for t in policy.ignore), *policy.args]
    loop = ("i=0; for p in /patches/*.patch; do i=$((i + 1)); "
            f"perl /rules/scripts/checkpatch.pl {shlex.join(args)} \"$p\"; "
            "echo \"=== kseries-checkpatch $i exit $?\"; done")
    log = ctx.log("checkpatch.log")
    log.unlink(missing_ok=True)  # parsed whole below: only this run's output
    start = time.monotonic()
    ctx.progress.say("checkpatch", "", f"scripts/checkpatch.pl on {len(patches)} patch(es)")
    outcome = ctx.docker.run(Container(image, ["sh", "-c", loop], workdir="/src", memory="1g", mounts=[
        Mount(worktree, "/src"), Mount(rules, "/rules"), Mount(inbox, "/patches")]), log=log, timeout=600)
    if outcome.timed_out:
        raise InfraError("checkpatch.pl did not finish within 600 s")
    per_patch: dict[int, tuple[list[str], int]] = {}
    chunk: list[str] = []
    for line in log.read_text(errors="replace").splitlines():
        m = END.match(line)
        if m:
            per_patch[int(m.group("n"))] = (chunk, int(m.group("code")))
            chunk = []
        else:
            chunk.append(line)
    seconds = (time.monotonic() - start) / max(1, len(patches))
    cases = []
    for i, patch in enumerate(patches, 1):
        lines, code = per_patch.get(i, ([], None))
        case = judge(patch, "\n".join(lines), code, policy)
        case.seconds = round(seconds, 1)
        cases.append(case)
    return cases


def stage(work: Work) -> Outcome:
    src, applied = work.need("source"), work.need("apply")
    commits = applied.artifacts.get("commits", [])
    if not commits:
        return Outcome(Status.SKIP, "no patch applied")
    work.image("toolchain")
    cases = run(work.ctx, Path(src.artifacts["repo"]), src.artifacts["commit"], Path(applied.artifacts["worktree"]),
                work.patches[:len(commits)], work.spec.checkpatch)
    status = Status.worst([Status.PASS, *(c.status for c in cases)])
    bad = [f"{c.name}: {c.message}" for c in cases if c.status != Status.PASS]
    clean = sum(1 for c in cases if c.message == "clean")
    return Outcome(status, "; ".join(bad) or f"{len(cases)} patch(es), {clean} clean", cases)
