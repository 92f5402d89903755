"""Stage 'build': kernel config from data, then make, in the toolchain container.

The config is generated in its own kept directory from the arch's base target
plus fragments (scripts/kconfig/merge_config.sh), checked option by option,
and copied into the kept O= directory only when it changed, so make rebuilds
only what a patch touched. Compiles go through ccache.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.model import config
from pipeline.stages import diagnostics
from pipeline.infra.containers import PIDS, Container, Mount
from pipeline.stages import compiler_cache, genconfig
from pipeline.infra import prune
from pipeline.infra.context import Context
from pipeline.infra.errors import InfraError, UserError
from pipeline.model.lane import base_builds
from pipeline.model.results import Case, Status
from pipeline.stages.interface import Outcome, Work

ERROR_LINE = re.compile(r"(error:|Error \d+|undefined reference|No rule to make target)", re.I)
DERIVED = "derived-"  # the name of a fragment the derive stage wrote (stages/derive.py)
FRAGMENT_LINE = re.compile(r"^(?:(CONFIG_\w+)=(.*)|# (CONFIG_\w+) is not set)\s*$")


@dataclass
class Built:
    ok: bool
    case: Case
    kernel: Path | None = None  # the kernel image, copied into the lane's directory
    out_dir: Path | None = None
    facts: dict = field(default_factory=dict)


def parse_config(text: str) -> dict[str, str]:
    """CONFIG_X -> value ('n' for '# CONFIG_X is not set')."""
    values = {}
    for line in text.splitlines():
        m = FRAGMENT_LINE.match(line.strip())
        if m:
            if m.group(1):
                values[m.group(1)] = m.group(2).strip()
            else:
                values[m.group(3)] = "n"
    return values


def missing_options(fragments: dict[str, str], final: dict[str, str]) -> list[str]:
    """Options a fragment asks for that the final .config does not have."""
    missing = []
    for name, want in fragments.items():
        got = final.get(name, "n")
        if want != got:
            missing.append(f"{name}={want} (got {got if got != 'n' else 'not set'})")
    return missing


def make_argv(arch: config.Arch, out: str, *targets: str, jobs: int | None = None, ccache: bool = False) -> list[str]:
    argv = ["make", f"O={out}"]
    argv += [f"{k}={v}" for k, v in arch.kernel.make_vars.items()]
    if ccache:
        argv.append(f"CC=ccache {arch.kernel.make_vars.get('CROSS_COMPILE', '')}gcc")
    if jobs:
        argv.append(f"-j{jobs}")
    return argv + list(targets)


def lane_dirs(ctx: Context, series_name: str, arch: config.Arch) -> tuple[Path, Path]:
    root = ctx.cache / "build" / series_name / arch.name
    return root / "config", root / "out"


def fragments_for(arch: config.Arch, series: config.SeriesConfig) -> list[Path]:
    from pipeline.stages.suites import fragments as suite_fragments

    names = dict.fromkeys((*arch.kernel.fragments, *series.fragments, *suite_fragments(series, arch)))
    paths = [config.fragment_path(n) for n in names]
    return sorted(paths, key=lambda p: p.name.startswith(DERIVED))  # a derived one last: it adds to the rest


def config_key(arch: config.Arch, series: config.SeriesConfig, image: str) -> str:
    """What decides a lane's .config on any tree of a base (arch data, fragments, toolchain
    image), not the tree: the base's kept build directories are named by it (model/lane.py)."""
    data = repr((image, arch.name, arch.kernel.config_target, arch.kernel.image_target,
                 sorted(arch.kernel.make_vars.items()),
                 [(p.name, p.read_bytes()) for p in fragments_for(arch, series)]))
    return hashlib.sha256(data.encode()).hexdigest()[:20]


def inputs_key(tree: str, arch: config.Arch, series: config.SeriesConfig, image: str) -> str:
    """What decides a build's result besides the tree: arch data, fragments, toolchain image."""
    data = repr((tree, image, arch.name, arch.kernel.config_target, arch.kernel.image_target,
                 sorted(arch.kernel.make_vars.items()),
                 [(p.name, p.read_bytes()) for p in fragments_for(arch, series)]))
    return hashlib.sha256(data.encode()).hexdigest()[:20]


CUT_RECORD = re.compile(r"^(\S+\.cmd):\d+: \*\*\* ", re.M)


def unreadable_records(out_dir: Path, log: Path) -> list[Path]:
    """The .cmd records of out_dir make stopped on as unreadable (never the series' files: /src)."""
    found = []
    for name in dict.fromkeys(CUT_RECORD.findall(log.read_text(errors="replace"))):
        path = out_dir / name.removeprefix("/out/")
        if not name.startswith("/src/") and path.is_file():
            found.append(path)
    return found


def scrub(ctx: Context, out_dir: Path, since: float) -> int:
    """After make was killed (timeout, memory limit, interrupt, its kseries run killed): remove the
    objects and the kbuild .cmd/.d records it wrote, any of which may be half-written yet newer than
    its sources (a cut .cmd file stops the next make with a syntax error, which would read as the
    series' fault), so the next make rebuilds them (from ccache, mostly) instead of trusting them."""
    removed = 0
    for path in out_dir.rglob("*"):
        if path.suffix in (".o", ".a", ".ko", ".cmd", ".d") or path.name in ("vmlinux", "vmlinux.o"):
            try:
                if path.is_file() and path.stat().st_mtime >= since - 1:
                    path.unlink()
                    removed += 1
            except OSError:
                pass
    ctx.runner.note(f"# make was killed: removed {removed} file(s) it wrote in {out_dir}, none is trusted")
    return removed


def configure(ctx: Context, image: str, src: Path, arch: config.Arch, series: config.SeriesConfig, lane: Path,
              dirs: str = "") -> Path:
    """Generate the lane's .config in its kept config dir and check every fragment option."""
    cfg_dir, _ = lane_dirs(ctx, dirs or series.name, arch)
    frag_dir = lane / "fragments"
    shutil.rmtree(frag_dir, ignore_errors=True)
    frag_dir.mkdir(parents=True)
    frags = fragments_for(arch, series)
    names, wanted = stage_fragments(frags, frag_dir), {}
    for frag in frags:
        if not frag.name.startswith(DERIVED):  # derived options are best effort: the derive stage checks them
            wanted.update(parse_config(frag.read_text()))
    tree = ctx.runner.git(src, "rev-parse", "HEAD^{tree}").output.strip()
    key = inputs_key(tree, arch, series, image)
    stamp = cfg_dir / ".kseries-config-key"
    if stamp.exists() and stamp.read_text() == key and (cfg_dir / ".config").exists():
        ctx.progress.say("build", lane.name, "config unchanged (same tree, fragments and toolchain)")
        return cfg_dir / ".config"
    stamp.unlink(missing_ok=True)
    final = genconfig.generate(ctx, image, src, arch, frag_dir, names, cfg_dir,
                               ctx.log(f"{lane.name}/config.log"))
    missing = missing_options(wanted, final)
    if missing:
        raise UserError(
            f"The {arch.name} kernel config does not have what its fragments ask for: "
            f"{'; '.join(missing)}. Fragments: {', '.join(str(f) for f in fragments_for(arch, series))}. "
            "An option is usually dropped because a dependency is missing: add the dependency "
            "to the fragment, or remove the option."
        )
    stamp.write_text(key)
    return cfg_dir / ".config"


def stage_fragments(fragments: list[Path], frag_dir: Path) -> list[str]:
    """Copy the fragments into frag_dir, numbered in their order; their paths as /frag/ sees them."""
    for i, frag in enumerate(fragments):
        shutil.copy(frag, frag_dir / f"{i:02d}-{frag.name}")
    return [f"/frag/{i:02d}-{frag.name}" for i, frag in enumerate(fragments)]


FORK_FAILED = re.compile(r"fork: (retry: )?Resource temporarily unavailable|Cannot fork|vfork: Resource")


def killed(outcome, arch: config.Arch, log: Path) -> tuple[Status, str] | None:
    """A build the container's limits stopped: (status, message), or None. Running out of memory
    or time can be the machine's doing (ERROR); filling the disk or the process table is what
    the series' build did (FAIL): the limits are far above what a kernel build needs."""
    where = f"configs/arches/{arch.name}.yaml (kernel: build_memory, build_timeout, build_disk)"
    if (outcome.exit_code or outcome.timed_out) and FORK_FAILED.search(log.read_text(errors="replace")):
        return Status.FAIL, (f"the build hit the container's limit of {PIDS} processes (fork failed) and "
                             f"{'never finished' if outcome.timed_out else 'failed'}: the series' build "
                             "forks without end")
    if outcome.timed_out:
        return Status.ERROR, (f"make did not finish within build_timeout ({arch.kernel.build_timeout} s): "
                              "a patched Makefile or Kconfig may loop, or the machine is slow; nothing is "
                              f"blamed. The limits are in {where}")
    if outcome.disk_full:
        return Status.FAIL, (f"the build wrote more than build_disk ({arch.kernel.build_disk}) into its "
                             f"output directory and was stopped: the series' build fills the disk. Limits: {where}")
    if outcome.oom or outcome.exit_code in (137, -9):
        return Status.ERROR, (f"make was killed by the out-of-memory killer at build_memory "
                              f"({arch.kernel.build_memory}): infrastructure, not the series; raise it in {where}")
    return None


def run(ctx: Context, src: Path, arch: config.Arch, series: config.SeriesConfig, lane: Path, dirs: str = "",
        step: str = "", trusted: bool = False, base: str = "") -> Built:
    """dirs names the kept config and O= directories (default: the series' name); step names an
    intermediate state of the series ("patch 1/3"), built into the same directories. trusted: the
    base's code, whose objects may go to the shared compiler cache (stages/compiler_cache.py).
    base: the base commit; a new O= directory starts from a copy of its finished build of the
    same config (a series' lane) or of the nearest config (stages/seed.py)."""
    image = ctx.image(arch.toolchain)
    start = time.monotonic()
    ctx.progress.say("build", lane.name, "configuring")
    new_config = configure(ctx, image, src, arch, series, lane, dirs)
    config_seconds = time.monotonic() - start
    _, out_dir = lane_dirs(ctx, dirs or series.name, arch)
    if base and not out_dir.exists():
        from pipeline.stages import seed

        if trusted or not seed.seed(ctx, src, arch, out_dir, base_builds(base, config_key(arch, series, image)),
                                    base, lane.name):
            seed.nearest(ctx, src, arch, out_dir, base, new_config, lane.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    old = out_dir / ".config"
    if not old.exists() or old.read_bytes() != new_config.read_bytes():
        shutil.copy(new_config, old)
    cache_mounts, cache_env = compiler_cache.mounts(ctx.cache, dirs or series.name, trusted)
    tag = f"-{step.replace(' ', '-').replace('/', 'of')}" if step else ""  # "-patch-1of3"
    log_name = f"build{tag}.log"
    log = ctx.log(f"{lane.name}/{log_name}")
    log.unlink(missing_ok=True)
    counter = [0]
    ctx.progress.say("build", lane.name, f"{step + ': ' if step else ''}make -j{ctx.jobs} {arch.kernel.image_target}")
    began = time.time()
    limits = arch.kernel
    for attempt in (1, 2):
        try:
            outcome = ctx.docker.run(
                Container(image, make_argv(arch, "/out", arch.kernel.image_target, jobs=ctx.jobs, ccache=True),
                          workdir="/src", memory=limits.build_memory, disk=config.size_bytes(limits.build_disk),
                          env={**cache_env, "KBUILD_BUILD_TIMESTAMP": "kseries", "KBUILD_BUILD_USER": "kseries",
                               "KBUILD_BUILD_HOST": "kseries"},
                          mounts=[Mount(src, "/src"), Mount(out_dir, "/out", writable=True), *cache_mounts]),
                log=log, timeout=limits.build_timeout, on_line=ctx.progress.make_line("build", lane.name, counter))
        except BaseException:  # interrupted: make was killed mid-write
            scrub(ctx, out_dir, began)
            raise
        cut = unreadable_records(out_dir, log) if outcome.exit_code and attempt == 1 else []
        if not cut:
            break
        for record in cut:  # a kbuild record an earlier, killed make left half-written: not the series'
            record.unlink(missing_ok=True)
        ctx.runner.note(f"# make could not read {len(cut)} kbuild record(s) a killed make left cut short "
                        f"({', '.join(str(r.relative_to(out_dir)) for r in cut[:3])}): removed, make runs again")
    if outcome.timed_out or outcome.oom or outcome.disk_full or outcome.exit_code in (137, -9):
        scrub(ctx, out_dir, began)
    seconds = time.monotonic() - start
    warnings = diagnostics.warning_set(diagnostics.update(out_dir, log.read_text(errors="replace")))
    facts = {"config_seconds": round(config_seconds, 1), "make_seconds": round(outcome.seconds, 1),
             "kbuild_steps": counter[0], "jobs": ctx.jobs, "image": image, "warnings": sorted(warnings)}
    name = step or arch.kernel.image_target
    shutil.copy(old, lane / f"config{tag}")
    shutil.copy(log, lane / log_name)
    stopped = killed(outcome, arch, log)
    if stopped:
        status, message = stopped
        text = log.read_text(errors="replace").splitlines()
        return Built(False, Case("build", name, status, seconds, message, "\n".join(text[-40:]), arch=arch.name),
                     facts=facts)
    if outcome.exit_code != 0:
        text = log.read_text(errors="replace").splitlines()
        errors = [line for line in text if ERROR_LINE.search(line)][:40]
        first = next((d for d in diagnostics.parse("\n".join(text)) if d.kind == "error"), None)
        case = Case("build", name, Status.FAIL, seconds,
                    f"make exited {outcome.exit_code}" + (f": {first}" if first else ""),
                    "\n".join(errors or text[-40:]), arch=arch.name)
        return Built(False, case, facts=facts)
    built = out_dir / arch.kernel.image_path
    if not built.exists():
        case = Case("build", name, Status.FAIL, seconds, f"make succeeded but {arch.kernel.image_path} is missing",
                    arch=arch.name)
        return Built(False, case, facts=facts)
    msg = built_in(seconds, outcome.seconds, counter[0])
    if step:  # an intermediate state: that it builds is the result; its image is not kept
        return Built(True, Case("build", name, Status.PASS, seconds, msg, arch=arch.name), None, out_dir, facts)
    image_copy = lane / built.name
    shutil.copy(built, image_copy)
    facts["image_bytes"] = image_copy.stat().st_size
    return Built(True, Case("build", name, Status.PASS, seconds, msg, arch=arch.name), image_copy, out_dir, facts)


def built_in(seconds: float, make: float, steps: int) -> str:
    """What make took; the time before it apart when long (a lock another lane or run held while
    it built the base: not this build's cost)."""
    before = seconds - make
    return f"built in {make:.0f} s ({steps} kbuild steps)" + (
        f"; make started after {before:.0f} s (config, O= seeding, lock waits)" if before > 30 else "")


def stage(work: Work) -> Outcome:
    """The lane's kernel: config from data, then make into the kept O= directory."""
    lane = work.lane
    work.image(work.arch.toolchain)
    if lane.is_base:
        prune.touch(work.ctx.cache, work.builds)  # this config's base directories are in use
    built = run(work.ctx, work.src, work.arch, work.spec, lane.dir, dirs=work.builds, trusted=lane.is_base,
                base=work.need("source").artifacts["commit"])
    artifacts = {"out_dir": str(built.out_dir)} if built.out_dir else {}
    if built.kernel is not None:
        artifacts["kernel"] = str(built.kernel)
    return Outcome(built.case.status, built.case.message, [built.case], built.facts, artifacts)


def key(work: Work) -> str:
    tree = work.ctx.runner.git(work.src, "rev-parse", "HEAD^{tree}").output.strip()
    return inputs_key(tree, work.arch, work.spec, work.image(work.arch.toolchain))
