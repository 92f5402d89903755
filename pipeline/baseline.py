"""The base commit as the reference: its lane results, cached, and the per-test verdict.

The base lanes run the same kernel config, toolchain and suites as the
series' lanes. Their results are cached under a key of everything that
decides them (base commit, arch data, fragments, toolchain image, suites and
their scripts, /init), so another series or a new revision on the same base
reuses them without building or booting anything.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from . import build, config, suites
from .initramfs import INIT_SOURCE
from .results import Case, StageRecord, Status

PREFIX = "base-"
BLAMED = ("regression", "gone")


@dataclass
class Verdict:
    arch: str
    suite: str
    test: str
    base: str  # PASS/FAIL/SKIP/ERROR, or "missing"
    series: str
    kind: str  # ok, regression, pre-existing, fixed, flaky, new, gone, skipped, error
    excerpt: str = ""

    @property
    def blamed(self) -> bool:
        return self.kind in BLAMED


def key(spec: config.Series, arch: config.Arch, base_commit: str, image: str) -> str:
    runs, skips = suites.selected(spec, arch)
    parts = [
        base_commit, image, repr(dataclasses.asdict(arch)),
        [(p.name, p.read_bytes()) for p in build.fragments_for(arch, spec)],
        [(s.path.read_bytes(), s.script.read_bytes()) for s in runs],
        sorted(s.name for s, _ in skips), INIT_SOURCE.read_bytes(),
    ]
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:20]


def cache_path(cache: Path, cache_key: str) -> Path:
    return cache / "baselines" / f"{cache_key}.json"


def load(cache: Path, cache_key: str) -> list[StageRecord] | None:
    path = cache_path(cache, cache_key)
    if not path.exists():
        return None
    return [StageRecord.from_dict(s) for s in json.loads(path.read_text())["stages"]]


def save(cache: Path, cache_key: str, stages: list[StageRecord], run_id: str) -> None:
    """Only complete, infrastructure-clean baselines are kept."""
    if any(s.status == Status.ERROR for s in stages):
        return
    path = cache_path(cache, cache_key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"run_id": run_id, "stages": [dataclasses.asdict(s) for s in stages]},
                              indent=1, default=str))
    tmp.replace(path)


def compare(base: list[Case], series: list[Case], suite_names: set[str]) -> list[Verdict]:
    """Test by test, for the suites' testcases of one arch: base (suite 'base-X') against series (suite 'X')."""
    before = {(c.suite[len(PREFIX):], c.name): c for c in base
              if c.suite.startswith(PREFIX) and c.suite[len(PREFIX):] in suite_names}
    after = {(c.suite, c.name): c for c in series if c.suite in suite_names}
    out = []
    for k in list(dict.fromkeys([*before, *after])):
        b, a = before.get(k), after.get(k)
        bs = b.status.value if b else "missing"
        as_ = a.status.value if a else "missing"
        arch = (a or b).arch
        excerpt = ""
        if a is None:
            kind = "gone" if bs == "PASS" else "ok"
        elif a.flaky:
            kind = "flaky"
        elif a.status == Status.ERROR or (b and b.status == Status.ERROR):
            kind = "error"
        elif a.status == Status.SKIP:
            kind = "skipped" if bs in ("SKIP", "missing") else ("regression" if bs == "PASS" else "skipped")
        elif b is None:
            kind = "new" if a.status == Status.PASS else "regression"
        elif a.status == Status.FAIL:
            kind = "pre-existing" if b.status == Status.FAIL else "regression"
        else:
            kind = "fixed" if b.status == Status.FAIL else "ok"
        if kind in ("regression", "gone", "pre-existing", "flaky"):
            src = a or b
            excerpt = (src.message + "\n" + src.detail[-1500:]).strip()
        out.append(Verdict(arch, k[0], k[1], bs, as_, kind, excerpt))
    return out
