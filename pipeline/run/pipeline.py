"""A run of the graph for one series: its directory, lock, lanes, the loop, and the answer.

plan() checks the input before any work; Run makes (or, with --resume, reopens)
the run directory and runs the graph (pipeline/run/graph.py) through the loop
(pipeline/run/loop.py); finish() judges the series against its base, decides
the exit code (pipeline/run/policy.py) and writes every report from the
persisted results. Whatever happens in a stage, results.json, junit.xml and
summary.txt are written and the exit code is defined.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import hashlib
import re
import shutil
import signal
import tempfile
import time
import traceback
from pathlib import Path

from pipeline.infra import background, locks, prune
from pipeline.infra.context import Context, cache_root
from pipeline.infra.errors import KseriesError, Terminated, UserError
from pipeline.infra.progress import Progress
from pipeline.infra.runner import Runner
from pipeline.intake import sources as intake
from pipeline.model import config
from pipeline.model.lane import Lane, Role, base_tree
from pipeline.model.results import RunRecord, StageResult, Status
from pipeline.model.series import load_patch_dir
from pipeline.report import write as write_reports
from pipeline.run import policy, select, verdict
from pipeline.run.loop import Loop
from pipeline.stages import build, suites


def plan(series_name: str | None, arch_names: list[str] | None, request: intake.Request | None = None,
         need_base: bool = True) -> tuple[config.SeriesConfig, list[config.Arch], intake.Intake]:
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
    from pipeline.run.graph import GRAPH

    for name in spec.tests:
        if name in config.BUILTIN_TESTS:
            continue
        if name in {n.name for n in GRAPH}:  # its JUnit testsuite would be the stage's
            raise UserError(f"{spec.path}: the test suite '{name}' has the name of a kseries stage. "
                            "Rename the suite (configs/suites/) and its entry in 'tests'.")
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
    at_hand(got, spec.base.commit if series_name else "")
    if not series_name:
        if not got.base_commit and need_base:
            got.discard()
            raise UserError(
                f"The series from {got.source} names no base: its mails carry no 'base-commit:' trailer, "
                "and no commit kseries has cached holds the blobs its diffs start from. "
                "Pass --series NAME to take the base from that series' YAML, or --git REPO --range "
                "BASE..TIP to name it.")
        tag = got.parsed.change_id or request.msgid or got.source
        name = "adhoc-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", tag).strip("-")[:40] + "-" + \
            hashlib.sha256(tag.encode()).hexdigest()[:6]
        spec = config.adhoc_series(name, got.parsed.series.title, got.base_commit, got.base_repo,
                                   request.msgid)
        spec, got.chosen = select.choose(spec, [f.path for f in got.parsed.series.files])
        if not arch_names:  # --arch given: those arches; else the defaults and what the paths call for
            arches = [config.resolve_arch(n) for n in spec.arches]
    return spec, arches, got


def at_hand(got: intake.Intake, base: str = "") -> None:
    """With the cached kernel repo: guess a base the mails do not name, and the series' net diffstat."""
    from pipeline.intake import base as bases

    repo = cache_root() / "git" / "linux.git"
    paths = [p.path for p in got.parsed.series.patches]
    if not got.base_commit and not base:
        found = bases.guess(repo, [Path(p).read_text(errors="replace") for p in paths])
        if found:
            got.base_commit, got.base_note = found
    for candidate in (base or got.base_commit, f"refs/kseries/standin/{base or got.base_commit}"):
        if candidate and got.net is None:
            got.net = bases.net_stat(repo, candidate, paths)


def keep_series(got: intake.Intake, where: Path):
    """The chosen patch mails and what the thread said about them, kept in the run directory."""
    (where / "patches").mkdir(parents=True, exist_ok=True)
    patches = []
    for p in got.parsed.series.patches:
        dest = where / "patches" / Path(p.path).name
        shutil.copyfile(p.path, dest)
        patches.append(dataclasses.replace(p, path=dest))
    (where / "series.txt").write_text(intake.describe(got))
    (where / "thread.json").write_text(json.dumps(got.parsed.thread, indent=1))  # for a reply mail
    return dataclasses.replace(got.parsed.series, patches=patches)


SLOTS = 3  # the directories of one series that runs of it may use at once (series_dirs)

class Run:
    """One run directory: new, or an earlier one reopened by --resume."""

    def __init__(self, spec: config.SeriesConfig, arches: list[config.Arch], run_dir: Path, record: RunRecord,
                 patches: list, progress: Progress | None = None, previous: dict | None = None):
        self.spec, self.arches, self.run_dir, self.record, self.patches = spec, arches, run_dir, record, patches
        self.previous = previous or {}
        self.ctx = Context(run_dir, cache_root(), Runner(run_dir / "commands.log"), progress or Progress())
        self.start = time.monotonic() - record.seconds
        self.unsaved = ""  # why results.json could not be written (a full disk), said once
        self.dirs = spec.name  # the series' kept directories' name, once the run holds them (series_dirs)
        reserve(run_dir)

    @classmethod
    def create(cls, spec: config.SeriesConfig, arches: list[config.Arch], results: Path, got: intake.Intake,
               progress: Progress | None = None) -> "Run":
        run_id = time.strftime("%Y%m%d-%H%M%S") + f"-{spec.name}"
        if sorted(a.name for a in arches) != sorted(spec.arches):  # one CI job per arch: distinct ids
            run_id += "-" + "-".join(a.name for a in arches)
        run_dir = results / run_id
        try:
            run_dir.mkdir(parents=True, exist_ok=False)
        except (FileNotFoundError, NotADirectoryError, PermissionError) as exc:
            got.discard()
            raise UserError(f"--results {results}: the run directory {run_dir} cannot be made ({exc.strerror}). "
                            "Pass --results a directory you can write to (it is made if missing).") from exc
        series = keep_series(got, run_dir / "series")
        got.discard()
        record = RunRecord(run_id, spec.name, spec.title, [a.name for a in arches],
                           started=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                           provenance={"patches": got.source, "base-git": spec.base.git_url,
                                       "config derivation": "on" if spec.derive else "off",
                                       "earlier test results": "not taken (--rerun-tests)" if spec.rerun_tests
                                       else "taken where every input is the same",
                                       **{f"chosen {k}": v for k, v in (got.chosen or {}).items()}})
        return cls(spec, arches, run_dir, record, series.patches, progress)

    @classmethod
    def resume(cls, run_dir: Path, progress: Progress | None = None) -> "Run":
        """Reopen a run: the same series, patches (kept in its directory), arches and base."""
        record = RunRecord.load(run_dir / "results.json")
        kept = run_dir / "series" / "patches"
        if not kept.is_dir():
            raise UserError(f"{run_dir} has no series/patches: its patches were never kept, so it cannot be "
                            "resumed. Start a new run with 'invoke ci'.")
        series = load_patch_dir(kept, record.title, "the run's kept copy")
        if record.series.startswith("adhoc-"):  # no YAML: the same defaults, and the same choice from the paths
            spec = config.adhoc_series(record.series, record.title, record.provenance.get("base-commit", ""),
                                       record.provenance.get("base-git", ""))
            spec = select.choose(spec, [f.path for f in series.files])[0]
        else:
            spec = config.load_series(record.series)
        if record.provenance.get("config derivation") == "off":  # as the run was started (--no-derive)
            spec = dataclasses.replace(spec, derive=False)
        if record.provenance.get("earlier test results", "").startswith("not taken"):  # --rerun-tests
            spec = dataclasses.replace(spec, rerun_tests=True)
        arches = [config.resolve_arch(a) for a in record.arches]
        previous = {(s.stage, s.arch, s.role, s.suite): s for s in record.stages}
        record.stages, record.verdicts, record.interrupted, record.exit_code, record.error = [], [], "", None, ""
        return cls(spec, arches, run_dir, record, series.patches, progress, previous)

    def lanes(self) -> list[Lane]:
        """Per arch: the base lane (when the series runs suites there, to compare with), then the series'."""
        out = []
        for arch in self.arches:
            if suites.selected(self.spec, arch)[0]:
                out.append(Lane(arch, Role.BASE, self.run_dir))
            out.append(Lane(arch, Role.SERIES, self.run_dir))
        return out

    def save(self) -> None:
        self.record.seconds = round(time.monotonic() - self.start, 1)
        try:
            self.record.save(self.run_dir / "results.json")
        except OSError as exc:  # a full disk: the stages go on (and fail as ERROR); finish() writes it
            if not self.unsaved:
                self.unsaved = f"{exc.strerror} ({exc.filename})"
                self.ctx.progress.say("run", "", f"results.json not written: {self.unsaved}; kept in memory, "
                                      "written at the end from the space kept in reserve")

    def run(self) -> int:
        """One run at a time per series: the kept worktree and O= dirs are shared. After its answer
        (never after a stopped run), one detached process makes the next new series' spares and
        keeps the cache within its budget, sparing what this run used (infra/background.py, prune.py)."""
        try:
            with self.series_dirs() as dirs:
                code = self._run(dirs)
        except BaseException:
            background.drop()
            raise
        bases = [base_tree(s.artifacts["commit"]) for s in self.record.stages if "commit" in s.artifacts][:1]
        bases += [Path(s.artifacts["out_dir"]).parent.parent.name for s in self.record.stages  # its configs'
                  if s.stage == "build" and s.role is Role.BASE and "out_dir" in s.artifacts]
        if prune.due(self.ctx.cache):
            background.later("cache prune", prune.prune, None, self.dirs, *bases)
        background.drop() if self.record.interrupted else background.hand_off(self.ctx)
        return code

    @contextlib.contextmanager
    def series_dirs(self):
        """The name of the kept worktree and build directories this run uses, held for the run. A
        run of the same patches that holds them is waited for (its results are then reused); while
        a run of other patches of the series holds them, this one takes the first free of SLOTS
        others (directories of their own, seeded from the base's) instead of waiting for that whole
        run. None free: wait for the series' own."""
        name, say = self.spec.name, lambda text: self.ctx.progress.say("run", "", text)
        mine = hashlib.sha256(b"".join(Path(p.path).read_bytes() for p in self.patches)).hexdigest()[:16]
        marks = lambda dirs: self.ctx.cache / "locks" / f"series-{dirs}.patches"  # noqa: E731 - the holder's patches
        wait = name
        for slot in range(1, SLOTS + 1):
            dirs = name if slot == 1 else f"{name}~{slot}"
            with locks.attempt(self.ctx.cache, f"series-{dirs}", self.record.run_id) as held:
                if held:
                    marks(dirs).write_text(mine)
                    if slot > 1:
                        say(f"another run of other patches of {name} holds its directories: this one "
                            f"builds in {dirs}'s")
                        self.record.provenance["series directories"] = f"{dirs} ({name}'s were in use)"
                    yield dirs
                    return
            if marks(dirs).is_file() and marks(dirs).read_text() == mine:
                wait = dirs  # the same patches: wait for that run and reuse what it did
                break
        with locks.hold(self.ctx.cache, f"series-{wait}", say, self.record.run_id):
            marks(wait).write_text(mine)
            yield wait

    def _run(self, dirs: str) -> int:
        self.dirs = dirs
        self.ctx.progress.say("run", "", f"{self.spec.title}: arches {', '.join(a.name for a in self.arches)}; "
                              f"results in {self.run_dir}")
        self.save()
        prune.begin(self.ctx.cache, dirs)
        self.reap()
        loop = Loop(self.ctx, self.spec, self.patches, self.record, self.save, self.previous, dirs)
        old = signal.signal(signal.SIGTERM, _interrupt)  # a cancelled CI job ends like Ctrl-C
        try:
            loop.run(self.lanes())
        except Exception as exc:  # noqa: BLE001 - outside any stage: still a run with an answer
            self.ctx.log("errors.log").write_text(traceback.format_exc())
            self.record.stages.append(StageResult(
                "run", "", Role.SERIES, Status.MISS, 0, f"kseries itself failed between stages: "
                f"{type(exc).__name__}: {exc} (traceback in logs/errors.log)", fault="harness"))
        finally:
            signal.signal(signal.SIGTERM, old)
        self.record.interrupted = loop.signal
        return self.finish()

    def reap(self) -> None:
        """Before anything is built: stop the containers a killed run left (a make still writing
        into a kept O= directory). No engine yet is no error here: the first stage needing it says so."""
        try:
            reaped = self.ctx.docker.reaped
        except KseriesError:
            return
        if reaped:
            from pipeline.stages.build import scrub

            self.ctx.progress.say("run", "", f"stopped {len(reaped)} container(s) a killed kseries run left "
                                  f"running: {', '.join(r.name for r in reaped)}")
            for gone in reaped:  # what make was writing when it was killed is not trusted
                for out in gone.writable:
                    if Path(out).is_dir() and (Path(out) / ".config").is_file():
                        scrub(self.ctx, Path(out), gone.started)

    def finish(self) -> int:
        verdict.judge(self.record, self.spec, self.arches)
        policy.decide(self.record)
        self.record.finished = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        release(self.run_dir)
        self.record.save(self.run_dir / "results.json")
        write_reports(self.record, self.run_dir)
        return self.record.exit_code


RESERVE = 16 * 2**20  # bytes kept aside in each run directory for its reports


def reserve(run_dir: Path) -> None:
    """Hold RESERVE bytes on the results filesystem, so that a disk filled during the run
    still leaves room for results.json, JUnit and the summary (released by release())."""
    path = run_dir / ".kseries-reserve"
    try:
        with open(path, "wb") as out:
            os.posix_fallocate(out.fileno(), 0, RESERVE)
    except OSError:
        path.unlink(missing_ok=True)  # already full: nothing to hold, the reports may still fit


def release(run_dir: Path) -> None:
    (run_dir / ".kseries-reserve").unlink(missing_ok=True)


def _interrupt(signum, frame):
    raise Terminated()


def latest_run(results: Path, series: str | None) -> Path:
    """The newest run directory under results (of that series, when named)."""
    from pipeline.report.store import run_dirs

    found = []
    for run_dir in run_dirs(results):
        try:
            record = RunRecord.load(run_dir / "results.json")
        except (UserError, ValueError, KeyError, TypeError):
            continue
        if series is None or record.series == series:
            found.append((record.started, run_dir.name, run_dir))
    if not found:
        raise UserError(f"There is no run{' of ' + series if series else ''} under {results} to resume. "
                        "Start one with 'invoke ci --series NAME', or pass the run directory to --resume.")
    return max(found)[2]
