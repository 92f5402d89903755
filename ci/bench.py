"""Time to verdict, as ratios: `invoke bench` writes docs/PERFORMANCE.md.

On one machine, in one go, each scenario an `invoke ci` as a user types it:

- prime: the seed series (whatever the cache holds: it makes the next ones warm),
  then a new one-patch series (mm/util.c), which leaves the spare worktree and O=
  copy every new series leaves for the next (stages/worktree.py, stages/seed.py;
  made after its answer by a detached process, which each scenario waits for);
- warm rerun: the same again (every lane's results are taken over: run/reuse.py);
- reworded v2: the seed's patches with every changelog reworded, as a new
  series (no worktree or O= of its own yet): identical code, so identical
  trees; the ratio to the warm rerun;
- new series on the cached base: one patch to kernel/bpf/arena.c, new each
  time and as a new series: builds (incremental) and boots per arch are counted;
- by hand: every container command the new series' run started (config, make,
  cpio, QEMU, checkpatch), replayed in sequence with `docker run` after making
  make's work the same again; the pipeline's wall time over it is its overhead;
- cold (--cold): the seed series with an empty cache (sources shared); with
  --before COMMIT, first as the kseries of that commit ran it, back to back.

    python3 -m ci.bench --arch x86_64 [--cold [--before COMMIT] [--cold-arches x86_64,arm64,sh4]]
                        [--output docs/PERFORMANCE.md]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ci import bench_report, seedlike
from pipeline.infra import background
from pipeline.infra.context import cache_root
from pipeline.model import config

REPO = Path(__file__).resolve().parent.parent


class Scenario:
    def __init__(self, label: str, seconds: float, run_dir: Path, code: int):
        self.label, self.seconds, self.run_dir, self.code = label, seconds, run_dir, code
        self.record = json.loads((run_dir / "results.json").read_text())

    def stages(self) -> dict[str, float]:
        """Seconds per stage as this run spent them (a stage taken from a cache costs 0)."""
        out: dict[str, float] = {}
        for s in self.record["stages"]:
            name = ("base " if s["role"] == "base" else "") + s["stage"]
            out[name] = out.get(name, 0.0) + (0.0 if s["reused"] else s["seconds"])
        return out

    def builds(self) -> int:
        """make runs per the record: the per-patch states built and a tip build not taken over."""
        n = 0
        for s in self.record["stages"]:
            if s["role"] == "series" and s["stage"] == "steps":
                n += s["facts"].get("built", 0)
            if s["stage"] == "build" and not s["reused"] and s["status"] in ("PASS", "FAIL"):
                n += 1
        return n

    def boots(self) -> int:
        n = sum(1 for s in self.record["stages"] if s["stage"] in ("boot", "boot-retry")
                and not s["reused"] and s["status"] in ("PASS", "FAIL"))
        return n + sum(s["facts"].get("boots", 0) for s in self.record["stages"] if s["stage"] == "bisect")


def ci(label: str, work: Path, series: str, arch: str, env: dict | None = None, extra: tuple = (),
       kseries: Path = REPO) -> Scenario:
    """One `invoke ci`, timed, as kseries (a checkout of it: this one, or --before's) runs it."""
    results = work / "results" / re.sub(r"\W+", "-", label)
    arches = [a for name in arch.split(",") for a in ("--arch", name.strip())]  # "x86_64,arm64": both
    argv = [sys.executable, "-m", "invoke", "ci", "--series", series, *arches, "--results", str(results), *extra]
    quiet()
    print(f"bench: {label}: {shlex.join(argv[2:])}", flush=True)
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=kseries, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL)
    seconds = time.monotonic() - start
    run_dir = (results / "latest").resolve()
    print(f"bench: {label}: {seconds:.0f} s, exit {proc.returncode}", flush=True)
    return Scenario(label, seconds, run_dir, proc.returncode)


def quiet() -> None:
    """Each scenario starts on a quiet machine: the spares the run before left a process making
    (infra/background.py: after its answer, detached) are made first."""
    start = time.monotonic()
    if background.settle(cache_root()):
        print(f"bench: waited {time.monotonic() - start:.0f} s for the spares the run before makes", flush=True)


def fresh(name: str) -> None:
    """Forget a bench series' kept worktree, O= directories and ccache store: it arrives as a new
    series does (a v2 fetched by its message-id is a new ad hoc series too)."""
    for store in ("trees", "build", "ccache-series"):
        for dirs in [cache_root() / store / name, *(cache_root() / store).glob(f"{name}+steps*")]:
            shutil.rmtree(dirs, ignore_errors=True)


def by_hand(run: Scenario) -> tuple[float, int]:
    """Replay every container command of the run, in order, after making make's work the same
    again (the series' changed files newer than their objects). (seconds, commands)."""
    lines = (run.run_dir / "commands.log").read_text().splitlines()
    commands = [shlex.split(line.split(" $ ", 1)[1]) for line in lines if " $ docker run " in line]
    worktree = next(s["artifacts"]["worktree"] for s in run.record["stages"] if s["stage"] == "apply")
    base = next(s["artifacts"]["commit"] for s in run.record["stages"] if s["stage"] == "source")
    changed = subprocess.run(["git", "-C", worktree, "diff", "--name-only", base, "HEAD"], capture_output=True,
                             text=True, check=True).stdout.split()
    for path in changed:
        os.utime(Path(worktree) / path)
    quiet()
    start = time.monotonic()
    failed = []
    for argv in commands:  # ccache compiles again what it holds now (the pipeline's compile was a miss)
        argv = argv[:2] + ["-e", "CCACHE_RECACHE=1"] + argv[2:]
        done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode not in (0, 1):  # checkpatch and a failing test exit 1: still the same work
            failed.append(f"exit {done.returncode}: {shlex.join(argv)[:200]}: {done.stderr.strip()[-300:]}")
    if failed:  # a replay that did not do the work measures nothing
        raise SystemExit("bench: the by-hand replay failed:\n" + "\n".join(failed))
    return time.monotonic() - start, len(commands)


def cold(work: Path, arch: str, before: str = "") -> Scenario:
    """The seed series from an empty cache (the sources shared: they are not what is measured), as
    this kseries runs it, or as the kseries of commit `before` did (a clone of this repository)."""
    kseries, label = REPO, f"cold {arch}"
    if before:
        kseries, label = work / f"kseries-{before}", f"cold {arch}, kseries {before}"
        subprocess.run(["git", "clone", "-q", "--shared", "--no-checkout", str(REPO), str(kseries)], check=True)
        subprocess.run(["git", "-C", str(kseries), "checkout", "-q", "--detach", before], check=True)
    cache = work / ("cache-" + re.sub(r"\W+", "-", label))
    cache.mkdir()
    for shared in ("git", "downloads"):
        if (cache_root() / shared).exists():
            os.symlink(cache_root() / shared, cache / shared)
    try:
        return ci(label, work, seedlike.SEED, arch, env={"KSERIES_CACHE": str(cache)}, kseries=kseries)
    finally:  # a cold cache holds whole kernel builds: gone before the next one starts
        background.settle(cache)
        shutil.rmtree(cache, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", default="x86_64")
    parser.add_argument("--cold-arches", default="", metavar="A,B,...",
                        help="the cold runs' arches (default: --arch), e.g. x86_64,arm64,sh4 for the whole seed")
    parser.add_argument("--cold", action="store_true", help="also a run from an empty cache (long)")
    parser.add_argument("--before", default="", metavar="COMMIT",
                        help="with --cold: first the same cold run as kseries COMMIT ran it, back to back")
    parser.add_argument("--output", default=str(REPO / "docs" / "PERFORMANCE.md"))
    args = parser.parse_args()
    from pipeline.infra.context import Context
    from pipeline.infra.progress import Progress
    from pipeline.infra.runner import Runner
    from pipeline.stages import source

    with tempfile.TemporaryDirectory(prefix="kseries-bench-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        runs = [ci("prime", work, seedlike.SEED, args.arch)]
        ctx = Context(work / "ctx", cache_root(), Runner(), Progress(open(os.devnull, "w")))
        base = source.ensure_base(ctx, config.load_series(seedlike.SEED))
        note = lambda path, subject: [seedlike.note_patch(base.repo, base.commit, path, subject)]  # noqa: E731
        fresh("bench_prime")  # a new series, as any machine has run: it leaves the spares each one leaves
        runs.append(ci("prime: a new series", work, "bench_prime", args.arch,
                       env=seedlike.write(work / "configs", "bench_prime", note("mm/util.c", "mm: util: a note"))))
        runs.append(ci("warm rerun", work, seedlike.SEED, args.arch))
        fresh("bench_reworded")
        runs.append(ci("reworded v2", work, "bench_reworded", args.arch,
                       env=seedlike.write(work / "configs", "bench_reworded", seedlike.reworded())))
        env = seedlike.write(work / "configs", "bench_arena", note("kernel/bpf/arena.c", "bpf: arena: a note"))
        fresh("bench_arena")
        runs.append(ci("new arena.c series", work, "bench_arena", args.arch, env=env))
        hand = by_hand(runs[-1])
        if args.cold and args.before:
            runs.append(cold(work, args.cold_arches or args.arch, args.before))
        if args.cold:
            runs.append(cold(work, args.cold_arches or args.arch))
        output = Path(args.output)
        text = bench_report.render(runs, hand, args.arch, output.read_text() if output.is_file() else "")
    failed = [f"{r.label} (exit {r.code})" for r in runs if r.code not in (0, 1)]
    if failed:  # an ERROR run measures nothing: its figures would mislead
        print(f"bench: {', '.join(failed)} ended in ERROR; {args.output} is left as it was. "
              "Read the runs' summary.txt, fix the machine (invoke setup starts the engine) and rerun.")
        return 1
    Path(args.output).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
