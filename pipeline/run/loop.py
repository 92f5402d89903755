"""One loop runs the graph (pipeline/run/graph.py) for a run's lanes.

For each stage of each lane, in the graph's order: SKIP with the reason when a
stage it needs did not end as required; reuse an earlier result whose inputs
are the same (--resume, the base cache); otherwise run it, timed. Any
exception becomes that stage's ERROR (MISS for a bug in kseries itself, with
the traceback in logs/errors.log, never on the terminal). Every result is
persisted the moment it is known. Build stages run in the calling thread,
guest stages in a second one, so one arch boots while the next builds, and
the shared stages no lane needs in a third (graph.Node.beside).
"""

from __future__ import annotations

import contextlib
import threading
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from pipeline.infra import locks
from pipeline.infra.errors import DISK_ERRORS, Interrupted, KseriesError, Terminated, UserError, disk_message
from pipeline.infra.runner import CommandFailed
from pipeline.model import config
from pipeline.model.lane import Lane, Role
from pipeline.model.results import Case, StageResult, Status
from pipeline.run import reuse
from pipeline.run.graph import GRAPH, Node, digest
from pipeline.stages import per_patch, suites
from pipeline.stages.interface import Outcome, Work


@dataclass(frozen=True)
class Task:
    node: Node
    lane: Lane | None
    suite: config.Suite | None = None

    @property
    def ident(self) -> tuple:
        lane = self.lane
        return (self.node.name, lane.arch.name if lane else "", lane.role if lane else Role.SERIES,
                self.suite.name if self.suite else "")


def tasks(lane: Lane | None, spec: config.SeriesConfig, scope: str = "shared") -> list[Task]:
    """The graph's stages for one lane, suites expanded (lane None: those of scope, shared or final)."""
    out = []
    for node in GRAPH:
        if lane is None:
            if node.scope == scope:
                out.append(Task(node, None))
        elif node.scope == "lane" and lane.role in node.roles:
            out.append(Task(node, lane))
        elif node.scope == "suite" and lane.role in node.roles:
            out += [Task(node, lane, s) for s in suites.lane_suites(spec, lane.arch)]
    return out


class Loop:
    def __init__(self, ctx, spec: config.SeriesConfig, patches: list, record, save: Callable[[], None],
                 previous: dict | None = None, dirs: str = ""):
        self.ctx, self.spec, self.patches, self.record, self.save = ctx, spec, patches, record, save
        self.dirs = dirs  # the series' kept directories' name (Work.series_dirs)
        self.previous = previous or {}
        self.lock = threading.RLock()
        self.began = time.monotonic()
        self.results: dict[tuple, StageResult] = {}
        self.adopted: dict[str, dict[tuple, StageResult]] = {}  # lane name -> results taken from a cache
        self.interrupted = threading.Event()
        self.signal = ""  # SIGINT or SIGTERM, once interrupted
        self.arches: tuple = ()
        self.beside: dict[str, Future] = {}  # the shared stages running beside the lanes

    # ---- the run -------------------------------------------------------------
    def run(self, lanes: list[Lane]) -> None:
        self.arches = tuple({lane.arch.name: lane.arch for lane in lanes}.values())
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="guest") as guests, \
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="beside") as beside:
            futures = []
            try:
                for task in tasks(None, self.spec):
                    if task.node.beside:
                        self.beside[task.node.name] = beside.submit(self.execute, task)
                    else:
                        self.execute(task)
                for lane in lanes:
                    lane.dir.mkdir(parents=True, exist_ok=True)
                    mine = tasks(lane, self.spec)
                    for task in mine:
                        if not task.node.guest:
                            self.execute(task)
                    futures.append(guests.submit(self.guest, lane, [t for t in mine if t.node.guest]))
                for future in [*futures, *self.beside.values()]:
                    future.result()
                for task in tasks(None, self.spec, "final"):
                    self.execute(task)
            except KeyboardInterrupt as exc:
                self.signal = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
                self.interrupted.set()
                self.ctx.progress.say("run", "", "interrupted: stopping containers, keeping finished stages")
                if self.ctx._docker is not None:  # no engine was needed yet: nothing runs
                    self.ctx.docker.stop()
                for future in [*futures, *self.beside.values()]:
                    future.cancel()
        if self.interrupted.is_set():
            for lane in [None, *lanes, "final"]:
                if isinstance(lane, Lane) and lane.is_base and lane.name in self.adopted:
                    continue
                for task in (tasks(None, self.spec, "final") if lane == "final" else tasks(lane, self.spec)):
                    if task.ident not in self.results:
                        self.skip(task, "not run: the run was interrupted (rerun with --resume)")

    def guest(self, lane: Lane, mine: list[Task]) -> None:
        for task in mine:
            self.execute(task)
        if not lane.is_base and len(self.arches) > 1 and not self.interrupted.is_set():
            self.early(lane)
        found = self.find("reuse", lane.arch.name, lane.role)
        if lane.name in self.adopted or found is None or not found.artifacts.get("key") or self.interrupted.is_set():
            return
        try:
            files = reuse.files(lane.dir, Path(lane.arch.kernel.image_path).name)
            if reuse.save(self.ctx.cache, found.artifacts["key"], reuse.kept(lane.role, self.lane_results(lane)),
                          self.record.run_id, tuple(files)):
                self.ctx.progress.say("reuse", lane.name, f"results kept under {found.artifacts['key']}")
        except OSError as exc:  # a cache that cannot be written costs time later, not this run
            self.ctx.progress.say("reuse", lane.name, f"results not cached: {exc}")

    def early(self, lane: Lane) -> None:
        """An arch's verdict the moment its lanes are done, while the next arch still builds or boots."""
        from pipeline.run import policy, verdict

        with self.lock:
            part = replace(self.record, stages=[s for s in self.record.stages if s.arch in ("", lane.arch.name)],
                           verdicts=[])
        verdict.judge(part, self.spec, [lane.arch])
        policy.decide(part)
        self.ctx.progress.say("verdict", lane.arch.name, f"{part.verdict} (this arch; the run's verdict follows)")

    # ---- one stage -----------------------------------------------------------
    def execute(self, task: Task) -> None:
        node, lane = task.node, task.lane
        if self.interrupted.is_set():
            return self.skip(task, "not run: the run was interrupted (rerun with --resume)")
        if lane is not None and lane.name in self.adopted:
            taken = self.adopted[lane.name].get(task.ident)
            if taken is not None:
                return self.keep(replace(taken, role=lane.role))
            if lane.is_base:  # a base lane taken over whole: nothing of it runs
                return
        why = self.blocked(task)
        if why:
            return self.skip(task, why)
        work = Work(self.ctx, self.spec, self.patches, lane, self.find, task.suite, arches=self.arches, dirs=self.dirs)
        start, waited = time.monotonic(), 0.0
        try:
            key = self.key(task, work)
            prior = self.previous.get(task.ident)
            if key and reusable(prior, key):
                return self.keep(replace(prior, reused=prior.reused or "an earlier attempt of this run"))
            asked = time.monotonic()
            with self.shared_dirs(task, work):
                waited = time.monotonic() - asked  # another run or lane held the directories
                outcome = node.run(work)
        except KeyboardInterrupt as exc:
            by = "SIGTERM (the job was cancelled)" if isinstance(exc, Terminated) else "SIGINT (Ctrl-C)"
            self.keep(self.failed(task, Interrupted(f"interrupted by {by}"), time.monotonic() - start))
            raise
        except BaseException as exc:  # noqa: BLE001 - one error policy for every stage
            return self.keep(self.failed(task, exc, time.monotonic() - start))
        result = self.result(task, outcome, round(time.monotonic() - start, 1))
        result.key = key or digest(node.name, task.ident, result.artifacts, result.status.value)
        if waited >= 1:
            result.facts["lock_wait"] = round(waited, 1)
        with self.lock:
            self.record.provenance.update(work.provenance)
        if outcome.adopt:
            self.adopted[lane.name] = {(r.stage, r.arch, lane.role, r.suite): r for r in outcome.adopt}
        self.keep(result)

    def shared_dirs(self, task: Task, work: Work):
        """A lane's build stages use kept trees and O= directories other runs may use too (the
        base's are shared by every series on that base): one run at a time in them."""
        if task.lane is None or task.node.name not in SHARED_DIRS:
            return contextlib.nullcontext()
        dirs = work.builds + (per_patch.STEPS if task.node.name == "steps" else "")  # the steps have their own
        say = lambda text: self.ctx.progress.say(task.node.name, task.lane.name, text)  # noqa: E731
        return locks.hold(self.ctx.cache, locks.dirs(dirs, task.lane.arch.name), say, self.record.run_id)

    def key(self, task: Task, work: Work) -> str:
        if task.node.key is None:
            return ""
        deps = []
        for need in task.node.needs:
            found = self.dependency(task, need.stage)
            deps.append(found.key if found else "")
        return digest(task.ident, task.node.key(work), deps)

    def blocked(self, task: Task) -> str:
        lane = task.lane
        for need in task.node.needs:
            found = self.dependency(task, need.stage)
            if found is None:
                continue  # this lane has no such stage (a base lane has no per-patch steps)
            if found.blocked:
                return found.message
            if found.status not in need.ok:
                return need.why.format(arch=lane.arch.name if lane else "", stage=need.stage,
                                       status=found.status.value)
        return ""

    def dependency(self, task: Task, stage: str) -> StageResult | None:
        lane = task.lane
        if stage in self.beside and not task.node.beside:
            self.beside[stage].result()
        if lane is not None:
            found = self.find(stage, lane.arch.name, lane.role)
            if found is not None:
                return found
        return self.find(stage, "", Role.SERIES)

    def result(self, task: Task, outcome: Outcome, seconds: float) -> StageResult:
        lane = task.lane
        arch = lane.arch.name if lane else ""
        for case in outcome.cases:
            case.role = lane.role if lane else Role.SERIES
            case.arch = case.arch or arch
        fault = outcome.fault or ("infra" if outcome.status == Status.ERROR else "")
        return StageResult(task.node.name, arch, lane.role if lane else Role.SERIES, outcome.status, seconds,
                           outcome.message, task.suite.name if task.suite else "", outcome.cases, outcome.facts,
                           outcome.artifacts, fault=fault)

    def failed(self, task: Task, exc: BaseException, seconds: float) -> StageResult:
        if isinstance(exc, Interrupted):
            status, fault, message = Status.ERROR, "interrupted", exc.message
        elif isinstance(exc, KseriesError):
            status, fault, message = Status.ERROR, "input" if isinstance(exc, UserError) else "infra", exc.message
        elif isinstance(exc, OSError) and exc.errno in DISK_ERRORS:
            status, fault, message = Status.ERROR, "infra", disk_message(exc)
        elif isinstance(exc, CommandFailed) and "No space left on device" in exc.done.output:
            status, fault, message = Status.ERROR, "infra", f"{exc}: no space left on device; free some and resume"
        elif isinstance(exc, CommandFailed):
            last = (exc.done.output.strip().splitlines() or ["no output"])[-1][:300]
            status, fault, message = Status.ERROR, "infra", f"{exc} ({last})"
        else:
            log = self.ctx.log("errors.log")
            with self.lock, open(log, "a") as out:
                out.write(f"--- stage {task.node.name} {task.ident}\n{traceback.format_exc()}\n")
            status, fault = Status.MISS, "harness"
            message = (f"kseries itself failed in stage {task.node.name}: {type(exc).__name__}: {exc} "
                       f"(traceback in {log.relative_to(self.ctx.run_dir)})")
        outcome = Outcome(status, message, [self.case(task, status, message)])
        result = self.result(task, outcome, round(seconds, 1))
        result.fault = fault
        return result

    def case(self, task: Task, status: Status, message: str) -> Case:
        lane = task.lane
        return Case(task.node.name, "" if task.suite else task.node.name, status, 0, message,
                    arch=lane.arch.name if lane else "", suite=task.suite.name if task.suite else "")

    def skip(self, task: Task, why: str) -> None:
        cases = [self.case(task, Status.SKIP, why)] if task.node.reported else []
        result = self.result(task, Outcome(Status.SKIP, why, cases), 0.0)
        result.blocked = True
        self.keep(result)

    def keep(self, result: StageResult) -> None:
        if result.started < 0 or result.reused:  # for the timeline (report/timeline.py); reused: no time
            now = time.monotonic() - self.began
            result.started = round(max(0.0, now - (0 if result.reused else result.seconds)), 1)
            result.thread = THREADS.get(threading.current_thread().name.split("_")[0], "lanes")
        with self.lock:
            self.results[(result.stage, result.arch, result.role, result.suite)] = result
            self.record.stages.append(result)
            self.save()
        where = result.where.split(" ", 1)
        note = f" (reused: {result.reused})" if result.reused else ""
        self.ctx.progress.say(where[0], where[1] if len(where) > 1 else "",
                              f"{result.status.value} in {result.seconds:.1f} s {result.message}{note}")

    # ---- lookups -------------------------------------------------------------
    def find(self, stage: str, arch: str = "", role: Role = Role.SERIES, suite: str = "") -> StageResult | None:
        with self.lock:
            return self.results.get((stage, arch, role, suite))

    def lane_results(self, lane: Lane) -> list[StageResult]:
        with self.lock:
            return [r for r in self.record.stages if r.arch == lane.arch.name and r.role == lane.role]


THREADS = {"guest": "guest", "beside": "beside"}  # thread name prefixes (run()); the rest: lanes
SHARED_DIRS = {"steps", "build", "compiled", "userspace", "initramfs"}  # the base's checkout locks its worktree


def reusable(prior: StageResult | None, key: str) -> bool:
    """An earlier result stands when its inputs are the same, it finished, and its files are still there."""
    if prior is None or prior.key != key or prior.blocked or prior.status.broken:
        return False
    paths = [v for v in prior.artifacts.values() if isinstance(v, str) and v.startswith("/")]
    return all(Path(p).exists() for p in paths)
