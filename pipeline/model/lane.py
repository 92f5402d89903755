"""A lane: one architecture's kernel for one role - the series, or the base it is compared with.

This module is the only place that knows how a role is spelled in names and
directories (the base's lane directory, its JUnit suites and its kept build
directories carry the prefix "base-"); everything else asks the lane.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path


class Role(str, Enum):
    SERIES = "series"
    BASE = "base"

    @property
    def prefix(self) -> str:
        """How names of this role's things begin: "" for the series, "base-" for the base."""
        return "base-" if self is Role.BASE else ""

    def tag(self, name: str) -> str:
        return self.prefix + name


@dataclass(frozen=True)
class Lane:
    """arch and role, and the run directory that holds its artifacts (the source tree it builds
    and its kept build directories come from its stages: stages/interface.py Work.src, .builds)."""

    arch: object  # model.config.Arch
    role: Role
    run_dir: Path

    @property
    def name(self) -> str:
        """x86_64 or base-x86_64: its directory in the run, its logs, progress lines."""
        return self.role.tag(self.arch.name)

    @property
    def dir(self) -> Path:
        return self.run_dir / self.name

    @property
    def is_base(self) -> bool:
        return self.role is Role.BASE


def base_tree(commit: str) -> str:
    """The name of the base's kept worktree at commit, shared by every arch and series on that base."""
    return Role.BASE.tag(commit[:12])


def base_builds(commit: str, config: str) -> str:
    """The name of the base's kept build directories at commit for one kernel config (config: the
    digest of what decides it, stages/build.config_key, which names the arch too): shared by every
    series on that base whose lane has that config, so each config's base is built once and kept."""
    return f"{base_tree(commit)}-{config[:10]}"
