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
import os
import re
from datetime import datetime
from pathlib import Path

from pipeline.model.results import Case, RunRecord, StageResult, Status

ORIGIN = "kseries"
VERSION = {"major": 5, "minor": 3}
STATUSES = {"PASS", "FAIL", "ERROR", "MISS", "SKIP"}


def _time(text: str) -> str | None:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").isoformat()
    except (ValueError, TypeError):
        return None


def _part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "_"


def test_path(case: Case) -> str:
    """group.test with each '/' a level: nolibc.syscall_mmap_munmap_good; a patch's own check is
    group.patch_K_of_N (its subject stays in the comment, one word only in the path)."""
    if case.patch:
        rest = [case.test] if case.test and " " not in case.test else []
        parts = [f"patch_{case.patch}_of_{case.patches}", *rest]
    else:
        parts = [p for p in re.split(r"/|: ", case.test) if p.strip()]
    return ".".join([_part(case.group)] + [_part(p) for p in parts])


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
              "patchset_files": [{"name": p.name, "url": url(run_dir, p)} for p in files],
              "comment": record.title + (" (base)" if lane == "base" else ""),
              "valid": not any(s.stage in ("source", "apply") and s.status != Status.PASS for s in record.stages)
              if lane == "series" else True}
        if started:
            co["start_time"] = started
        checkouts.append({k: v for k, v in co.items() if v is not None})
    builds, tests = [], []

    def build_id(lane: str, arch: str) -> str:
        return f"{ORIGIN}:{run}:{lane}:{arch or 'static'}"

    seen: set[str] = set()
    introduced = {(v.arch, v.suite, v.test): v for v in record.verdicts if v.blamed and v.introduced}
    for stage in record.stages:
        lane = stage.role.value
        if stage.stage == "build":
            builds.append(_build(stage, build_id(lane, stage.arch), f"{ORIGIN}:{run}:{lane}", started, run_dir))
            seen.add(build_id(lane, stage.arch))
    for stage in record.stages:
        lane = stage.role.value
        for i, case in enumerate(stage.cases):
            if stage.stage == "build":
                continue  # the build itself
            bid = build_id(lane, case.arch)
            if bid not in seen:
                seen.add(bid)
                builds.append({"id": bid, "origin": ORIGIN, "checkout_id": f"{ORIGIN}:{run}:{lane}",
                               **({"architecture": case.arch} if case.arch else {}),
                               "comment": "no kernel build: checks on the patches themselves" if not case.arch
                               else "build not recorded in this run"})
            test = {"id": f"{bid}:{_part(stage.stage)}:{_part(stage.suite)}:{i}", "origin": ORIGIN, "build_id": bid,
                    "path": test_path(case), "status": case.status.value, "duration": round(case.seconds, 3),
                    "comment": case.name}
            excerpt = (case.message + ("\n" + case.detail if case.detail else "")).replace("\0", "")
            if excerpt:
                test["log_excerpt"] = excerpt[:16384]
            if case.flaky:
                test["misc"] = {"flaky": True}
            by = introduced.get((case.arch, case.suite, case.test)) if case.role.value == "series" else None
            if by is not None:
                test["misc"] = {**test.get("misc", {}), "introduced_by_patch": by.patch,
                                "introduced_by": by.introduced}
            tests.append(test)
    return {"version": VERSION, "checkouts": checkouts, "builds": builds, "tests": tests}


def url(run_dir: Path, path: Path) -> str:
    """Where a file of the run is read: under KSERIES_LOGS_URL (where the run directories are
    published, e.g. the dashboard) when set, else as a file:// URL (KCIDB wants absolute URLs)."""
    base = os.environ.get("KSERIES_LOGS_URL", "").rstrip("/")
    if base:
        return f"{base}/{run_dir.name}/{path.resolve().relative_to(run_dir.resolve())}"
    return path.resolve().as_uri()


def _build(stage: StageResult, bid: str, checkout: str, started: str | None, run_dir: Path) -> dict:
    build = {"id": bid, "origin": ORIGIN, "checkout_id": checkout, "architecture": stage.arch,
             "status": stage.status.value, "duration": stage.seconds, "comment": stage.message}
    lane_dir = run_dir.resolve() / stage.role.tag(stage.arch)
    for key, name in (("config_url", "config"), ("log_url", "build.log")):
        if (lane_dir / name).exists():
            build[key] = url(run_dir, lane_dir / name)
    if started:
        build["start_time"] = started
    if stage.status != Status.PASS and stage.cases and stage.cases[0].detail:
        build["log_excerpt"] = stage.cases[0].detail.replace("\0", "")[:16384]
    return build


def write(record: RunRecord, run_dir: Path) -> Path:
    """kcidb.json, validated against KCIDB's own schema (kcidb-io) as it is written: an export the
    schema rejects is kept as kcidb.invalid.json with the reason, never passed off as valid."""
    import kcidb_io

    data = export(record, run_dir)
    path = run_dir / "kcidb.json"
    try:
        kcidb_io.schema.LATEST.validate(data)
    except Exception as exc:  # noqa: BLE001 - jsonschema's errors, whatever their class
        bad = run_dir / "kcidb.invalid.json"
        bad.write_text(json.dumps({"error": str(exc)[:2000], "data": data}, indent=1))
        path.unlink(missing_ok=True)
        return bad
    path.write_text(json.dumps(data, indent=1))
    return path
