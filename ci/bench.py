"""Build-time benchmark: a kernel from scratch (empty O= and ccache) vs. a rerun
with nothing changed vs. a rerun after one .c file changed. Prints figures.

    python3 -m ci.bench --arch x86_64 --series page_mapped
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from pipeline.stages import apply, build, source
from pipeline.model import config
from pipeline.intake import sources as intake
from pipeline.infra.context import Context, cache_root
from pipeline.infra.progress import Progress
from pipeline.infra.runner import Runner


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", default="x86_64")
    parser.add_argument("--series", default="page_mapped")
    args = parser.parse_args()
    spec = config.load_series(args.series)
    arch = config.resolve_arch(args.arch)
    real = cache_root()
    with tempfile.TemporaryDirectory(prefix="kseries-bench-", dir="/var/tmp") as tmp:
        cache = Path(tmp) / "cache"
        cache.mkdir()
        real.mkdir(parents=True, exist_ok=True)
        for shared in ("git", "downloads", "trees"):  # sources shared; build dirs and ccache cold
            (real / shared).mkdir(exist_ok=True)
            os.symlink(real / shared, cache / shared)
        run = Path(tmp) / "run"
        ctx = Context(run, cache, Runner(run / "commands.log"), Progress())
        series = intake.obtain(intake.Request(), spec, run / "series").parsed.series
        base = source.ensure_base(ctx, spec)
        applied = apply.run(ctx, base.repo, spec.name, base.commit, series)
        lane = run / arch.name
        lane.mkdir(parents=True)
        rows = []
        for label in ("from scratch (empty O=, cold ccache)", "rerun, nothing changed"):
            built = build.run(ctx, applied.worktree, arch, spec, lane)
            rows.append((label, built))
        victim = applied.worktree / series.files[-1].path
        saved = victim.stat().st_mtime_ns
        os.utime(victim)  # as if a patch had rewritten this file
        try:
            built = build.run(ctx, applied.worktree, arch, spec, lane)
        finally:  # the shared worktree's other O= dirs need not notice
            os.utime(victim, ns=(saved, saved))
        rows.append((f"rerun after touching {series.files[-1].path}", built))
        print(f"\nkseries bench: {arch.name} kernel ({arch.kernel.config_target} + "
              f"{', '.join(arch.kernel.fragments + spec.fragments)}), {ctx.jobs} jobs")
        for label, built in rows:
            f = built.facts
            print(f"  {label:<45} {built.case.seconds:7.1f} s  (config {f['config_seconds']} s, "
                  f"make {f['make_seconds']} s, {f['kbuild_steps']} kbuild steps) {built.case.status.value}")
        image = rows[0][1].facts.get("image_bytes")
        if image:
            print(f"  kernel image: {image / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
