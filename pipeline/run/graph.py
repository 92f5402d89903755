"""The stage graph, declared once: which stages run, for which lanes, after what.

Shared stages run once per run; lane stages once per (arch, role) lane; suite
stages once per test suite of the lane. A stage runs only when every stage it
needs ended in one of the statuses that need accepts; otherwise it is SKIP
with the reason written here. Guest stages (the boots, and what comes after
them: the intermediate states' builds) run in the guest thread, so one arch
boots while the next one builds. Shared stages no lane needs (checkpatch, the
removed symbols) run beside the lanes in a third thread.

`key` gives a digest of a stage's own inputs (besides the stages it needs): a
result of an earlier run with the same key is reused by --resume. A stage
without one always runs (it is cheap, or keeps its own cache).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

from pipeline.model.lane import Role
from pipeline.model.results import Status
from pipeline.run import reuse
from pipeline.stages import (apply, bisect, boot, build, check, checkpatch, coverage, derive, per_patch, source,
                             suites, symbols, tests, userspace)
from pipeline.stages.interface import Outcome, Work

RAN = frozenset({Status.PASS, Status.FAIL})
DONE = frozenset({Status.PASS, Status.FAIL, Status.ERROR, Status.SKIP})
ANY = frozenset(Status)
PASSED = frozenset({Status.PASS})


@dataclass(frozen=True)
class Need:
    stage: str
    ok: frozenset = PASSED
    why: str = "{stage} {arch} did not pass"  # the SKIP reason; {arch} and {stage} are filled in


@dataclass(frozen=True)
class Node:
    name: str
    run: Callable[[Work], Outcome]
    needs: tuple[Need, ...] = ()
    scope: str = "lane"  # shared (before the lanes) | lane | suite (per suite of a lane) | final (after them)
    roles: tuple[Role, ...] = (Role.SERIES, Role.BASE)
    guest: bool = False  # runs in the guest thread
    key: Callable[[Work], str] | None = None  # None: always runs
    reported: bool = True  # a SKIP for a failed dependency is a testcase
    beside: bool = False  # a shared stage no lane needs: it runs in a thread of its own beside the lanes


def digest(*parts) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:20]


APPLIED = Need("apply", why="the series did not apply")
GRAPH: tuple[Node, ...] = (
    Node("source", source.stage, scope="shared"),
    Node("apply", apply.stage, (Need("source", why="the base tree is unavailable"),), scope="shared"),
    Node("symbols", symbols.stage, (Need("apply", RAN),), scope="shared", key=lambda w: "", beside=True),
    Node("checkpatch", checkpatch.stage, (Need("apply", RAN),), scope="shared",
         key=lambda w: repr(w.spec.checkpatch), beside=True),
    Node("tests", tests.stage, (APPLIED,), scope="shared", key=tests.key),
    Node("derive", derive.stage, (APPLIED,), reported=False),
    Node("reuse", reuse.stage, (APPLIED,), reported=False),
    Node("checkout", apply.checkout, (APPLIED,), roles=(Role.BASE,), reported=False),
    Node("build", build.stage, (APPLIED, Need("checkout", why="the base could not be checked out")),
         key=build.key),
    Node("compiled", coverage.lane, (Need("build", why="the {arch} kernel build did not pass"),),
         roles=(Role.SERIES,), reported=False, key=lambda w: repr(coverage.changed(w.patches))),
    Node("userspace", userspace.stage, (Need("build", why="the {arch} kernel build did not pass"),),
         key=userspace.key),
    Node("initramfs", userspace.initramfs, (Need("userspace", DONE, why="the {arch} suites were not built"),),
         key=userspace.initramfs_key, reported=False),
    Node("boot", boot.stage, (Need("initramfs", why="the {arch} initramfs could not be made"),), guest=True,
         key=boot.key),
    Node("check", check.stage, (Need("boot", RAN, why="the {arch} kernel did not run (boot {status})"),),
         guest=True, key=check.key),
    Node("boot-retry", boot.retry, (Need("boot", RAN, why="the {arch} kernel did not run (boot {status})"),), guest=True,
         reported=False, key=lambda w: ""),
    Node("suite", suites.stage, (Need("boot", RAN, why="the {arch} kernel did not run (boot {status})"),
                                 Need("boot-retry", DONE)), scope="suite", guest=True, key=suites.key),
    # the intermediate states after the tip's build, boot and tests: the tip's answer comes first
    Node("steps", per_patch.steps, (APPLIED, Need("build", ANY)), roles=(Role.SERIES,), guest=True,
         reported=False),
    Node("per-patch", per_patch.stage, (Need("steps", DONE), Need("build", ANY)), roles=(Role.SERIES,),
         guest=True, reported=False),
    Node("bisect", bisect.stage, (Need("boot", RAN, why="the {arch} kernel did not run (boot {status})"),
                                  Need("check", DONE), Need("boot-retry", DONE), Need("steps", DONE)),
         roles=(Role.SERIES,), guest=True, reported=False, key=lambda w: ""),
    Node("coverage", coverage.summary, (APPLIED,), scope="final"),
)


def node(name: str) -> Node:
    return next(n for n in GRAPH if n.name == name)
