"""Entry points behind tasks.py: each returns an exit code; user and
infrastructure errors become one paragraph on stderr, never a traceback."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from . import intake, orchestrator
from .errors import KseriesError, UserError


def guarded(fn, *args, **kw) -> int:
    try:
        return fn(*args, **kw)
    except KseriesError as exc:
        print(textwrap.fill(f"kseries: {exc.kind}: {exc.message}", width=100), file=sys.stderr)
        return exc.exit_code


def ci(series: str | None, arches: list[str] | None, results: str = "results",
       request: intake.Request | None = None) -> int:
    spec, arch_list, got = orchestrator.plan(series, arches, request)
    pipe = orchestrator.Pipeline(spec, arch_list, Path(results).resolve(), got)
    code = pipe.run()
    print()
    print((pipe.run_dir / "summary.txt").read_text(), end="")
    print(f"JUnit: {pipe.run_dir / 'junit.xml'}  (results/latest -> {pipe.run_dir.name})")
    return code


def show_series(series: str | None, request: intake.Request | None = None) -> int:
    """The series as kseries would test it: patches, trailers, diffstat, base and sources."""
    spec, _, got = orchestrator.plan(series, None, request, need_base=False)
    got.discard()
    print(intake.describe(got), end="")
    print()
    print(f"series: {spec.name}   arches: {', '.join(spec.arches)}   tests: {', '.join(spec.tests)}")
    off = spec.base.offline
    print(f"base: git {spec.base.git_url} at {spec.base.commit[:12] or '(unknown: no base-commit: trailer)'}" + (
        f", else Debian {off.package} ({off.suite})"
        + (f" with the patches in {off.reverse_patches} reverse-applied" if off.reverse_patches else "")
        if off else ""))
    if not (request and request.given):
        print(f"patches: lore {spec.lore_url}/{spec.message_id}/t.mbox.gz, else the offline copy {spec.patch_dir}")
    return 0


def dashboard(results: str, db_path: str, output: str, junit: list[str], serve: bool, port: int) -> int:
    """Ingest every run under results (and any JUnit files) into the store, then build the site."""
    from . import dashboard as site, store

    root = Path(results)
    db = store.open_db(Path(db_path) if db_path else root / "kseries.db")
    ingested = store.ingest_tree(db, root)
    for path in junit:
        if not Path(path).is_file():
            raise UserError(f"--junit {path}: no such file. Pass a JUnit XML report.")
        ingested.append(store.ingest_junit(db, Path(path)))
    out = Path(output) if output else root / "dashboard"
    index = site.build_site(db, out)
    print(f"{len(ingested)} run(s) ingested into {db_path or root / 'kseries.db'}")
    print(f"dashboard: {index.resolve()}")
    if serve:
        site.serve(out, port)
    return 0


def merge_reports(inputs: list[str], output: str) -> int:
    import glob

    from . import report

    paths = [Path(p) for pattern in inputs for p in (sorted(glob.glob(pattern)) or [pattern])]
    if not paths:
        raise UserError("--merge needs at least one run directory, results root or JUnit file.")
    suites, tests = report.merge(paths, Path(output))
    print(f"{output}: {suites} testsuite(s), {tests} testcase(s) from {len(paths)} file(s)")
    return 0


def plan(series: str | None, arches: list[str] | None, request: intake.Request | None = None) -> int:
    """The arch matrix of a series, for CI: {"series": ..., "arch": [...]} on stdout and,
    under GitHub Actions, as the step outputs 'matrix' and 'series'."""
    import json
    import os

    spec, arch_list, got = orchestrator.plan(series, arches, request)
    got.discard()
    matrix = {"arch": [a.name for a in arch_list]}
    print(json.dumps({"series": spec.name, "title": spec.title, "patches": len(got.parsed.series.patches),
                      **matrix}))
    if os.environ.get("GITHUB_OUTPUT"):
        with open(os.environ["GITHUB_OUTPUT"], "a") as out:
            out.write(f"matrix={json.dumps(matrix)}\nseries={spec.name}\n")
    return 0


def summary(results: str, markdown: bool) -> int:
    """Each run's verdict (the exit codes of the runs themselves carry pass/fail)."""
    from . import store
    from .results import RunRecord

    runs = store.run_dirs(Path(results))
    if not runs:
        raise UserError(f"{results} holds no kseries run (no */results.json). Pass the results root "
                        "that 'invoke ci --results' wrote, or the downloaded artifacts.")
    if markdown:
        print("| run | arches | verdict |\n|---|---|---|")
    for run_dir in runs:
        record = RunRecord.load(run_dir / "results.json")
        text = store.verdict(record)
        if markdown:
            mark = {0: "✅", 1: "❌", 2: "⚠️", 3: "⚠️"}.get(record.exit_code, "⚠️")
            print(f"| {record.run_id} | {', '.join(record.arches)} | {mark} {text} |")
        else:
            print(f"{record.run_id} [{', '.join(record.arches)}]: {text}")
    return 0
