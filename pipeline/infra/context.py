"""What every stage gets: where to write, where to cache, how to run things."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.infra.progress import Progress
from pipeline.infra.runner import Runner


def cache_root() -> Path:
    env = os.environ.get("KSERIES_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "kseries"


@dataclass
class Context:
    run_dir: Path
    cache: Path
    runner: Runner
    progress: Progress
    jobs: int = field(default_factory=lambda: len(os.sched_getaffinity(0)))
    _docker: object = None
    _images: object = None

    @property
    def docker(self):
        """Runs containers (pipeline/infra/containers.py)."""
        if self._docker is None:
            from pipeline.infra.containers import Docker

            self._docker = Docker(self.runner)
        return self._docker

    @property
    def images(self):
        """Builds and names kseries' images (pipeline/infra/images.py)."""
        if self._images is None:
            from pipeline.infra.images import Images

            self._images = Images(self.runner, self.docker.client, self.cache)
        return self._images

    def image(self, name: str) -> str:
        return self.images.ensure(name, self.log("images.log"))

    def log(self, name: str) -> Path:
        path = self.run_dir / "logs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path
