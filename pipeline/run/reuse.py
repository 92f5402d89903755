"""Identical inputs, identical results: a lane's results kept under a key of everything that decides them.

A lane's build, boot and test results are decided by its source tree (not its
commit messages; for a series, its base's tree too, which decides what it
changes), the arch data and config fragments (a derived one too), the
toolchain and QEMU images, the suites and their scripts, /init, the code
that reads a console, and the results schema. Each lane that finishes
cleanly keeps them under that key (`<cache>/lanes/<key>/`, with its kernel,
config and logs, so the run directory that takes them is complete); a later
lane with the same key takes them over instead of building, booting and
testing again:

- a base lane takes everything: another series or a new revision on the
  same base;
- a series lane takes its tip's build, boot and suite results; its per-patch
  steps and checks still run (each step's record is cached by its own tree,
  and the labels and subjects are the series' own): a v2 whose code is
  identical to v1 (a reworded changelog), or a plain rerun.

`invoke ci --rerun-tests` takes nothing over for the series' lanes: they build,
boot and test afresh (a flakiness check); what they find is kept for the next
run. The base's results, the reference, are still taken.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

from pipeline.model import config
from pipeline.model.lane import Role
from pipeline.model.results import SCHEMA, StageResult, Status
from pipeline.stages import build, suites, tests
from pipeline.stages.initramfs import INIT_SOURCE
from pipeline.stages.interface import Outcome, Work

# the code that turns a console into results: when it changes, cached results may read differently
INTERPRETERS = ("suites.py", "parsers.py", "check.py", "boot.py", "userspace.py")
TIP = ("build", "compiled", "userspace", "initramfs", "boot", "check", "boot-retry", "suite")  # a series lane's
FILES = ("console*.log", "config", "build.log", "suite-*-build.log")  # kept with the results, with the kernel


def key(spec: config.SeriesConfig, arch: config.Arch, tree: str, images: tuple[str, ...], chosen: str = "") -> str:
    """chosen: the tests the lane runs of those chosen from the tree (stages/tests.py for_lane)."""
    runs, skips = suites.selected(spec, arch)
    here = Path(suites.__file__).parent
    parts = [
        SCHEMA, tree, images, repr(config.identity(arch)),
        [(p.name, p.read_bytes()) for p in build.fragments_for(arch, spec)],
        [(s.path.read_bytes(), s.script.read_bytes() if s.build else b"") for s in runs], chosen,
        sorted(s.name for s, _ in skips), INIT_SOURCE.read_bytes(),
        [(name, (here / name).read_bytes()) for name in INTERPRETERS],
    ]
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:20]


def cache_path(cache: Path, cache_key: str) -> Path:
    return cache / "lanes" / cache_key / "results.json"


def load(cache: Path, cache_key: str) -> tuple[str, list[StageResult]] | None:
    """(the run that kept them, its results), or None when absent or unreadable."""
    path = cache_path(cache, cache_key)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        return data["run_id"], [StageResult.from_dict(s) for s in data["stages"]]
    except (ValueError, KeyError, TypeError):
        return None  # cut short, or another version's layout: run the lane again


def kept(role: Role, stages: list[StageResult]) -> list[StageResult]:
    """What of a finished lane is kept: all of a base lane; of a series lane, its tip's (TIP)."""
    return stages if role == Role.BASE else [s for s in stages if s.stage in TIP]


def files(lane_dir: Path, image: str) -> list[Path]:
    """The lane's kernel, config and logs, as a reader of its run directory expects them."""
    found = [p for pattern in FILES for p in sorted(lane_dir.glob(pattern)) if p.is_file()]
    return found + ([lane_dir / image] if (lane_dir / image).is_file() else [])


def save(cache: Path, cache_key: str, stages: list[StageResult], run_id: str, kept_files: tuple = ()) -> bool:
    """Only complete, infrastructure-clean lanes are kept (a series lane: only one that booted)."""
    if not stages or any(s.status.broken or s.fault == "interrupted" for s in stages):
        return False
    if any(s.stage == "boot" and s.blocked for s in stages) and stages[0].role == Role.SERIES:
        return False
    path = cache_path(cache, cache_key)
    path.parent.mkdir(parents=True, exist_ok=True)
    for file in kept_files:
        shutil.copy(file, path.parent / file.name)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"run_id": run_id, "stages": [dataclasses.asdict(s) for s in stages]},
                              indent=1, default=str))
    tmp.replace(path)
    return True


def trees(work: Work) -> str:
    """The tree the lane builds: the base commit's, or "<base tree>..<tip tree>" for the series."""
    source = work.need("source").artifacts
    tree = lambda commit: work.ctx.runner.git(Path(source["repo"]), "rev-parse",  # noqa: E731
                                              f"{commit}^{{tree}}").output.strip()
    base = tree(source["commit"])
    return base if work.lane.is_base else f"{base}..{tree(work.need('apply').artifacts['commits'][-1])}"


def stage(work: Work) -> Outcome:
    """Look the lane up in the cache: found, its results stand for the lane's later stages."""
    lane = work.lane
    images = (work.image(work.arch.toolchain), work.image("qemu"))
    tree = trees(work)
    cache_key = key(work.spec, work.arch, tree, images, repr(tests.for_lane(work)))
    facts, artifacts = {"reused": False, "tree": tree}, {"key": cache_key}
    whose = "the base" if lane.is_base else "the series' tip"
    if work.spec.rerun_tests and not lane.is_base:
        return Outcome(Status.PASS, f"--rerun-tests: {whose} is built, booted and tested afresh ({cache_key})",
                       facts=facts, artifacts=artifacts)
    found = load(work.ctx.cache, cache_key)
    if found is None:
        why = "no cached results" if not cache_path(work.ctx.cache, cache_key).exists() else \
            "the cached results are unreadable (cut short, or another version's), so not trusted"
        return Outcome(Status.PASS, f"{why} for {whose} ({cache_key}): "
                       + ("building and testing the base" if lane.is_base else "booting and testing the tip"),
                       facts=facts, artifacts=artifacts)
    run_id, cached = found
    source = f"lane cache {cache_key}, run {run_id}"
    taken = [dataclasses.replace(r, role=lane.role, reused=source)
             for r in kept(lane.role, cached) if r.stage != "reuse"]
    for file in cache_path(work.ctx.cache, cache_key).parent.iterdir():
        if file.name != "results.json":
            shutil.copy(file, lane.dir / file.name)
    facts.update(reused=True, run=run_id)
    if lane.is_base:
        message = f"reusing the base results cached under {cache_key} (run {run_id}): no base build, no base boot"
    else:
        message = (f"the tip's tree {tree.split('..')[1][:12]} was built, booted and tested on the same base with "
                   f"the same config, images and suites in run {run_id}: reusing those results ({cache_key}); "
                   "--rerun-tests runs them again")
    return Outcome(Status.PASS, message, facts=facts, artifacts=artifacts, adopt=taken)
