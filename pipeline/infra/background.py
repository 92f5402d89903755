"""Work a run leaves for after its verdict, that only saves time or space later: the spare
worktree and O= copy the next new series on the same base takes (stages/worktree.py,
stages/seed.py), and keeping the cache within its budget (infra/prune.py).

A stage queues it (later). When the run has ended, hand_off starts one detached process
that does the queue in order (`python -m pipeline.infra.background`), so that work neither
competes with the run's own builds for the cores and the disk nor delays its exit. That
process makes each thing aside (making: named by its pid) and moves it in place whole; it
writes what it makes in <cache>/later/<pid>.json and its commands in <cache>/later/<pid>/.
A run that wants something it is making waits for it rather than making it twice (wait);
what a killed process left half-made is found by the next one (stale) and removed.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

from pipeline.infra.context import Context

LATER = "later"
MARK = "pipeline.infra.background"  # in the command line of the process hand_off starts
_queue: list[dict] = []


def later(what: str, function: Callable, target: Path | None, *args: str) -> None:
    """Queue function(ctx, *args), which makes target (None: nothing a run waits for), for after
    the run; once per target."""
    if target is None or all(job["target"] != str(target) for job in _queue):
        _queue.append({"what": what, "function": f"{function.__module__}:{function.__name__}",
                       "target": str(target or ""), "args": [str(a) for a in args]})


def spares() -> bool:
    """Whether spares are made for the next new series: not on a machine that runs one series and
    is gone (KSERIES_SPARES=0, as the GitHub workflow's lanes set)."""
    return os.environ.get("KSERIES_SPARES", "1").strip().lower() not in ("0", "no", "false", "off")


def drop() -> None:
    """Forget the queue (an interrupted run leaves nothing behind it)."""
    _queue.clear()


def hand_off(ctx: Context) -> int | None:
    """Start the detached process that does the queue; its pid (None: nothing was queued)."""
    jobs, folder = list(_queue), ctx.cache / LATER
    _queue.clear()
    if not jobs:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for state in folder.glob("*.json"):  # ended processes' (one may end before its state is written)
            if not alive(state.stem):
                state.unlink(missing_ok=True)
        spec = json.dumps({"cache": str(ctx.cache), "jobs": jobs})
        pid = ctx.runner.detach([sys.executable, "-m", MARK, spec], cwd=Path(__file__).resolve().parents[2])
        state = folder / f"{pid}.json"
        state.with_suffix(".tmp").write_text(json.dumps({"targets": [j["target"] for j in jobs if j["target"]]}))
        state.with_suffix(".tmp").rename(state)
    except OSError as exc:  # a full disk, no process to spare: a saving lost, never the run's failure
        ctx.runner.note(f"# not made after this run ({', '.join(j['what'] for j in jobs)}): {exc}")
        return None
    ctx.runner.note(f"# after this run, process {pid} makes: {', '.join(j['what'] for j in jobs)} "
                    f"(its commands: {folder / str(pid) / 'commands.log'})")
    return pid


def run_queued(ctx: Context) -> int:
    """Do the queue here, in order; how many jobs failed (a failure is noted, never raised)."""
    failed = 0
    while _queue:
        job = _queue.pop(0)
        module, name = job["function"].split(":")
        try:
            getattr(importlib.import_module(module), name)(ctx, *job["args"])
        except Exception as exc:  # noqa: BLE001 - a saving for later, never anyone's failure
            ctx.runner.note(f"# {job['what']} not made: {type(exc).__name__}: {exc}")
            failed += 1
    return failed


def wait(cache: Path, target: Path, say: Callable[[str], None], limit: float = 1800) -> None:
    """While a live process hand_off started is making target, wait for it to be there."""
    for state in sorted((cache / LATER).glob("*.json")):
        try:
            targets = json.loads(state.read_text())["targets"]
        except (OSError, ValueError, KeyError):
            continue
        if str(target) not in targets or target.exists():
            continue
        if not alive(state.stem):
            state.unlink(missing_ok=True)
            continue
        say(f"waiting for {target.name}: process {state.stem}, left by the run before, is making it")
        until = time.monotonic() + limit
        while alive(state.stem) and not target.exists() and time.monotonic() < until:
            time.sleep(0.1)


def settle(cache: Path, limit: float = 1800) -> list[str]:
    """Wait until no process hand_off started is still making something; the pids waited for."""
    waited, until = [], time.monotonic() + limit
    for state in sorted((cache / LATER).glob("*.json")):
        if alive(state.stem):
            waited.append(state.stem)
        while alive(state.stem) and time.monotonic() < until:
            time.sleep(0.1)
    return waited


def making(path: Path) -> Path:
    """Where this process makes what goes to path, to be moved there whole when done."""
    return path.with_name(f"{path.name}.making-{os.getpid()}")


def stale(path: Path) -> list[Path]:
    """What a killed process left half-made for path (its process is gone)."""
    return [p for p in path.parent.glob(f"{path.name}.making-*") if not alive(p.name.rsplit("-", 1)[1])]


def alive(pid: str) -> bool:
    """A process that still runs (not a zombie waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
    except (ValueError, OSError):
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def main(spec: str) -> int:
    """The detached process: its own scratch directory as run directory, removed when all is made."""
    args = json.loads(spec)
    cache = Path(args["cache"])
    scratch = cache / LATER / str(os.getpid())
    from pipeline.infra.progress import Progress
    from pipeline.infra.runner import Runner

    ctx = Context(scratch, cache, Runner(scratch / "commands.log"), Progress(open(os.devnull, "w")))
    _queue.extend(args["jobs"])
    failed = run_queued(ctx)
    (cache / LATER / f"{os.getpid()}.json").unlink(missing_ok=True)
    if not failed:
        shutil.rmtree(scratch, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    from pipeline.infra import background  # the module stages import, not this __main__ copy

    sys.exit(background.main(sys.argv[1]))
