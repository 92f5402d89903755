"""Entry points behind tasks.py: each returns an exit code; user and
infrastructure errors become one paragraph on stderr, never a traceback."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from . import intake, orchestrator
from .errors import KseriesError


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
