"""Runs the stages in order, times each, persists each result as it finishes.

source -> apply -> symbols, checkpatch -> per arch lane: build -> userspace -> boot -> check -> suites -> report.
A stage whose dependency failed is SKIP with the reason; an infrastructure
error in one lane is that lane's ERROR and the other lanes still run.

Lanes overlap so the cores stay busy: builds (kernel, suites, initramfs) run
one arch after another in the calling thread, and each arch's guest run (boot,
check, suite results) goes to a second thread as soon as its build is done,
so one arch boots while the next compiles.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import re
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import apply, baseline, bisect, boot, build, check, checkpatch, config, initramfs, intake, report, source, suites, symbols
from .context import Context, cache_root
from .errors import EXIT_BLAMED, EXIT_INFRA, EXIT_OK, EXIT_USER, KseriesError, UserError
from .progress import Progress
from .results import Case, RunRecord, StageRecord, Status
from .runner import Runner


def plan(series_name: str | None, arch_names: list[str] | None, request: intake.Request | None = None,
         need_base: bool = True) -> tuple[config.Series, list[config.Arch], intake.Intake]:
    """Validate the input before any work: unknown series/arch, bad mail are user errors.
    The series' patches are fetched and parsed here, so a bad source leaves no run behind."""
    request = request or intake.Request()
    request.check()
    if not series_name and not request.given:
        raise UserError("No series given. Pass --series NAME (a configs/series/NAME.yaml), or a source of "
                        "patches: --msgid ID, --mbox FILE, --git REPO --range BASE..TIP or --patchwork ID.")
    spec = config.load_series(series_name) if series_name else config.adhoc_series("adhoc", "", "")
    arches: list[config.Arch] = []
    for name in arch_names or list(spec.arches):
        arch = config.resolve_arch(name)
        if arch.name not in [a.name for a in arches]:
            arches.append(arch)
    for name in spec.tests:
        if name not in config.BUILTIN_TESTS:
            config.load_suite(name)
    for arch in arches:
        for name in arch.suites:
            if name not in config.BUILTIN_TESTS:
                config.load_suite(name)
        build.fragments_for(arch, spec)
    staging = Path(tempfile.mkdtemp(prefix="kseries-mail-"))
    try:
        got = intake.obtain(request, spec if series_name else None, staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    got.staging = staging
    if not series_name:
        if not got.base_commit and need_base:
            got.discard()
            raise UserError(
                f"The series from {got.source} names no base: its mails carry no 'base-commit:' trailer. "
                "Pass --series NAME to take the base from that series' YAML, or --git REPO --range "
                "BASE..TIP to name it.")
        tag = got.parsed.change_id or request.msgid or got.source
        name = "adhoc-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", tag).strip("-")[:40] + "-" + \
            hashlib.sha256(tag.encode()).hexdigest()[:6]
        spec = config.adhoc_series(name, got.parsed.series.title, got.base_commit, got.base_repo,
                                   request.msgid)
    return spec, arches, got


def lane_suite(lane: dict, name: str) -> config.Suite:
    return next(s for s in lane["suites"] if s.name == name)


def keep_series(got: intake.Intake, where: Path):
    """The chosen patch mails and what the thread said about them, kept in the run directory."""
    (where / "patches").mkdir(parents=True, exist_ok=True)
    patches = []
    for p in got.parsed.series.patches:
        dest = where / "patches" / Path(p.path).name
        shutil.copyfile(p.path, dest)
        patches.append(dataclasses.replace(p, path=dest))
    (where / "series.txt").write_text(intake.describe(got))
    return dataclasses.replace(got.parsed.series, patches=patches)


class Pipeline:
    def __init__(self, spec: config.Series, arches: list[config.Arch], results: Path, got: intake.Intake,
                 progress: Progress | None = None):
        self.spec = spec
        self.arches = arches
        run_id = time.strftime("%Y%m%d-%H%M%S") + f"-{spec.name}"
        if sorted(a.name for a in arches) != sorted(spec.arches):  # one CI job per arch: distinct ids
            run_id += "-" + "-".join(a.name for a in arches)
        self.run_dir = results / run_id
        self.run_dir.mkdir(parents=True, exist_ok=False)
        self.ctx = Context(self.run_dir, cache_root(), Runner(self.run_dir / "commands.log"), progress or Progress())
        self.record = RunRecord(run_id, spec.name, spec.title, [a.name for a in arches],
                                started=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        self.start = time.monotonic()
        self.lock = threading.RLock()
        self.errors: list[KseriesError] = []
        self.applied: apply.Applied | None = None
        self.patches: list = []
        self.series = keep_series(got, self.run_dir / "series")
        got.discard()
        self.source_note = got.source

    def persist(self) -> None:
        with self.lock:
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
            with self.lock:
                self.errors.append(exc)
        if name.startswith(baseline.PREFIX):
            for c in cases:
                c.suite = c.suite if c.suite.startswith(baseline.PREFIX) else baseline.PREFIX + c.suite
        rec = StageRecord(name, arch, status, round(time.monotonic() - t0, 1), message, cases=cases, facts=facts)
        with self.lock:
            self.record.stages.append(rec)
            self.persist()
        self.ctx.progress.say(name, arch, f"{status.value} in {rec.seconds:.1f} s {message}")
        return rec

    def image(self, name: str) -> str:
        """The container image for name, built if needed; its tag and id go into the provenance."""
        tag = self.ctx.docker.ensure_image(config.load_image(name), self.ctx.log("images.log"))
        with self.lock:
            self.record.provenance.setdefault(f"image-{name}", f"{tag} {self.ctx.docker.image_id(tag)[:19]}")
        return tag

    def skip(self, name: str, arch: str, why: str) -> None:
        case = Case(name, f"{arch + ': ' if arch else ''}{name}", Status.SKIP, 0, why, arch=arch)
        with self.lock:
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
        ctx, spec = self.ctx, self.spec
        ctx.progress.say("run", "", f"{spec.title}: arches {', '.join(a.name for a in self.arches)}; results in {self.run_dir}")
        state: dict = {}

        def do_source():
            series = self.series
            base = source.ensure_base(ctx, spec)
            state.update(series=series, base=base)
            self.record.provenance.update({"base-commit": spec.base.commit, **base.provenance,
                                           "patches": self.source_note})
            return Status.PASS, f"base {base.commit[:12]}", [], {"patches": len(series.patches)}

        src = self.stage("source", "", do_source)
        applied = None
        if src.status == Status.PASS:
            def do_apply():
                nonlocal applied
                applied = apply.run(ctx, state["base"].repo, spec.name, state["base"].commit, state["series"])
                self.applied, self.patches = applied, state["series"].patches
                self.record.provenance["tip"] = applied.commits[-1] if applied.commits else ""
                status = Status.PASS if applied.ok else Status.FAIL
                if applied.already:  # wrong base for this series: a user error, not the series' fault
                    with self.lock:
                        self.errors.append(UserError(applied.message + "."))
                return status, applied.message or f"{len(applied.commits)} patches applied", applied.cases, {}
            self.stage("apply", "", do_apply)
        if applied is not None and applied.commits:
            def do_symbols():
                cases = symbols.check(ctx, applied.worktree, state["series"].patches, applied.commits)
                status = Status.worst([Status.PASS, *(c.status for c in cases)])
                failed = [c.name for c in cases if c.status == Status.FAIL]
                return status, "; ".join(failed) or f"{len(cases)} removed symbol(s), none still used", cases, {}
            self.stage("symbols", "", do_symbols)

            def do_checkpatch():
                cases = checkpatch.run(ctx, state["base"].repo, state["base"].commit, applied.worktree,
                                       state["series"].patches[:len(applied.commits)], spec.checkpatch)
                status = Status.worst([Status.PASS, *(c.status for c in cases)])
                bad = [f"{c.name}: {c.message}" for c in cases if c.status != Status.PASS]
                clean = sum(1 for c in cases if c.message == "clean")
                return status, "; ".join(bad) or f"{len(cases)} patch(es), {clean} clean", cases, {}
            self.stage("checkpatch", "", do_checkpatch)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="guest") as guests:
            runs = []
            for arch in self.arches:
                lane_suites = suites.selected(spec, arch)[0]
                if applied is None or not applied.ok:
                    why = "the series did not apply" if applied is not None else "the base tree is unavailable"
                    for name in ("build", "userspace", "boot", "check", *(s.name for s in lane_suites)):
                        self.skip(name, arch.name, why)
                    continue
                if lane_suites:
                    runs += self.baseline(arch, state["base"], guests)
                lane = self.prepare(arch, applied.worktree, spec.name, "")
                if lane is not None:
                    runs.append(guests.submit(self.guest, arch, lane, ""))
            for run in runs:
                run.result()
        self.judge()
        return self.finish()

    def baseline(self, arch: config.Arch, base, guests) -> list:
        """The base lane for arch: reused from the cache, or built and run (and then cached)."""
        ctx = self.ctx
        found: dict = {}

        def do_lookup():
            image = self.image(arch.toolchain)
            key = baseline.key(self.spec, arch, base.commit, image)
            found.update(key=key, cached=baseline.load(ctx.cache, key))
            if found["cached"] is not None:
                return Status.PASS, f"reusing the base results cached under {key}: no base build, no base boot", \
                    [], {"key": key, "reused": True}
            return Status.PASS, f"no cached base results ({key}): building and testing the base", [], \
                {"key": key, "reused": False}

        rec = self.stage("baseline", arch.name, do_lookup)
        if rec.status != Status.PASS:
            return []
        key, cached = found["key"], found["cached"]
        if cached is not None:
            for stage_rec in cached:
                stage_rec.facts["reused"] = f"baseline cache {key}"
            with self.lock:
                self.record.stages += cached
                self.persist()
            return []
        tree = apply.worktree(ctx, base.repo, f"{baseline.PREFIX}{base.commit[:12]}", base.commit)[0]
        lane = self.prepare(arch, tree, f"{baseline.PREFIX}{base.commit[:12]}", baseline.PREFIX)
        if lane is None:
            return []
        lane["baseline_key"] = key
        return [guests.submit(self.guest, arch, lane, baseline.PREFIX)]

    def prepare(self, arch: config.Arch, src: Path, dirs: str, tree: str) -> dict | None:
        """Build the lane's kernel, its suites and its initramfs; None when there is nothing to boot.

        dirs names the kept build directories; tree is "" for the series, "base-" for the base."""
        ctx, spec = self.ctx, self.spec
        lane_dir = self.run_dir / f"{tree}{arch.name}"
        lane_dir.mkdir(exist_ok=True)
        runs, not_here = suites.selected(spec, arch)
        for suite, why in not_here:
            self.skip(tree + suite.name, arch.name, f"{suite.title} does not apply on {arch.name}: {why}")
        lane: dict = {"dir": lane_dir, "src": src, "suites": []}

        steps: list = []
        moved: dict = {}  # mtimes to restore once this arch's tip is built (bisect.intermediate)
        commits = self.applied.commits if self.applied is not None else []
        if not tree and len(commits) > 1:
            def do_steps():
                image = self.image(arch.toolchain)
                steps.extend(bisect.intermediate(ctx, src, arch, spec, lane_dir, self.patches, commits, dirs, image,
                                                 keep=moved))
                built = sum(1 for s in steps if not s.reused)
                status = Status.worst([Status.PASS, *(s.status for s in steps if s.status != Status.FAIL)])
                return status, f"{len(steps)} intermediate state(s): {built} built, {len(steps) - built} reused", \
                    [], {"built": built, "seconds": round(sum(s.seconds for s in steps if not s.reused), 1)}
            self.stage("steps", arch.name, do_steps)

        def do_build():
            b = build.run(ctx, src, arch, spec, lane_dir, dirs=dirs)
            lane["build"] = b
            return b.case.status, b.case.message, [b.case], b.facts

        rec = self.stage(tree + "build", arch.name, do_build)
        if moved and rec.status == Status.PASS:  # every object of this arch is newer than the tip's files now
            restored = apply.restore_mtimes(ctx, src, moved)
            ctx.runner.note(f"# steps done: gave {restored}/{len(moved)} files their pre-step mtime back")
        if not tree and commits:
            self.bisect_cases(arch, steps, lane.get("build"))
        if rec.status != Status.PASS:
            for name in ("userspace", "boot", "check", *(s.name for s in runs)):
                self.skip(tree + name, arch.name, f"the {arch.name} kernel build did not pass")
            return None

        def do_userspace():
            image = self.image(arch.toolchain)
            built = [suites.build(ctx, image, src, lane["build"].out_dir, arch, s, dirs, lane_dir) for s in runs]
            lane["suites"] = [b.suite for b in built if b.rootfs is not None]
            lane["unbuilt"] = [b for b in built if b.rootfs is None]
            lane["initrd"] = initramfs.build(ctx, src, arch, lane_dir, [b.rootfs for b in built if b.rootfs],
                                             suites.manifest(lane["suites"], arch))
            cases = [b.case for b in built]
            status = Status.worst([Status.PASS, *(c.status for c in cases)])
            size = lane["initrd"].stat().st_size
            problems = [c.message for c in cases if c.status != Status.PASS]
            facts = {"initramfs_bytes": size, **{f"{c.name.split()[-1]}_build_seconds": round(c.seconds, 1)
                                                 for c in cases}}
            return status, "; ".join([f"initramfs {size / 1e6:.1f} MB", *problems]), cases, facts

        rec = self.stage(tree + "userspace", arch.name, do_userspace)
        for b in lane.get("unbuilt", []):
            self.skip(tree + b.suite.name, arch.name, f"{b.suite.title} was not built: {b.case.message}")
        if "initrd" not in lane:
            for name in ("boot", "check", *(s.name for s in runs)):
                self.skip(tree + name, arch.name, f"the {arch.name} initramfs could not be made")
            return None
        return lane

    def bisect_cases(self, arch: config.Arch, steps: list, tip) -> None:
        """One build and one warnings testcase per patch: the intermediate steps, then the tip."""
        if tip is not None:
            last = self.patches[len(steps)]
            steps = [*steps, bisect.Step(last.label, last.subject, tip.case.status, round(tip.case.seconds, 1),
                                         tip.case.message, tip.case.detail, tip.facts.get("warnings", []))]
        with self.lock:
            base = next((s.facts.get("warnings") for s in self.record.stages
                         if s.stage == baseline.PREFIX + "build" and s.arch == arch.name), None)
        cases = bisect.cases(arch.name, steps, base)
        status = Status.worst([Status.PASS, *(c.status for c in cases)])
        bad = [c.message for c in cases if c.status == Status.FAIL]
        self.stage("bisect", arch.name, lambda: (status, "; ".join(bad) or f"{len(steps)} patch(es) build", cases, {}))

    def guest(self, arch: config.Arch, lane: dict, tree: str) -> None:
        """Boot the lane's kernel, scan its console, read each suite's results; a failing
        test makes the guest run once more, and a test that passes then is FLAKY."""
        ctx = self.ctx
        booted: dict = {}
        guest_seconds = sum(s.timeout for s in lane["suites"])

        def do_boot(attempt: str = ""):
            b = boot.run(ctx, arch, lane["dir"], lane["build"].image, lane["initrd"], extra_seconds=guest_seconds,
                         name=f"console{attempt}")
            booted["b" + attempt] = b
            return b.case.status, b.case.message, [b.case], b.facts

        rec = self.stage(tree + "boot", arch.name, do_boot)
        if "b" not in booted or rec.status == Status.ERROR:
            for name in ("check", *(s.name for s in lane["suites"])):
                self.skip(tree + name, arch.name, f"the {arch.name} kernel did not run (boot {rec.status.value})")
            return self.save_baseline(arch, lane, tree)
        console = booted["b"].console

        def do_check():
            cases = check.scan(console, arch.name)
            status = Status.worst(c.status for c in cases)
            return status, "; ".join(c.message for c in cases if c.status != Status.PASS), cases, {}

        self.stage(tree + "check", arch.name, do_check)
        lines = console.read_text(errors="replace").splitlines()
        results = {s.name: suites.results(s, arch.name, lines) for s in lane["suites"]}
        failed = {(n, c.name) for n, cases in results.items() for c in cases if c.status == Status.FAIL}
        if failed and booted["b"].ok:
            ctx.progress.say("boot", tree + arch.name, f"{len(failed)} test(s) failed: running the guest once more "
                                                "to tell flaky tests from real failures")
            retry = self.stage(tree + "boot-retry", arch.name, lambda: do_boot("-retry"))
            if "b-retry" in booted and retry.status == Status.PASS:
                again = booted["b-retry"].console.read_text(errors="replace").splitlines()
                for name, cases in results.items():
                    second = {c.name: c for c in suites.results(lane_suite(lane, name), arch.name, again)}
                    for case in cases:
                        if case.status == Status.FAIL and getattr(second.get(case.name), "status", None) == Status.PASS:
                            case.status, case.flaky = Status.PASS, True
                            case.message = f"FLAKY: failed on the first run ({case.message}), passed on the retry"
        for suite in lane["suites"]:
            def do_suite(suite=suite):
                cases = results[suite.name]
                counts = {st: sum(1 for c in cases if c.status == st) for st in Status}
                status = Status.worst([c.status for c in cases if c.status != Status.SKIP])
                summary = ", ".join(f"{n} {st.value.lower()}" for st, n in counts.items() if n)
                flaky = sum(1 for c in cases if c.flaky)
                summary += f", {flaky} flaky" if flaky else ""
                return status, f"{len(cases)} testcases: {summary}", cases, {k.value: v for k, v in counts.items()}

            self.stage(tree + suite.name, arch.name, do_suite)
        self.save_baseline(arch, lane, tree)

    def save_baseline(self, arch: config.Arch, lane: dict, tree: str) -> None:
        if tree and "baseline_key" in lane:
            with self.lock:
                mine = [s for s in self.record.stages if s.arch == arch.name and s.stage.startswith(tree)]
            baseline.save(self.ctx.cache, lane["baseline_key"], mine, self.record.run_id)

    def judge(self) -> None:
        """Per arch, every suite test of the series against the base."""
        verdicts = []
        for arch in self.arches:
            names = {s.name for s in suites.selected(self.spec, arch)[0]}
            cases = [c for s in self.record.stages if s.arch == arch.name for c in s.cases]
            verdicts += baseline.compare(cases, cases, names)
        self.record.verdicts = [dataclasses.asdict(v) for v in verdicts]

    def finish(self) -> int:
        """Exit code: a series-side failure outside the suites, or a regression against the base,
        blames the series; a suite test that fails on the base too does not; base failures never do."""
        statuses = [c.status for c in self.record.cases] + [s.status for s in self.record.stages]
        suite_names = {s.name for a in self.arches for s in suites.selected(self.spec, a)[0]}
        series_fails = [c for s in self.record.stages if not s.stage.startswith(baseline.PREFIX)
                        for c in s.cases if c.status == Status.FAIL and c.suite not in suite_names]
        regressions = [v for v in self.record.verdicts if v["kind"] in baseline.BLAMED]
        user = [e for e in self.errors if e.exit_code == EXIT_USER]
        if self.errors:
            self.record.error = self.errors[0].message
        if user:
            code = EXIT_USER
        elif series_fails or regressions:
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
