"""The base commit's lanes as a cache: their results, kept under a key of their inputs.

The base lanes run the same kernel config, toolchain and suites as the
series' lanes. Their results are cached under a key of everything that
decides them (base commit, arch data, fragments, toolchain image, suites and
their scripts, /init, the results schema), so another series or a new revision
on the same base reuses them without building or booting anything.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from pipeline.model import config
from pipeline.model.results import SCHEMA, StageResult, Status
from pipeline.stages import build, suites
from pipeline.stages.initramfs import INIT_SOURCE
from pipeline.stages.interface import Outcome, Work


# the code that turns a console into results: when it changes, cached base results may read differently
INTERPRETERS = ("suites.py", "parsers.py", "check.py", "boot.py")


def key(spec: config.SeriesConfig, arch: config.Arch, base_commit: str, image: str) -> str:
    runs, skips = suites.selected(spec, arch)
    here = Path(suites.__file__).parent
    parts = [
        SCHEMA, base_commit, image, repr(config.identity(arch)),
        [(p.name, p.read_bytes()) for p in build.fragments_for(arch, spec)],
        [(s.path.read_bytes(), s.script.read_bytes()) for s in runs],
        sorted(s.name for s, _ in skips), INIT_SOURCE.read_bytes(),
        [(name, (here / name).read_bytes()) for name in INTERPRETERS],
    ]
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:20]


def cache_path(cache: Path, cache_key: str) -> Path:
    return cache / "baselines" / f"{cache_key}.json"


def load(cache: Path, cache_key: str) -> list[StageResult] | None:
    path = cache_path(cache, cache_key)
    if not path.exists():
        return None
    try:
        return [StageResult.from_dict(s) for s in json.loads(path.read_text())["stages"]]
    except (ValueError, KeyError, TypeError):
        return None  # unreadable (another version's layout): build the base again


def save(cache: Path, cache_key: str, stages: list[StageResult], run_id: str) -> None:
    """Only complete, infrastructure-clean baselines are kept."""
    if not stages or any(s.status.broken or s.fault == "interrupted" for s in stages):
        return
    path = cache_path(cache, cache_key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"run_id": run_id, "stages": [dataclasses.asdict(s) for s in stages]},
                              indent=1, default=str))
    tmp.replace(path)


def stage(work: Work) -> Outcome:
    """Look the base lane up in the cache: found, its results stand for the lane's stages."""
    image = work.image(work.arch.toolchain)
    cache_key = key(work.spec, work.arch, work.need("source").artifacts["commit"], image)
    cached = load(work.ctx.cache, cache_key)
    if cached is None:
        why = "no cached base results" if not cache_path(work.ctx.cache, cache_key).exists() else \
            "the cached base results are unreadable (cut short, or another version's), so not trusted"
        return Outcome(Status.PASS, f"{why} ({cache_key}): building and testing the base",
                       facts={"reused": False}, artifacts={"key": cache_key})
    taken = [dataclasses.replace(r, reused=f"baseline cache {cache_key}") for r in cached if r.stage != "baseline"]
    return Outcome(Status.PASS, f"reusing the base results cached under {cache_key}: no base build, no base boot",
                   facts={"reused": True}, artifacts={"key": cache_key}, adopt=taken)
