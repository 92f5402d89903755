"""Runs the stages in order, times each, persists each result as it finishes.

source -> apply -> per arch lane: build -> boot -> check -> report.
A stage whose dependency failed is SKIP with the reason; an infrastructure
error in one lane is that lane's ERROR and the other lanes still run.
"""

from __future__ import annotations

import fcntl
import time
from pathlib import Path

from . import apply, boot, build, check, config, initramfs, patches, report, source
from .context import Context, cache_root
from .errors import EXIT_BLAMED, EXIT_INFRA, EXIT_OK, EXIT_USER, KseriesError
from .progress import Progress
from .results import Case, RunRecord, StageRecord, Status
from .runner import Runner


def plan(series_name: str, arch_names: list[str] | None) -> tuple[config.Series, list[config.Arch]]:
    """Validate the input before any work: unknown series/arch are user errors."""
    spec = config.load_series(series_name)
    arches: list[config.Arch] = []
    for name in arch_names or list(spec.arches):
        arch = config.resolve_arch(name)
        if arch.name not in [a.name for a in arches]:
            arches.append(arch)
    for arch in arches:
        build.fragments_for(arch, spec)
    return spec, arches


class Pipeline:
    def __init__(self, spec: config.Series, arches: list[config.Arch], results: Path, progress: Progress | None = None):
        self.spec = spec
        self.arches = arches
        run_id = time.strftime("%Y%m%d-%H%M%S") + f"-{spec.name}"
        self.run_dir = results / run_id
        self.run_dir.mkdir(parents=True, exist_ok=False)
        self.ctx = Context(self.run_dir, cache_root(), Runner(self.run_dir / "commands.log"), progress or Progress())
        self.record = RunRecord(run_id, spec.name, spec.title, [a.name for a in arches],
                                started=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        self.start = time.monotonic()

    def persist(self) -> None:
        self.record.seconds = round(time.monotonic() - self.start, 1)
        self.record.save(self.run_dir / "results.json")

    def stage(self, name: str, arch: str, fn):
        """Run fn() -> (status, message, cases, facts) as one timed, persisted stage."""
        t0 = time.monotonic()
        try:
            status, message, cases, facts = fn()
        except KseriesError as exc:
            status, message, cases, facts = Status.ERROR, exc.message, [
                Case(name, f"{arch + ': ' if arch else ''}{name}", Status.ERROR, 0, exc.message, arch=arch)], {}
            self.errors.append(exc)
        rec = StageRecord(name, arch, status, round(time.monotonic() - t0, 1), message, cases=cases, facts=facts)
        self.record.stages.append(rec)
        self.persist()
        self.ctx.progress.say(name, arch, f"{status.value} in {rec.seconds:.1f} s {message}")
        return rec

    def skip(self, name: str, arch: str, why: str) -> None:
        case = Case(name, f"{arch + ': ' if arch else ''}{name}", Status.SKIP, 0, why, arch=arch)
        self.record.stages.append(StageRecord(name, arch, Status.SKIP, 0, why, cases=[case]))
        self.persist()

    def run(self) -> int:
        """One run at a time per series: the kept worktree and O= dirs are shared."""
        lock_path = self.ctx.cache / "locks" / f"{self.spec.name}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.ctx.progress.say("run", "", f"waiting for another kseries run of {self.spec.name} to finish")
                fcntl.flock(lock, fcntl.LOCK_EX)
            return self._run()

    def _run(self) -> int:
        self.errors: list[KseriesError] = []
        ctx, spec = self.ctx, self.spec
        ctx.progress.say("run", "", f"{spec.title}: arches {', '.join(a.name for a in self.arches)}; results in {self.run_dir}")
        state: dict = {}

        def do_source():
            series, prov = patches.obtain(ctx, spec)
            base = source.ensure_base(ctx, spec)
            state.update(series=series, base=base)
            self.record.provenance.update({"base-commit": spec.base.commit, **base.provenance, **prov})
            return Status.PASS, f"base {base.commit[:12]}", [], {"patches": len(series.patches)}

        src = self.stage("source", "", do_source)
        applied = None
        if src.status == Status.PASS:
            def do_apply():
                nonlocal applied
                applied = apply.run(ctx, state["base"].repo, spec.name, state["base"].commit, state["series"])
                self.record.provenance["tip"] = applied.commits[-1] if applied.commits else ""
                status = Status.PASS if applied.ok else Status.FAIL
                return status, applied.message or f"{len(applied.commits)} patches applied", applied.cases, {}
            self.stage("apply", "", do_apply)
        for arch in self.arches:
            if applied is None or not applied.ok:
                why = "the series did not apply" if applied is not None else "the base tree is unavailable"
                for name in ("build", "boot", "check"):
                    self.skip(name, arch.name, why)
                continue
            self.lane(arch, applied.worktree)
        return self.finish()

    def lane(self, arch: config.Arch, src: Path) -> None:
        ctx = self.ctx
        lane = self.run_dir / arch.name
        lane.mkdir(exist_ok=True)
        built: dict = {}

        def do_build():
            b = build.run(ctx, src, arch, self.spec, lane)
            built["b"] = b
            return b.case.status, b.case.message, [b.case], b.facts

        rec = self.stage("build", arch.name, do_build)
        if rec.status != Status.PASS:
            for name in ("boot", "check"):
                self.skip(name, arch.name, f"the {arch.name} build did not pass")
            return

        def do_boot():
            initrd = initramfs.build(ctx, src, arch, lane)
            b = boot.run(ctx, arch, lane, built["b"].image, initrd)
            built["console"] = b.console
            return b.case.status, b.case.message, [b.case], b.facts

        rec = self.stage("boot", arch.name, do_boot)
        if "console" not in built or rec.status == Status.ERROR:
            self.skip("check", arch.name, f"the {arch.name} kernel did not run (boot {rec.status.value})")
            return

        def do_check():
            cases = check.scan(built["console"], arch.name)
            status = Status.worst(c.status for c in cases)
            return status, "; ".join(c.message for c in cases if c.status != Status.PASS), cases, {}

        self.stage("check", arch.name, do_check)

    def finish(self) -> int:
        statuses = [c.status for c in self.record.cases] + [s.status for s in self.record.stages]
        user = [e for e in self.errors if e.exit_code == EXIT_USER]
        if self.errors:
            self.record.error = self.errors[0].message
        if user:
            code = EXIT_USER
        elif Status.FAIL in statuses:
            code = EXIT_BLAMED
        elif Status.ERROR in statuses:
            code = EXIT_INFRA
        else:
            code = EXIT_OK
        self.record.exit_code = code
        self.record.finished = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.persist()
        report.write(self.record, self.run_dir)
        return code
