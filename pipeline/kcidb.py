"""KCIDB v5 export of one run (kcidb.json in the run directory), for teams that
report into KernelCI's common database.

Two checkouts per run: the base commit alone and the base with the series'
patches (patchset_hash as KCIDB defines it). Each lane's kernel is a build;
every testcase of a lane is a test of that build, with a dotted path
(suite.test.subtest). Cases that belong to no arch (apply, symbols,
checkpatch) hang off a build named 'static' of the series checkout.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from pathlib import Path

from .results import Case, RunRecord, StageRecord

ORIGIN = "kseries"
VERSION = {"major": 5, "minor": 3}
BASE_PREFIX = "base-"
BUILD_STAGES = ("build", "base-build")


def _time(text: str) -> str | None:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").isoformat()
    except (ValueError, TypeError):
        return None


def _part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "_"


def test_path(case: Case) -> str:
    """suite.name with the arch prefix gone and each '/' a level: nolibc.syscall_mmap_munmap_good."""
    suite = case.suite.removeprefix(BASE_PREFIX)
    name = case.name
    if case.arch and name.startswith(case.arch + ": "):
        name = name[len(case.arch) + 2:]
    if name.startswith(suite + ": "):
        name = name[len(suite) + 2:]
    patch = re.match(r"patch (\d+)/(\d+)(?:: (.*))?$", name)
    if patch:  # a patch's own check: the subject stays in the comment, one word only in the path
        rest = patch.group(3) or ""
        parts = [f"patch_{patch.group(1)}_of_{patch.group(2)}"] + ([rest] if rest and " " not in rest else [])
    else:
        parts = [p for p in re.split(r"/|: ", name) if p.strip()]
    return ".".join([_part(suite)] + [_part(p) for p in parts])


def patchset_hash(patches: list[Path]) -> str:
    inner = "".join(hashlib.sha256(p.read_bytes()).hexdigest() + "\n" for p in patches)
    return hashlib.sha256(inner.encode()).hexdigest() if patches else ""


def export(record: RunRecord, run_dir: Path) -> dict:
    prov = record.provenance
    started = _time(record.started)
    run = _part(record.run_id)
    patches = sorted((run_dir / "series" / "patches").glob("*.patch"))
    checkouts = []
    for lane, files in (("base", []), ("series", patches)):
        co = {"id": f"{ORIGIN}:{run}:{lane}", "origin": ORIGIN, "tree_name": record.series,
              "git_commit_hash": prov.get("base-commit") or None, "patchset_hash": patchset_hash(files),
              "patchset_files": [{"name": p.name, "url": p.resolve().as_uri()} for p in files],
              "comment": record.title + (" (base)" if lane == "base" else ""),
              "valid": not any(s.stage in ("source", "apply") and s.status.value != "PASS" for s in record.stages)
              if lane == "series" else True}
        if started:
            co["start_time"] = started
        checkouts.append({k: v for k, v in co.items() if v is not None})
    builds, tests = [], []

    def build_id(lane: str, arch: str) -> str:
        return f"{ORIGIN}:{run}:{lane}:{arch or 'static'}"

    seen: set[str] = set()
    for stage in record.stages:
        lane = "base" if stage.stage.startswith(BASE_PREFIX) else "series"
        if stage.stage in BUILD_STAGES:
            builds.append(_build(stage, build_id(lane, stage.arch), f"{ORIGIN}:{run}:{lane}", started, run_dir))
            seen.add(build_id(lane, stage.arch))
    for stage in record.stages:
        lane = "base" if stage.stage.startswith(BASE_PREFIX) else "series"
        for i, case in enumerate(stage.cases):
            if stage.stage in BUILD_STAGES:
                continue  # the build itself
            bid = build_id(lane, case.arch)
            if bid not in seen:
                seen.add(bid)
                builds.append({"id": bid, "origin": ORIGIN, "checkout_id": f"{ORIGIN}:{run}:{lane}",
                               **({"architecture": case.arch} if case.arch else {}),
                               "comment": "no kernel build: checks on the patches themselves" if not case.arch
                               else "build not recorded in this run"})
            test = {"id": f"{bid}:{_part(stage.stage)}:{i}", "origin": ORIGIN, "build_id": bid,
                    "path": test_path(case), "status": case.status.value, "duration": round(case.seconds, 3),
                    "comment": case.name}
            excerpt = (case.message + ("\n" + case.detail if case.detail else "")).replace("\0", "")
            if excerpt:
                test["log_excerpt"] = excerpt[:16384]
            if case.flaky:
                test["misc"] = {"flaky": True}
            tests.append(test)
    return {"version": VERSION, "checkouts": checkouts, "builds": builds, "tests": tests}


def _build(stage: StageRecord, bid: str, checkout: str, started: str | None, run_dir: Path) -> dict:
    """Logs and configs are linked as file:// URLs of the run directory (KCIDB wants absolute URLs)."""
    build = {"id": bid, "origin": ORIGIN, "checkout_id": checkout, "architecture": stage.arch,
             "status": stage.status.value, "duration": stage.seconds, "comment": stage.message}
    lane_dir = run_dir.resolve() / (("base-" if stage.stage.startswith(BASE_PREFIX) else "") + stage.arch)
    for key, name in (("config_url", "config"), ("log_url", "build.log")):
        if (lane_dir / name).exists():
            build[key] = (lane_dir / name).as_uri()
    if started:
        build["start_time"] = started
    if stage.status.value != "PASS" and stage.cases and stage.cases[0].detail:
        build["log_excerpt"] = stage.cases[0].detail.replace("\0", "")[:16384]
    return build


def write(record: RunRecord, run_dir: Path) -> Path:
    path = run_dir / "kcidb.json"
    path.write_text(json.dumps(export(record, run_dir), indent=1))
    return path
