"""Stages 'userspace' and 'initramfs': the lane's test suites built for its kernel, then packed.

A suite is data (configs/suites/<name>.yaml) plus a build script (ci/suites/).
The script runs in the toolchain container with the tree at $SRC (read-only),
the lane's kernel build at $KBUILD, a kept output directory $OUT and the arch's
make variables and suite variables in its environment. Whatever it leaves in
$OUT/rootfs is added to the lane's initramfs. Exit 0 is success; exit 3 means
the build environment cannot build the suite (an ERROR, e.g. a compiler too
old for it); anything else is a FAIL of the tree.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from pipeline.infra.containers import Container, Mount
from pipeline.model import config
from pipeline.model.results import Case, Status
from pipeline.stages import initramfs as cpio
from pipeline.stages import compiler_cache, suites
from pipeline.stages.interface import Outcome, Work

EXIT_ENVIRONMENT = 3


def out_dir(ctx, builds: str, arch: config.Arch, suite: config.Suite) -> Path:
    return ctx.cache / "build" / builds / arch.name / "suites" / suite.name


def build(work: Work, image: str, kbuild: Path, suite: config.Suite) -> tuple[Case, Path | None]:
    """(its testcase, its rootfs or None)."""
    ctx, arch, lane = work.ctx, work.arch, work.lane
    out = out_dir(ctx, work.builds, arch, suite)
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "rootfs", ignore_errors=True)  # the script makes it afresh
    env = {**{k: str(v) for k, v in arch.kernel.make_vars.items()},
           **{k: str(v) for k, v in arch.suites[suite.name].vars.items()},
           "SRC": "/src", "KBUILD": "/kbuild", "OUT": "/out", "JOBS": str(ctx.jobs)}
    cache_mounts, cache_env = compiler_cache.mounts(ctx.cache, work.builds, trusted=lane.is_base)
    env.update(cache_env)
    log = ctx.log(f"{lane.name}/suite-{suite.name}-build.log")
    test = f"build {suite.name}"
    ctx.progress.say("userspace", lane.name, f"building {suite.title}")
    start = time.monotonic()
    exited = ctx.docker.run(Container(image, ["sh", "-eu", "/suite/" + suite.script.name], workdir="/out", env=env,
                                      mounts=[Mount(work.src, "/src"), Mount(suite.script.parent, "/suite"),
                                              Mount(kbuild, "/kbuild", writable=True), Mount(out, "/out", writable=True),
                                              *cache_mounts]),
                            log=log, timeout=suite.build_timeout,
                            on_line=ctx.progress.make_line("userspace", lane.name, [0]))
    seconds = time.monotonic() - start
    shutil.copy(log, lane.dir / f"suite-{suite.name}-build.log")
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
    if exited.timed_out:
        return Case("userspace", test, Status.ERROR, seconds,
                    f"the build did not finish within {suite.build_timeout} s", tail), None
    if exited.exit_code == EXIT_ENVIRONMENT:
        return Case("userspace", test, Status.ERROR, seconds, "the toolchain cannot build this suite (build "
                    "script exit 3): infrastructure, not the series", tail), None
    if exited.exit_code != 0:
        return Case("userspace", test, Status.FAIL, seconds, f"the build script exited {exited.exit_code}", tail), None
    if not (out / "rootfs").is_dir():
        return Case("userspace", test, Status.ERROR, seconds,
                    "the build script succeeded but left no $OUT/rootfs", tail), None
    files = sum(1 for p in (out / "rootfs").rglob("*") if p.is_file())
    return Case("userspace", test, Status.PASS, seconds,
                f"built in {seconds:.0f} s, {files} file(s) for the initramfs"), out / "rootfs"


def stage(work: Work) -> Outcome:
    runs = suites.selected(work.spec, work.arch)[0]
    if not runs:
        return Outcome(Status.SKIP, "the lane runs no test suite")
    image = work.image(work.arch.toolchain)
    kbuild = Path(work.need("build").artifacts["out_dir"])
    cases, artifacts, facts = [], {}, {}
    for suite in runs:
        case, rootfs = build(work, image, kbuild, suite)
        cases.append(case)
        facts[f"{suite.name}_build_seconds"] = round(case.seconds, 1)
        if rootfs is not None:
            artifacts[suite.name] = str(rootfs)
    problems = [c.message for c in cases if c.status != Status.PASS]
    built = f"{len(artifacts)} of {len(runs)} suite(s) built"
    return Outcome(Status.worst([Status.PASS, *(c.status for c in cases)]), "; ".join([built, *problems]), cases,
                   facts, artifacts)


def key(work: Work) -> str:
    runs = suites.selected(work.spec, work.arch)[0]
    return repr([(s.path.read_bytes(), s.script.read_bytes(), work.arch.suites[s.name]) for s in runs])


def built_suites(work: Work) -> list[config.Suite]:
    """The lane's suites that were built, in order."""
    made = work.need("userspace").artifacts
    return [s for s in suites.selected(work.spec, work.arch)[0] if s.name in made]


def initramfs(work: Work) -> Outcome:
    """/init, the built suites' files and the guest's run list, as one newc cpio."""
    image = work.image(work.arch.toolchain)
    made = work.need("userspace").artifacts
    chosen = built_suites(work)
    path = cpio.build(work.ctx, image, work.src, work.arch, work.lane.dir, [Path(made[s.name]) for s in chosen],
                      suites.manifest(chosen, work.arch))
    size = path.stat().st_size
    return Outcome(Status.PASS, f"initramfs {size / 1e6:.1f} MB", facts={"initramfs_bytes": size},
                   artifacts={"initramfs": str(path)})


def initramfs_key(work: Work) -> str:
    return repr((cpio.INIT_SOURCE.read_bytes(), suites.manifest(built_suites(work), work.arch)))
