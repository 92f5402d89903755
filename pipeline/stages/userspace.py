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

import hashlib
import os
import shlex
import shutil
import time
from pathlib import Path

from pipeline.infra import locks
from pipeline.infra.containers import Container, Mount
from pipeline.model import config, testpolicy
from pipeline.model.lane import base_tree
from pipeline.model.results import Case, Status
from pipeline.stages import initramfs as cpio
from pipeline.stages import compiler_cache, elf, suites
from pipeline.stages.interface import Outcome, Work

EXIT_ENVIRONMENT = 3


def out_dir(ctx, builds: str, arch: config.Arch, suite: config.Suite) -> Path:
    return ctx.cache / "build" / builds / arch.name / "suites" / suite.name


def variables(work: Work, suite: config.Suite) -> dict[str, str]:
    """What a suite's build is told besides the arch's variables: a catalogue suite's targets."""
    if suite.catalogue and suite.kind == "guest":
        from pipeline.stages import tests

        return {"KSELFTEST_TARGETS": " ".join(tests.for_lane(work).targets)}
    return {}


def helpers(suite: config.Suite) -> Path | None:
    """ci/<suite>/: sources a suite's build script compiles besides the tree's (kselftest's timeout.c),
    mounted read-only at /<suite>-helpers and named to the script by <SUITE>_HELPERS."""
    found = suite.script.parent.parent / suite.name
    return found if found.is_dir() else None


def helper_digest(suite: config.Suite) -> list:
    found = helpers(suite)
    return [] if found is None else sorted((str(f.relative_to(found)), f.read_bytes())
                                           for f in found.rglob("*") if f.is_file())


def shared_key(work: Work, image: str, kbuild: Path, suite: config.Suite) -> str:
    """What decides a suite's binaries: the tree's tools/, scripts/, top Makefile and UAPI headers
    (git trees), the UAPI headers the kernel build generated, the kernel's BTF (vmlinux.h comes
    from it) and .config, the toolchain image, the suite's data and script, the arch's variables.
    Not the rest of the kernel: a series whose kernel code changes but not its BTF builds the very
    same test_progs as its base."""
    from pipeline.run.select import arch_dir

    srcarch = arch_dir(work.arch)
    trees = [work.ctx.runner.git(work.src, "rev-parse", f"HEAD:{p}", check=False).output.strip()
             for p in ("tools", "scripts", "Makefile", "include/uapi", f"arch/{srcarch}/include/uapi")]
    generated = sorted((str(f.relative_to(kbuild)), hashlib.sha256(f.read_bytes()).hexdigest())
                       for d in ("include/generated/uapi", f"arch/{srcarch}/include/generated/uapi")
                       for f in (kbuild / d).rglob("*") if f.is_file())
    config_text = (kbuild / ".config").read_bytes() if (kbuild / ".config").is_file() else b""
    parts = [trees, generated, elf.section_digest(kbuild / "vmlinux", ".BTF"), config_text, image,
             suite.path.read_bytes(), suite.script.read_bytes(), work.arch.suites[suite.name],
             sorted(work.arch.kernel.make_vars.items()), sorted(variables(work, suite).items()),
             helper_digest(suite)]
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:20]


def shared(ctx, key: str) -> Path:
    """Where a suite build of the base (trusted code) is kept for any lane with the same key."""
    return ctx.cache / "suites" / key / "rootfs"


def keep_shared(ctx, key: str, rootfs: Path) -> None:
    """A base lane's suite build, kept whole or not at all (never a series': its tree is untrusted)."""
    dest = shared(ctx, key)
    if dest.is_dir():
        return
    tmp = dest.parent / f"tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(rootfs, tmp, symlinks=True)
    try:
        tmp.rename(dest)
    except OSError:  # another run kept the same build meanwhile
        shutil.rmtree(tmp, ignore_errors=True)


def build(work: Work, image: str, kbuild: Path, suite: config.Suite) -> tuple[Case, Path | None]:
    """(its testcase, its rootfs or None). A build the base lane made from the same inputs
    (shared_key) is taken instead of building again."""
    ctx, arch, lane = work.ctx, work.arch, work.lane
    key = shared_key(work, image, kbuild, suite)
    if shared(ctx, key).is_dir():
        ctx.progress.say("userspace", lane.name, f"{suite.title}: the base's build serves (same inputs, {key})")
        return Case("userspace", f"build {suite.name}", Status.PASS, 0.0,
                    f"reused the base's build {key}: same selftests tree, UAPI headers, BTF, config and "
                    "toolchain"), shared(ctx, key)
    if not lane.is_base:
        return _build(work, image, kbuild, suite, work.builds)
    # a base lane builds its suites in the base's own directory on the arch, whatever its config (an
    # incremental make when only the config changed; a cold kselftest build is minutes), one lane at
    # a time, and the lane takes the copy kept by content, which no other config's build rewrites
    where = base_tree(work.need("source").artifacts["commit"])
    say = lambda text: ctx.progress.say("userspace", lane.name, text)  # noqa: E731
    with locks.hold(ctx.cache, locks.dirs(where + "+suites", arch.name), say, ctx.run_dir.name):
        case, rootfs = _build(work, image, kbuild, suite, where)
        if rootfs is not None:
            keep_shared(ctx, key, rootfs)
            rootfs = shared(ctx, key)
    return case, rootfs


def _build(work: Work, image: str, kbuild: Path, suite: config.Suite, where: str) -> tuple[Case, Path | None]:
    ctx, arch, lane = work.ctx, work.arch, work.lane
    out = out_dir(ctx, where, arch, suite)
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "rootfs", ignore_errors=True)  # the script makes it afresh
    env = {**{k: str(v) for k, v in arch.kernel.make_vars.items()},
           **{k: str(v) for k, v in arch.suites[suite.name].vars.items()},
           **variables(work, suite), "SRC": "/src", "KBUILD": "/kbuild", "OUT": "/out", "JOBS": str(ctx.jobs)}
    cache_mounts, cache_env = compiler_cache.mounts(ctx.cache, work.builds, trusted=lane.is_base)
    env.update(cache_env)
    extra, helper_mounts = helpers(suite), []
    if extra is not None:
        env[f"{suite.name.upper()}_HELPERS"] = f"/{suite.name}-helpers"
        helper_mounts = [Mount(extra, f"/{suite.name}-helpers")]
    log = ctx.log(f"{lane.name}/suite-{suite.name}-build.log")
    test = f"build {suite.name}"
    ctx.progress.say("userspace", lane.name, f"building {suite.title}")
    start = time.monotonic()
    exited = ctx.docker.run(Container(image, ["sh", "-eu", "/suite/" + suite.script.name], workdir="/out", env=env,
                                      mounts=[Mount(work.src, "/src"), Mount(suite.script.parent, "/suite"),
                                              Mount(kbuild, "/kbuild", writable=True), Mount(out, "/out", writable=True),
                                              *cache_mounts, *helper_mounts]),
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


def to_build(work: Work) -> list[config.Suite]:
    """The lane's suites /init runs: guest suites, a catalogue one only when tests were chosen for it."""
    out = []
    for suite in suites.selected(work.spec, work.arch)[0]:
        if suite.kind != "guest":
            continue
        if suite.catalogue:
            from pipeline.stages import tests

            if not tests.for_lane(work).kselftest:
                continue
        out.append(suite)
    return out


def stage(work: Work) -> Outcome:
    runs = to_build(work)
    if not runs:
        return Outcome(Status.SKIP, "the lane runs no test suite in the guest")
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
    runs = to_build(work)
    return repr([(s.path.read_bytes(), s.script.read_bytes(), work.arch.suites[s.name], variables(work, s),
                  helper_digest(s)) for s in runs])


def built_suites(work: Work) -> list[config.Suite]:
    """The lane's suites that run, in order: those built for the guest, and the KUnit suites the
    kernel itself runs when tests were chosen for them."""
    made = work.need("userspace").artifacts
    out = []
    for s in suites.selected(work.spec, work.arch)[0]:
        if s.kind == "kunit":
            from pipeline.stages import tests

            if tests.for_lane(work).kunit:
                out.append(s)
        elif s.name in made:
            out.append(s)
    return out


def wrapper(work: Work, chosen: list[config.Suite], where: Path) -> Path:
    """/kseries/<suite>.sh for the catalogue suites /init runs: the suite's command with the tests
    chosen for the lane. A test the tree builds but lists for no runner (mm's mseal_test: built by
    its Makefile, run by no ksft_*.sh) is added to the list run_kselftest.sh reads, in the guest."""
    from pipeline.stages import tests

    policy = testpolicy.load()
    root = where / "wrappers"
    shutil.rmtree(root, ignore_errors=True)
    (root / "kseries").mkdir(parents=True)
    for suite in chosen:
        if not suite.catalogue or suite.kind != "guest":
            continue
        lane = tests.for_lane(work)
        words = [*suite.run, "-o", str(policy.kselftest_timeout)]
        for test in lane.kselftest:
            words += ["-t", test]
        listed = " ".join(shlex.quote(t) for t in lane.kselftest)
        script = (f"# {suite.title}: the tests kseries chose for this lane\n"
                  f"for t in {listed}; do grep -qx \"$t\" /kselftest/kselftest-list.txt 2>/dev/null || "
                  f"echo \"$t\" >> /kselftest/kselftest-list.txt; done\n"
                  f"cd /kselftest\nexec {shlex.join(words)}\n")
        (root / "kseries" / f"{suite.name}.sh").write_text(script)
    return root


def trees(work: Work, chosen: list[config.Suite], where: Path) -> list[Path]:
    """What goes into an initramfs for these suites: their builds, and the wrappers of catalogue suites."""
    made = work.need("userspace").artifacts
    return [*(Path(made[s.name]) for s in chosen if s.kind == "guest"), wrapper(work, chosen, where)]


def initramfs(work: Work) -> Outcome:
    """/init, the built suites' files and the guest's run list, as one newc cpio."""
    image = work.image(work.arch.toolchain)
    chosen = built_suites(work)
    path = cpio.build(work.ctx, image, work.src, work.arch, work.lane.dir, trees(work, chosen, work.lane.dir),
                      suites.manifest(chosen, work.arch))
    size = path.stat().st_size
    return Outcome(Status.PASS, f"initramfs {size / 1e6:.1f} MB", facts={"initramfs_bytes": size},
                   artifacts={"initramfs": str(path)})


def initramfs_key(work: Work) -> str:
    from pipeline.stages import tests

    return repr((cpio.INIT_SOURCE.read_bytes(), suites.manifest(built_suites(work), work.arch),
                 tests.for_lane(work).kselftest, testpolicy.load().kselftest_timeout))
