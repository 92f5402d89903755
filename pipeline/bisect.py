"""Per-patch builds: the tree after every patch of the series must build, on every arch.

Each intermediate state is built incrementally in the series' own O=
directory (git checkout touches only the files a step changes, so make
rebuilds only those); the tip is then the lane's normal build. A step's
result is cached by (tree, arch, fragments, toolchain image), so a rerun of
the same series does no step build at all. Warnings are compared step to step
as sets (pipeline/diagnostics.py): a warning that appears at patch k is that
patch's.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import apply, build, config
from .context import Context
from .results import Case, Status


@dataclass
class Step:
    label: str  # "k/n"
    subject: str
    status: Status
    seconds: float
    message: str
    detail: str = ""
    warnings: list[str] = field(default_factory=list)  # the full set after this step
    reused: bool = False


def step_key(ctx: Context, repo: Path, commit: str, arch: config.Arch, spec: config.Series, image: str) -> str:
    tree = ctx.runner.git(repo, "rev-parse", f"{commit}^{{tree}}").output.strip()
    return build.inputs_key(tree, arch, spec, image)


def _cache(ctx: Context, key: str) -> Path:
    return ctx.cache / "steps" / f"{key}.json"


def intermediate(ctx: Context, worktree: Path, arch: config.Arch, spec: config.Series, lane: Path,
                 patches: list, commits: list[str], dirs: str, image: str,
                 keep: dict | None = None) -> list[Step]:
    """Build every state but the tip (patches 1..n-1), each on top of the previous, in order.

    The worktree is shared by every arch's lane: keep receives the mtimes the tip's files
    had before the steps, to be restored once this arch's tip has built (apply.restore_mtimes),
    so the other arches' build directories do not see the steps' checkouts as changes."""
    steps: list[Step] = []
    moved = False
    for patch, commit in zip(patches[:-1], commits[:-1]):
        key = step_key(ctx, worktree, commit, arch, spec, image)
        cached = _cache(ctx, key)
        if cached.exists():
            data = json.loads(cached.read_text())
            steps.append(Step(**{**data, "status": Status(data["status"]), "reused": True}))
            continue
        ctx.progress.say("build", lane.name, f"patch {patch.label}: checking out {commit[:12]}")
        if not moved and keep is not None:
            keep.update(apply.snapshot(ctx, worktree, commits[-1], f"{commits[0]}^"))
        ctx.runner.git(worktree, "checkout", "-q", "--detach", commit)
        moved = True
        b = build.run(ctx, worktree, arch, spec, lane, dirs=dirs, step=f"patch {patch.label}")
        step = Step(patch.label, patch.subject, b.case.status, round(b.case.seconds, 1), b.case.message,
                    b.case.detail, b.facts.get("warnings", []))
        if b.case.status in (Status.PASS, Status.FAIL):  # an infrastructure error is not remembered
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.write_text(json.dumps({**asdict(step), "status": step.status.value, "reused": False}))
        steps.append(step)
    if moved:
        ctx.runner.git(worktree, "checkout", "-q", "--detach", commits[-1])
    return steps


def cases(arch: str, steps: list[Step], base_warnings: list[str] | None) -> list[Case]:
    """Two testcases per step: it builds; it adds no warning (against the step before, or the base)."""
    out: list[Case] = []
    before = set(base_warnings) if base_warnings is not None else None
    for step in steps:
        name = f"{arch}: patch {step.label}"
        how = " (result reused: same tree, config and toolchain)" if step.reused else ""
        if step.status == Status.FAIL:
            out.append(Case("bisect", f"{name}: build", Status.FAIL, step.seconds,
                            f"patch {step.label} breaks the build on {arch}: {step.message}{how}", step.detail, arch))
        else:
            out.append(Case("bisect", f"{name}: build", step.status, step.seconds, step.message + how,
                            step.detail, arch))
        now = set(step.warnings)
        if step.status != Status.PASS:
            out.append(Case("bisect", f"{name}: warnings", Status.SKIP, 0, "the step did not build", arch=arch))
        elif before is None:
            out.append(Case("bisect", f"{name}: warnings", Status.SKIP, 0,
                            "no base build in this run to compare with (the series runs no suite)", arch=arch))
        else:
            new = sorted(now - before)
            if new:
                out.append(Case("bisect", f"{name}: warnings", Status.FAIL, 0,
                                f"patch {step.label} adds {len(new)} warning(s) on {arch}: {new[0]}",
                                "\n".join(new), arch))
            else:
                gone = len(before - now)
                out.append(Case("bisect", f"{name}: warnings", Status.PASS, 0,
                                "no new warning" + (f" ({gone} fixed)" if gone else ""), arch=arch))
        if step.status == Status.PASS:
            before = now
    return out
