"""Typed results, written once per stage and read by every reporter.

One status vocabulary (KCIDB's): PASS; FAIL blames the series; ERROR blames
the machine (Docker, QEMU, disk, network, timeouts); MISS means kseries itself
failed (a bug in the harness); SKIP always carries its reason.

A Case's structure is in fields (role, arch, stage, suite, test, patch); its
display name is rendered from them, and no reporter parses it back.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path

from pipeline.model.lane import Role

SCHEMA = 2


class Status(str, Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"
    MISS = "MISS"
    SKIP = "SKIP"

    @staticmethod
    def worst(statuses) -> "Status":
        present = set(statuses)
        for s in (Status.MISS, Status.ERROR, Status.FAIL, Status.PASS, Status.SKIP):
            if s in present:
                return s
        return Status.SKIP

    @property
    def broken(self) -> bool:
        """Not the series' fault: the machine (ERROR) or kseries itself (MISS)."""
        return self in (Status.ERROR, Status.MISS)


@dataclass
class Case:
    """One JUnit testcase."""

    stage: str  # the stage that produced it: apply, build, boot, suite, ...
    test: str  # what was tested, within the stage (and suite): "bzImage", "syscall.mmap_munmap_good"
    status: Status
    seconds: float = 0.0
    message: str = ""  # one line: why it failed / was skipped
    detail: str = ""  # log excerpt
    arch: str = ""
    role: Role = Role.SERIES
    suite: str = ""  # the guest test suite, for stage "suite"
    patch: int = 0  # 1-based index of the patch it is about; 0: the whole series
    patches: int = 0  # the series' length, with patch
    flaky: bool = False  # failed, then passed when the guest ran again
    since: int = 0  # a failure first seen at this patch of the series (still broken since): no new blame

    @property
    def group(self) -> str:
        """The JUnit testsuite it belongs to (without lane and arch): the suite, else the stage."""
        return self.suite or self.stage

    @property
    def name(self) -> str:
        patch = f"patch {self.patch}/{self.patches}" if self.patch else ""
        return ": ".join(p for p in (self.arch, patch, self.suite, self.test) if p)

    @classmethod
    def from_dict(cls, data: dict) -> "Case":
        return cls(**{**data, "status": Status(data["status"]), "role": Role(data["role"])})


@dataclass
class StageResult:
    """What one stage of one lane (or of the whole series: arch "") produced."""

    stage: str
    arch: str  # "" for stages shared by all arches
    role: Role
    status: Status
    seconds: float
    message: str = ""
    suite: str = ""  # for stage "suite": which guest test suite
    cases: list[Case] = field(default_factory=list)
    facts: dict = field(default_factory=dict)  # timings, accel, cache use, ...
    artifacts: dict = field(default_factory=dict)  # name -> path, read by the stages after it
    key: str = ""  # digest of its inputs: a result with the same key may be reused (--resume)
    reused: str = ""  # where it was taken from instead of running (a cache or an earlier run)
    blocked: bool = False  # SKIP because a stage it needs did not pass
    fault: str = ""  # when not PASS and not the series': input, infra, harness or interrupted
    started: float = -1.0  # seconds into the run (this attempt of it) when it started; -1: not known
    thread: str = ""  # where it ran: lanes (the builds), guest (the boots) or beside (checkpatch, ...)

    @property
    def where(self) -> str:
        """For humans: "build x86_64", "base-boot sh4", "suite nolibc x86_64"."""
        return " ".join(p for p in (self.role.tag(self.stage), self.suite, self.arch) if p)

    @classmethod
    def from_dict(cls, data: dict) -> "StageResult":
        return cls(**{**data, "status": Status(data["status"]), "role": Role(data["role"]),
                      "cases": [Case.from_dict(c) for c in data["cases"]]})


class Kind(str, Enum):
    """A suite test of the series against the same test on the base."""

    OK = "ok"
    REGRESSION = "regression"
    GONE = "gone"  # passed on the base, did not run on the series
    PRE_EXISTING = "pre-existing"
    FIXED = "fixed"
    FLAKY = "flaky"
    NEW = "new"
    SKIPPED = "skipped"
    NOT_RUN = "not-run"  # the series' lane could not build or boot: not a regression
    ERROR = "error"

    @property
    def blamed(self) -> bool:
        return self in (Kind.REGRESSION, Kind.GONE)


@dataclass
class Verdict:
    arch: str
    suite: str
    test: str
    base: str  # PASS/FAIL/SKIP/ERROR, or "missing"
    series: str
    kind: Kind
    excerpt: str = ""
    patch: int = 0  # the patch that introduced a regression (stages/bisect.py); 0: not known
    introduced: str = ""  # "patch 2/3 'subject'"

    @property
    def blamed(self) -> bool:
        return self.kind.blamed

    @classmethod
    def from_dict(cls, data: dict) -> "Verdict":
        return cls(**{**data, "kind": Kind(data["kind"])})


@dataclass
class RunRecord:
    run_id: str
    series: str
    title: str
    arches: list[str]
    started: str
    finished: str = ""
    seconds: float = 0.0
    provenance: dict = field(default_factory=dict)
    stages: list[StageResult] = field(default_factory=list)
    exit_code: int | None = None
    error: str = ""
    verdicts: list[Verdict] = field(default_factory=list)
    verdict: str = ""  # the one-line answer, as the summary ends
    interrupted: str = ""  # the signal that stopped the run: SIGINT or SIGTERM
    schema: int = SCHEMA

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1, default=str))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "RunRecord":
        from pipeline.infra.errors import UserError

        data = json.loads(path.read_text())
        if data.get("schema") != SCHEMA:
            raise UserError(f"{path} was written by another version of kseries (results schema "
                            f"{data.get('schema', 1)}, this one reads {SCHEMA}). Rerun the series to get "
                            "results this version can read.")
        return cls(**{**data, "stages": [StageResult.from_dict(s) for s in data["stages"]],
                      "verdicts": [Verdict.from_dict(v) for v in data["verdicts"]]})

    def find(self, stage: str, arch: str = "", role: Role = Role.SERIES, suite: str = "") -> StageResult | None:
        for s in self.stages:
            if (s.stage, s.arch, s.role, s.suite) == (stage, arch, role, suite):
                return s
        return None

    @property
    def cases(self) -> list[Case]:
        return [c for s in self.stages for c in s.cases]
