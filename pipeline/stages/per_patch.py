"""Stages 'steps' and 'per-patch': the tree after every patch of the series must build, on every arch.

The tip is the lane's build, booted and tested first. The intermediate states
are built after that, in a worktree and O= directory of their own, one pair
per arch (<series>+steps-<arch>, the O= seeded from the base's), each
incrementally on top of the one before (git checkout touches only the files a
step changes, so make rebuilds only those). A patch that changes nothing the
arch compiles is not built. A step's result is cached by (tree, arch,
fragments, toolchain image), so a rerun of the same series does no step build
at all. Warnings are compared
step to step as sets (pipeline/diagnostics.py): a warning that appears at
patch k is that patch's.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from pipeline.stages import build, coverage, worktree
from pipeline.model import config
from pipeline.infra.context import Context
from pipeline.model.lane import Role
from pipeline.model.results import Case, Status
from pipeline.stages.interface import Outcome, Work


@dataclass
class Step:
    index: int  # k of k/n
    total: int
    subject: str
    status: Status
    seconds: float
    message: str
    detail: str = ""
    warnings: list[str] = field(default_factory=list)  # the full set after this step
    reused: bool = False
    skipped: bool = False  # not built: the patch changes nothing this arch compiles
    kernel: str = ""  # the state's kernel image, kept in the step cache (for bisecting test regressions)


def step_key(ctx: Context, repo: Path, commit: str, arch: config.Arch, spec: config.SeriesConfig, image: str) -> str:
    tree = ctx.runner.git(repo, "rev-parse", f"{commit}^{{tree}}").output.strip()
    return build.inputs_key(tree, arch, spec, image)


def _cache(ctx: Context, key: str) -> Path:
    return ctx.cache / "steps" / f"{key}.json"


def _unaffected(patch, arch: config.Arch, inputs: set[str] | None, before: list[Step]) -> Step | None:
    """The step of a patch that changes nothing this arch compiles: the state before's result, unbuilt."""
    from pipeline.run.select import arch_dir

    paths = [f.path for f in patch.files]
    if inputs is None or not paths or not coverage.unaffected(paths, inputs, arch_dir(arch)):
        return None
    prev = before[-1] if before else None
    status = prev.status if prev is not None else Status.PASS
    what = f"as patch {prev.index}/{prev.total}" if prev is not None else "as the base"
    return Step(patch.index, patch.total, patch.subject, status, 0.0,
                f"not built: nothing {arch.name} compiles changed ({', '.join(paths[:3])}); it builds {what}",
                prev.detail if prev is not None else "", list(prev.warnings) if prev is not None else [],
                reused=False, skipped=True, kernel=prev.kernel if prev is not None else "")


def keep_kernel(built, arch: config.Arch, record: Path) -> str:
    """A built step's kernel image, kept beside its record: a test regression at the tip is
    bisected by booting it (stages/bisect.py)."""
    image = built.out_dir / arch.kernel.image_path if built.ok and built.out_dir else None
    if image is None or not image.is_file():
        return ""
    kept = record.with_suffix("." + image.name)
    record.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(image, kept)
    return str(kept)


def _record(path: Path) -> dict | None:
    """A step record, or None when there is none or it cannot be read (half-written: redo the step)."""
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) and "status" in data else None
    except (OSError, ValueError):
        return None


def intermediate(ctx: Context, repo: Path, tree: Callable[[], tuple[Path, dict]], arch: config.Arch,
                 spec: config.SeriesConfig, lane: Path, patches: list, commits: list[str], dirs: str, image: str,
                 inputs: set[str] | None = None, base: str = "") -> list[Step]:
    """Build every state but the tip (patches 1..n-1), each on top of the previous, in order, in the
    steps' own worktree (tree(): made when a state first needs building) and O= directories (dirs).

    inputs: every file this arch's build compiles from (coverage.compiled_inputs of a build of the
    same config); a patch that changes none of them is not built: its state builds as the one before."""
    steps: list[Step] = []
    worktree_: Path | None = None
    for patch, commit in zip(patches[:-1], commits[:-1]):
        same = _unaffected(patch, arch, inputs, steps)
        if same is not None:
            steps.append(same)
            continue
        key = step_key(ctx, repo, commit, arch, spec, image)
        cached = _cache(ctx, key)
        data = _record(cached)
        if data is not None:
            if "label" in data:  # written before steps carried index and total
                index, total = data.pop("label").split("/")
                data.update(index=int(index), total=int(total))
            # the record holds what the tree decided; which patch of which series it is, this run says
            data.update(index=patch.index, total=patch.total, subject=patch.subject)
            if not Path(data.get("kernel") or "/nonexistent").is_file():
                data["kernel"] = ""  # not kept (an older record, or removed): a bisection rebuilds it
            steps.append(Step(**{**data, "status": Status(data["status"]), "reused": True}))
            continue
        keep: dict = {}
        if worktree_ is None:
            worktree_, keep = tree()
        ctx.progress.say("steps", lane.name, f"patch {patch.label}: checking out {commit[:12]}")
        before = ctx.runner.git(worktree_, "rev-parse", "HEAD").output.strip()
        ctx.runner.git(worktree_, "checkout", "-q", "--detach", commit)
        if keep:  # what the kept O= holds already keeps its date
            restored = worktree.restore_mtimes(ctx, worktree_, keep)
            ctx.runner.note(f"# steps worktree: kept the mtime of {restored}/{len(keep)} files whose content "
                            "did not change")
        if base and not build.lane_dirs(ctx, dirs, arch)[1].exists():  # this build seeds the O=
            from pipeline.stages.seed import age_as_base

            aged = age_as_base(ctx, worktree_, base, before, commit)
            ctx.runner.note(f"# {aged} file(s) the checkout gave back the base's content: dated as the base's")
        b = build.run(ctx, worktree_, arch, spec, lane, dirs=dirs, step=f"patch {patch.label}", base=base)
        step = Step(patch.index, patch.total, patch.subject, b.case.status, round(b.case.seconds, 1), b.case.message,
                    b.case.detail, b.facts.get("warnings", []), kernel=keep_kernel(b, arch, cached))
        if b.case.status in (Status.PASS, Status.FAIL):  # an infrastructure error is not remembered
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(".tmp")  # whole or not at all
            tmp.write_text(json.dumps({**asdict(step), "status": step.status.value, "reused": False}))
            tmp.replace(cached)
        steps.append(step)
    return steps


def cases(arch: str, steps: list[Step], base_warnings: list[str] | None) -> list[Case]:
    """Two testcases per step: it builds; it adds no warning (against the step before, or the base)."""
    out: list[Case] = []
    before = set(base_warnings) if base_warnings is not None else None
    broken: tuple[int, str] | None = None  # (the patch that broke the build, its error without positions)
    for step in steps:
        label = f"{step.index}/{step.total}"
        where = {"arch": arch, "patch": step.index, "patches": step.total}
        how = " (result reused: same tree, config and toolchain)" if step.reused else ""
        error = re.sub(r":\d+(?::\d+)?:", ":", step.message.split(" (result reused")[0].split("; it builds as")[0])
        if step.status == Status.FAIL and broken is not None and (step.skipped or broken[1] == error):
            out.append(Case("per-patch", "build", Status.FAIL, step.seconds,
                            f"still broken since patch {broken[0]}/{step.total} on {arch}: {step.message}{how}",
                            step.detail, since=broken[0], **where))
        elif step.status == Status.FAIL:
            broken = (step.index, error)
            out.append(Case("per-patch", "build", Status.FAIL, step.seconds,
                            f"patch {label} breaks the build on {arch}: {step.message}{how}", step.detail, **where))
        else:
            out.append(Case("per-patch", "build", step.status, step.seconds, step.message + how, step.detail,
                            **where))
        now = set(step.warnings)
        if step.status != Status.PASS:
            out.append(Case("per-patch", "warnings", Status.SKIP, 0, "the step did not build", **where))
        elif before is None:
            out.append(Case("per-patch", "warnings", Status.SKIP, 0,
                            "no base build in this run to compare with (the series runs no suite)", **where))
        else:
            new = sorted(now - before)
            if new:
                out.append(Case("per-patch", "warnings", Status.FAIL, 0,
                                f"patch {label} adds {len(new)} warning(s) on {arch}: {new[0]}",
                                "\n".join(new), **where))
            else:
                gone = len(before - now)
                out.append(Case("per-patch", "warnings", Status.PASS, 0,
                                "no new warning" + (f" ({gone} fixed)" if gone else ""), **where))
        if step.status == Status.PASS:
            before, broken = now, None
    return out


STEPS = "+steps"  # the steps' O= directories (<series>+steps/<arch>) and worktrees (<series>+steps-<arch>)


def steps(work: Work) -> Outcome:
    """Build patches 1..n-1 of the series, after the tip's build, boot and tests (the tip is the
    lane's build stage), in a worktree and O= directories of their own: the tip's stay as they are."""
    commits = work.need("apply").artifacts.get("commits", [])
    if len(commits) < 2:
        return Outcome(Status.SKIP, "a single patch: the lane's build is its only build")
    lane = work.lane
    image = work.image(work.arch.toolchain)
    src = work.need("source").artifacts
    repo, base, dirs = Path(src["repo"]), src["commit"], work.builds + STEPS

    def tree() -> tuple[Path, dict]:
        """This arch's steps' kept worktree at the base, and the mtimes to give back (stages/worktree.py).
        One per arch: each O= has the only worktree whose dates it trusts. With no O= of its own left,
        its files are dated as the base's and no mtime is given back."""
        name = f"{dirs}-{work.arch.name}"
        fresh = worktree.fresh(work.ctx, name, [build.lane_dirs(work.ctx, dirs, work.arch)[1]])
        wt, keep = worktree.kept(work.ctx, repo, name, base, age=fresh)
        return wt, ({} if fresh else keep)

    done = intermediate(work.ctx, repo, tree, work.arch, work.spec, lane.dir, work.patches, commits, dirs,
                        image, inputs=_inputs(work), base=base)
    (lane.dir / "steps.json").write_text(json.dumps([{**asdict(s), "status": s.status.value} for s in done]))
    built = sum(1 for s in done if not s.reused and not s.skipped)
    skipped = sum(1 for s in done if s.skipped)
    status = Status.worst([Status.PASS, *(s.status for s in done if s.status != Status.FAIL)])
    return Outcome(status, f"{len(done)} intermediate state(s): {built} built, {len(done) - built - skipped} "
                   f"reused, {skipped} not built (nothing this arch compiles changed)",
                   facts={"built": built, "skipped": skipped,
                          "seconds": round(sum(s.seconds for s in done if not s.reused), 1)},
                   artifacts={"steps": str(lane.dir / "steps.json")})


def _inputs(work: Work) -> set[str] | None:
    """What this arch's build compiles from: the series' own O= (an earlier run) or the base's, when
    built with the same config (the base lane of this run builds first)."""
    base = work.other("build", Role.BASE)
    series_cfg, series_out = build.lane_dirs(work.ctx, work.builds, work.arch)
    series_cfg = series_cfg / ".config"
    candidates = [series_out]
    if base is not None and base.artifacts.get("out_dir"):
        candidates.insert(0, Path(base.artifacts["out_dir"]))
    for out in candidates:
        if (out / ".config").is_file() and series_cfg.is_file() and \
                (out / ".config").read_bytes() != series_cfg.read_bytes():
            continue  # another config compiles other files
        found = coverage.compiled_inputs(out)
        if found:
            return found
    return None


def recorded(work: Work) -> list[Step]:
    """The lane's intermediate steps as its 'steps' stage recorded them (the tip is not among them)."""
    path = work.need("steps").artifacts.get("steps")
    if not path:
        return []
    return [Step(**{**d, "status": Status(d["status"])}) for d in json.loads(Path(path).read_text())]


def stage(work: Work) -> Outcome:
    """One build and one warnings testcase per patch: the intermediate steps, then the tip."""
    commits = work.need("apply").artifacts.get("commits", [])
    done = recorded(work)
    tip = work.need("build")
    if tip.status in (Status.PASS, Status.FAIL) and tip.cases and len(done) < len(work.patches):
        last, case = work.patches[len(done)], tip.cases[0]
        done.append(Step(last.index, last.total, last.subject, case.status, round(case.seconds, 1), case.message,
                         case.detail, tip.facts.get("warnings", [])))
    base = work.other("build", Role.BASE)
    cases_ = cases(work.arch.name, done, base.facts.get("warnings") if base is not None else None)
    status = Status.worst([Status.PASS, *(c.status for c in cases_)])
    bad = [c.message for c in cases_ if c.status == Status.FAIL]
    return Outcome(status, "; ".join(bad) or f"{len(done)} of {len(commits)} patch(es) build", cases_)
