"""Entry points behind tasks.py: each returns an exit code; user and
infrastructure errors become one paragraph on stderr, never a traceback."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from . import config, orchestrator
from .errors import KseriesError
from .series import format_diffstat, load_patch_dir


def guarded(fn, *args, **kw) -> int:
    try:
        return fn(*args, **kw)
    except KseriesError as exc:
        print(textwrap.fill(f"kseries: {exc.kind}: {exc.message}", width=100), file=sys.stderr)
        return exc.exit_code


def ci(series: str, arches: list[str] | None, results: str = "results") -> int:
    spec, arch_list = orchestrator.plan(series, arches)
    pipe = orchestrator.Pipeline(spec, arch_list, Path(results).resolve())
    code = pipe.run()
    print()
    print((pipe.run_dir / "summary.txt").read_text(), end="")
    print(f"JUnit: {pipe.run_dir / 'junit.xml'}  (results/latest -> {pipe.run_dir.name})")
    return code


def show_series(series: str) -> int:
    spec = config.load_series(series)
    patches = load_patch_dir(spec.patch_dir, spec.title, "offline")
    off = spec.base.offline
    print(f"{spec.title}  [{spec.name}]")
    print(f"message-id: {spec.message_id}")
    print(f"base-commit: {spec.base.commit} ({spec.base.git_url})")
    print(f"arches: {', '.join(spec.arches)}   tests: {', '.join(spec.tests)}")
    print("sources, tried in order:")
    print(f"  patches: lore {spec.lore_url}/{spec.message_id}/t.mbox.gz, else offline copy {spec.patch_dir}")
    print(f"  base:    git {spec.base.git_url} at {spec.base.commit[:12]}" + (
        f", else Debian {off.package} ({off.suite})"
        + (f" with the patches in {off.reverse_patches} reverse-applied" if off.reverse_patches else "")
        if off else ""))
    print()
    for p in patches.patches:
        print(f"[PATCH {p.label}] {p.subject}")
        print(f"    {p.author}")
    print()
    print(format_diffstat(patches.files), end="")
    return 0
