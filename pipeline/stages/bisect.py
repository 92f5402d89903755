"""Stage 'bisect': which patch a test regression or a new splat of the tip comes from.

When the series' lane shows tests that regressed against the base, or kernel splats the base
does not show, the kernels of the intermediate states (kept by the per-patch steps) are booted
with an initramfs narrowed to what regressed: only the suites concerned, and for a suite with an
allow flag (test_progs -a) only the regressed tests. The states are searched in order, binary
(git bisect's log2(n) boots) for the first state that shows each item; the base (state 0) is
known clean and the tip (state n) known bad, so neither is booted. An item that first shows at
state k is "introduced by patch k/n". A state whose kernel did not build, or was not kept,
cannot be booted: the search steps over it and says so. A clean tip costs nothing: no boot.
The userspace is the tip's (its suites were built against the tip's kernel headers and BTF).
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

from pipeline.infra.errors import InfraError
from pipeline.model.lane import Role
from pipeline.model.results import Status
from pipeline.run import verdict
from pipeline.stages import boot, check, per_patch, suites, userspace
from pipeline.stages import initramfs as cpio
from pipeline.stages.interface import Outcome, Work

SPLAT = "console"  # the suite name under which a new splat is an item


def patch_named(facts: dict, k: int) -> str:
    """"patch 2/3 'subject'": the patch a bisection's facts place an item at."""
    return f"patch {k}/{facts.get('total', k)} '{facts.get('subjects', {}).get(str(k), '')}'"


def regressed(work: Work) -> list[tuple[str, str]]:
    """(suite, test) of the lane's tests that regressed against the base (not flaky)."""
    arch = work.arch.name
    cases = []
    for suite in suites.lane_suites(work.spec, work.arch):
        for role in (Role.BASE, Role.SERIES):
            found = work.find("suite", arch, role, suite.name)
            cases += found.cases if found is not None else []
    running = {(arch, s.name) for s in suites.selected(work.spec, work.arch)[0]}
    return [(v.suite, v.test) for v in verdict.compare(cases, running) if v.blamed]


def new_splats(work: Work) -> list[str]:
    """Signatures of the splats on the tip's console that the base's console does not show."""
    mine = work.find("check", work.arch.name, Role.SERIES, "")
    base = work.find("check", work.arch.name, Role.BASE, "")
    if mine is None or mine.status != Status.FAIL:
        return []
    known = set(base.facts.get("splats", [])) if base is not None else set()
    return [s for s in mine.facts.get("splats", []) if s not in known]


def stage(work: Work) -> Outcome:
    items = [*regressed(work), *((SPLAT, s) for s in new_splats(work))]
    n = len(work.patches)
    if not items:
        return Outcome(Status.SKIP, f"no test regression and no new splat on {work.arch.name}: nothing to bisect")
    if n == 1:
        return _found(work, {item: 1 for item in items}, {}, 0, 0.0)
    steps = {s.index: s for s in per_patch.recorded(work)}
    probe = Probe(work, items, steps)
    start = time.monotonic()
    first: dict[tuple, int] = {}
    remaining, low = list(items), 1
    while remaining:
        k = probe.first_showing(low, n, remaining)
        shown = [i for i in remaining if i in probe.shows(k)]
        for item in shown:
            first[item] = k
        remaining = [i for i in remaining if i not in shown]
        low = k + 1
        if low > n:
            break
    return _found(work, first, probe.skipped, probe.booted, time.monotonic() - start)


def _found(work: Work, first: dict, skipped: dict, boots: int, seconds: float) -> Outcome:
    patches = {p.index: p for p in work.patches}
    n = len(work.patches)
    introduced = {f"{suite}\t{test}": k for (suite, test), k in first.items()}
    earliest = {}  # item -> the first patch it may come from, when the states before k could not be booted
    for (suite, test), k in first.items():
        j = k - 1
        while j in skipped:
            j -= 1
        if j < k - 1:
            earliest[f"{suite}\t{test}"] = j + 1
    by_patch: dict[int, int] = {}
    for k in first.values():
        by_patch[k] = by_patch.get(k, 0) + 1
    said = [f"patch {k}/{n} '{patches[k].subject}': {c} item(s)" for k, c in sorted(by_patch.items())]
    if skipped:
        said.append("not bootable: " + ", ".join(f"patch {k}/{n} ({why})" for k, why in sorted(skipped.items())))
    cost = f"{boots} boot(s), {seconds:.0f} s" if boots else "no boot"
    return Outcome(Status.PASS, f"introduced by {'; '.join(said)} ({cost})",
                   facts={"introduced": introduced, "earliest": earliest, "total": n, "boots": boots,
                          "seconds": round(seconds, 1), "unbootable": {str(k): v for k, v in skipped.items()},
                          "subjects": {str(k): patches[k].subject for k in by_patch}})


class Probe:
    """Boots of the intermediate states with the narrowed initramfs, each state at most once."""

    def __init__(self, work: Work, items: list[tuple[str, str]], steps: dict):
        self.work, self.items, self.steps = work, items, steps
        self.n = len(work.patches)
        self.seen: dict[int, set] = {0: set(), self.n: set(items)}  # the base is clean, the tip is not
        self.booted = 0
        self.skipped: dict[int, str] = {}
        self.dir = work.lane.dir / f"bisect-{work.lane.name}"
        self.initrd: Path | None = None

    def first_showing(self, low: int, high: int, wanted: list) -> int:
        """The first state in low..high that shows any wanted item (high shows them all)."""
        while low < high:
            mid = (low + high) // 2
            k = self.bootable(mid, low, high)
            if k is None:  # nothing bootable between low and high-1: high it is
                return high
            if any(i in self.shows(k) for i in wanted):
                high = k
            else:
                low = k + 1
        return high

    def bootable(self, mid: int, low: int, high: int) -> int | None:
        """mid, or the nearest state in [low, high) whose kernel can be booted (or is known)."""
        for k in sorted(range(low, high), key=lambda j: (abs(j - mid), j)):
            if self.known(k):
                return k
        return None

    def known(self, k: int) -> bool:
        """Can state k be told: booted already, a kernel kept, or the same kernel as state k-1."""
        if k in self.seen:
            return True
        step = self.steps.get(k)
        if step is None or step.status != Status.PASS:
            self.skipped[k] = "it does not build" if step is not None else "no step record"
            return False
        if step.skipped:  # nothing this arch compiles changed: the kernel of the state before
            if self.known(k - 1):
                return True
            self.skipped[k] = f"the kernel of patch {k - 1}"
            return False
        if not step.kernel or not Path(step.kernel).is_file():
            self.skipped[k] = "its kernel was not kept"
            return False
        return True

    def shows(self, k: int) -> set:
        """The items state k shows (call only when known(k))."""
        if k not in self.seen:
            step = self.steps[k]
            if step.skipped:
                self.seen[k] = self.shows(k - 1)
            else:
                self.booted += 1
                self.seen[k] = self._boot(k, Path(step.kernel))
        return self.seen[k]

    def _boot(self, k: int, kernel: Path) -> set:
        work = self.work
        if self.initrd is None:
            self.initrd = self._initramfs()
        name = f"{kernel.suffix.lstrip('.')}-patch{k}"  # bzImage-patch2
        shutil.copyfile(kernel, self.dir / name)
        chosen = self._suites()
        work.ctx.progress.say("bisect", work.lane.name, f"booting the kernel of patch {k}/{self.n} "
                              f"({len(self.items)} item(s) to place)")
        booted = boot.run(work.ctx, work.arch, self.dir, self.dir / name, self.initrd,
                          extra_seconds=sum(s.timeout for s in chosen), name=f"console-patch{k}")
        lines = booted.console.read_text(errors="replace").splitlines()
        shown = set()
        ktap = suites.reader(work)
        for suite in chosen:
            got = {c.test: c.status for c in suites.lane_results(work, suite, lines, ktap=ktap)}
            shown |= {(s, t) for s, t in self.items if s == suite.name and got.get(t) != Status.PASS}
        splats = {t for s, t in self.items if s == SPLAT}
        if splats:
            found = set(check.scan(booted.console, work.arch.name)[1])
            shown |= {(SPLAT, t) for t in splats & found}
        return shown

    def _suites(self) -> list:
        """The suites that hold a regressed test, narrowed to those tests where the suite has an
        allow flag; for a new splat every suite, whole (any test may be what sets it off)."""
        built = userspace.built_suites(self.work)
        if any(suite == SPLAT for suite, _ in self.items):
            return built
        wanted: dict[str, set[str]] = {}
        for suite, test in self.items:
            wanted.setdefault(suite, set()).add(test.split("/")[0])
        return [dataclasses.replace(s, allow=tuple(sorted(wanted[s.name]))) if s.allow_flag else s
                for s in built if s.name in wanted]

    def _initramfs(self) -> Path:
        work = self.work
        self.dir.mkdir(parents=True, exist_ok=True)
        chosen = self._suites()
        made = work.need("userspace").artifacts
        gone = [s.name for s in chosen if s.kind == "guest" and not Path(made[s.name]).exists()]
        if gone:  # the tip's results were taken over from a run whose suite builds were deleted since
            raise InfraError(f"cannot bisect on {work.arch.name}: the build of {', '.join(gone)} that the tip's "
                             "results came from is gone; rerun with --rerun-tests to build and boot afresh")
        return cpio.build(work.ctx, work.image(work.arch.toolchain), work.src, work.arch, self.dir,
                          userspace.trees(work, chosen, self.dir), suites.manifest(chosen, work.arch))
