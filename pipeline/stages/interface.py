"""The one stage interface: `def stage(work: Work) -> Outcome`.

A stage gets its typed inputs in a Work - the run's context, the series, the
lane it runs for (None for the stages shared by every lane), the guest suite
(for the per-suite stage) and the results of the stages before it - and gives
back one Outcome. It never touches the run record, the graph or other lanes'
state: the run loop (pipeline/run/loop.py) times it, persists it, and turns any
exception it raises into that stage's ERROR (or MISS, for a bug in kseries).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from pipeline.model import config
from pipeline.model.lane import Lane, Role, base_builds
from pipeline.model.results import Case, StageResult, Status


@dataclass
class Outcome:
    status: Status
    message: str = ""
    cases: list[Case] = field(default_factory=list)
    facts: dict = field(default_factory=dict)
    artifacts: dict = field(default_factory=dict)  # name -> str (absolute paths are checked on reuse)
    fault: str = ""  # who is to blame when not PASS: "input" (the user's input), else decided by status
    adopt: list[StageResult] = field(default_factory=list)  # results taken over for this lane's later stages


@dataclass
class Work:
    ctx: object  # infra.context.Context
    spec: config.SeriesConfig
    patches: list  # model.series.Patch, as kept in the run directory
    lane: Lane | None
    find: Callable[..., StageResult | None]  # (stage, arch, role, suite) -> a finished result
    suite: config.Suite | None = None
    provenance: dict = field(default_factory=dict)  # what this stage adds to the run's provenance
    arches: tuple = ()  # the run's arches (config.Arch), for the stages that look across lanes
    dirs: str = ""  # the name of the series' kept worktree and build directories (default: its name)

    @property
    def arch(self) -> config.Arch:
        """The lane's arch, with the config fragment the derive stage wrote for it, once it has."""
        arch = self.lane.arch
        derived = self.find("derive", arch.name, self.lane.role, "")
        fragment = derived.artifacts.get("fragment") if derived is not None else None
        if not fragment:
            return arch
        # a derived fragment is a file in the cache, named by its content (configs name theirs)
        return replace(arch, kernel=replace(arch.kernel, fragments=(*arch.kernel.fragments, fragment)))

    def need(self, stage: str, suite: str = "") -> StageResult:
        """A result of this lane's (or, for shared stages, the series') earlier stage."""
        lane = self.lane
        found = self.find(stage, lane.arch.name if lane else "", lane.role if lane else Role.SERIES, suite)
        if found is None:
            found = self.find(stage, "", Role.SERIES, suite)
        if found is None:
            raise LookupError(f"stage {stage} has no result: the graph does not order it before this one")
        return found

    def other(self, stage: str, role: Role) -> StageResult | None:
        """The same arch's stage in the other role (the base build, for the series' warnings)."""
        return self.find(stage, self.lane.arch.name, role, "")

    @property
    def src(self) -> Path:
        """The source tree this lane builds: the series' worktree, or the base's."""
        if self.lane.is_base:
            return Path(self.need("checkout").artifacts["worktree"])
        return Path(self.need("apply").artifacts["worktree"])

    @property
    def builds(self) -> str:
        """The name of the lane's kept build directories: the series', or the base's for this
        lane's config (each config's base is kept apart: stages/build.config_key)."""
        if self.lane.is_base:
            from pipeline.stages.build import config_key

            return base_builds(self.need("source").artifacts["commit"],
                               config_key(self.arch, self.spec, self.image(self.arch.toolchain)))
        return self.series_dirs

    @property
    def series_dirs(self) -> str:
        """The name of the series' kept worktree and build directories: the series' name, or another
        while a run of the same series with other patches holds those (run/pipeline.py)."""
        return self.dirs or self.spec.name

    def image(self, name: str) -> str:
        """A container image by its configs/images name, built if needed; its id goes into the provenance."""
        tag = self.ctx.images.ensure(name, self.ctx.log("images.log"))
        self.provenance[f"image-{name}"] = f"{tag} {self.ctx.images.image_id(tag)[:19]}"
        return tag
