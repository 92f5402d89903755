"""Typed results, written once per stage and read by every reporter.

One status vocabulary (as KCIDB): PASS; FAIL blames the series; ERROR blames
the infrastructure; SKIP always carries its reason.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path


class Status(str, Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"
    SKIP = "SKIP"

    @staticmethod
    def worst(statuses) -> "Status":
        order = [Status.ERROR, Status.FAIL, Status.PASS, Status.SKIP]
        present = set(statuses)
        for s in order:
            if s in present:
                return s
        return Status.SKIP


@dataclass
class Case:
    """One JUnit testcase."""

    suite: str  # apply, build, boot, check, ...
    name: str
    status: Status
    seconds: float = 0.0
    message: str = ""  # one line: why it failed / was skipped
    detail: str = ""  # log excerpt
    arch: str = ""
    flaky: bool = False  # failed, then passed when the guest ran again


@dataclass
class StageRecord:
    stage: str
    arch: str  # "" for stages shared by all arches
    status: Status
    seconds: float
    message: str = ""
    log: str = ""  # path relative to the run directory
    cases: list[Case] = field(default_factory=list)
    facts: dict = field(default_factory=dict)  # timings, accel, cache use, ...

    @classmethod
    def from_dict(cls, data: dict) -> "StageRecord":
        cases = [Case(**{**c, "status": Status(c["status"])}) for c in data["cases"]]
        return cls(**{**data, "status": Status(data["status"]), "cases": cases})


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
    stages: list[StageRecord] = field(default_factory=list)
    exit_code: int | None = None
    error: str = ""
    verdicts: list[dict] = field(default_factory=list)  # baseline.Verdict as dicts, per suite test

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2, default=str))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "RunRecord":
        data = json.loads(path.read_text())
        return cls(**{**data, "stages": [StageRecord.from_dict(s) for s in data["stages"]]})

    def stage(self, name: str, arch: str = "") -> StageRecord | None:
        for s in self.stages:
            if s.stage == name and s.arch == arch:
                return s
        return None

    @property
    def cases(self) -> list[Case]:
        return [c for s in self.stages for c in s.cases]
