"""docs/PERFORMANCE.md from the scenarios ci/bench.py ran: ratios first, then seconds."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def ratios(runs: list, hand: tuple[float, int]) -> list[tuple[str, float, float, str]]:
    """(what, ratio, target, how it is measured)."""
    by = {r.label: r for r in runs}
    out = []
    warm, v2, new = by["warm rerun"], by["reworded v2"], by["new arena.c series"]
    out.append(("reworded v2 / warm rerun", v2.seconds / warm.seconds, 1.1,
                f"{v2.seconds:.0f} s / {warm.seconds:.0f} s"))
    out.append(("pipeline / by hand (the new arena.c series)", new.seconds / hand[0], 1.05,
                f"{new.seconds:.0f} s / {hand[0]:.0f} s for the same {hand[1]} container commands"))
    arches = max(1, len(new.record["arches"]))
    out.append(("builds per arch (new arena.c series)", new.builds() / arches, 1.0,
                f"{new.builds()} make run(s), {new.boots()} boot(s) on {arches} arch(es)"))
    return out


def table(lines: list[str], heading: str) -> list[str]:
    """The markdown table under heading (empty when there is none)."""
    try:
        start = lines.index(heading) + 1
    except ValueError:
        return []
    while start < len(lines) and not lines[start].startswith("|"):
        if lines[start].startswith("#"):
            return []
        start += 1
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return lines[start:end]


def earlier(previous: str) -> list[str]:
    """The ratios, scenarios and seconds per stage of the bench before this one (the file being
    replaced), and when and on what it ran: before and after, on this machine, in one file."""
    lines = previous.split("\n## The bench before this one")[0].splitlines()
    when = next((ln for ln in lines if ln.startswith("- measured ")), "")
    out = []
    for heading in ("## Ratios", "## Scenarios", "## Seconds per stage"):
        rows = table(lines, heading)
        if rows:
            out += ["", f"#{heading}", "", *rows]
    return ["", "## The bench before this one", "", f"As that file had it ({when[2:]}):", *out] if out else []


def render(runs: list, hand: tuple[float, int], arch: str, previous: str = "") -> str:
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    if subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                      text=True).stdout.strip():
        commit += " with uncommitted changes"
    lines = ["# Performance: time to verdict", "",
             "Written by `invoke bench` (ci/bench.py); do not edit. Every figure is one `invoke ci` as a user "
             "types it, on this machine, one after another.", "",
             f"- measured {time.strftime('%Y-%m-%d %H:%M %Z')}, kseries {commit}, arch {arch}",
             f"- machine: {len(os.sched_getaffinity(0))} cores, {platform.machine()}, Linux {platform.release()}",
             "", "## Ratios", "", _row(["ratio", "measured", "target", "", "from"]), _row(["---"] * 5)]
    for what, value, target, how in ratios(runs, hand):
        lines.append(_row([what, f"{value:.2f}", f"<= {target:g}", "met" if value <= target else "**not met**", how]))
    lines += ["", "## Scenarios", "", _row(["scenario", "wall s", "exit", "make runs", "boots", "run"]),
              _row(["---"] * 6)]
    for r in runs:
        lines.append(_row([r.label, f"{r.seconds:.0f}", r.code, r.builds(), r.boots(), r.run_dir.name]))
    lines.append(_row(["by hand: the new series' container commands", f"{hand[0]:.0f}", "", "", "",
                       f"{hand[1]} commands"]))
    names = list(dict.fromkeys(n for r in runs for n in r.stages()))
    lines += ["", "## Seconds per stage", "",
              "What each stage cost in that run; a stage whose result was taken over (from the lane cache, a "
              "step record, --resume) counts 0.", "", _row(["stage", *(r.label for r in runs)]),
              _row(["---"] * (len(runs) + 1))]
    for name in names:
        cells = [r.stages().get(name) for r in runs]
        if any(c for c in cells):
            lines.append(_row([name, *("" if c is None else f"{c:.1f}" for c in cells)]))
    lines += ["", "Notes:", "",
              "- The by-hand replay touches the series' changed files first, so make recompiles what the "
              "pipeline compiled, with CCACHE_RECACHE=1: ccache compiles again, as it did on the pipeline's "
              "miss, instead of hitting what that compile stored.",
              "- The reworded v2 and the new series arrive as new series: each takes the spare worktree the "
              "run before it linked (a rename; else hard links to the base's, 1-2 s: stages/worktree.py) and, "
              "for a build, the spare copy of the base's O= (a rename; else a copy, 2-4 s: stages/seed.py); "
              "the by-hand replay, working in trees that exist, pays neither. The prime's new series is the "
              "one that leaves them, as any new series does for the next: a detached process makes them "
              "after the run's answer (infra/background.py), and each scenario, and the by-hand replay, "
              "starts once it is done, as on a machine between two runs.",
              "- The primes' figures depend on what the cache held before; the others do not.", ""]
    return "\n".join(lines + earlier(previous) + [""])
