"""The real tier: real faults of the machine during real runs of page_mapped on x86_64.

Each test causes one fault for real (the Docker engine stopped, a signal, a full
filesystem, a memory limit, a killed run, a corrupted cache entry) and checks that the
run ends as ERROR (exit 3) or a clean interruption (130/143) with results.json, JUnit
and the summary written, nothing blamed on the series, and that `invoke ci --resume`
then completes the run. Each records its row of docs/RELIABILITY.md (`reliability`).
Warm caches make each run about a minute; the first real test pays for the cold build.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipeline.infra.context import cache_root
from pipeline.model import config
from pipeline.run import reuse

pytestmark = pytest.mark.real
REPO = Path(__file__).resolve().parent.parent
CI = [sys.executable, "-m", "invoke", "ci"]


class Watched:
    """`invoke ci ...` in the background, its output read line by line as it comes."""

    def __init__(self, *args: str, env: dict | None = None):
        self.proc = subprocess.Popen([*CI, *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env={**os.environ, **(env or {})}, start_new_session=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_line(self, pattern: str, timeout: float = 1800) -> str:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            while seen < len(self.lines):
                seen += 1
                if regex.search(self.lines[seen - 1]):
                    return self.lines[seen - 1]
            if self.proc.poll() is not None and seen == len(self.lines):
                self.reader.join(5)
                if seen == len(self.lines):
                    break
            time.sleep(0.2)
        raise AssertionError(f"no line matched {pattern!r}:\n{self.output[-3000:]}")

    def finish(self, timeout: float = 1800) -> int:
        code = self.proc.wait(timeout)
        self.reader.join(10)
        return code

    @property
    def output(self) -> str:
        return "".join(self.lines)


def page_mapped(results: Path, env: dict | None = None) -> Watched:
    """The run a fault is tried on: page_mapped on x86_64, warm; --rerun-tests, so the series' lane
    builds and boots for the fault to meet (its results are not taken from the lane cache)."""
    return Watched("--series", "page_mapped", "--arch", "x86_64", "--results", str(results), "--rerun-tests",
                   env=env)


def ci(*args: str, env: dict | None = None, timeout: float = 3600) -> subprocess.CompletedProcess:
    return subprocess.run([*CI, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def run_dir_of(results: Path) -> Path:
    found = [p.parent for p in results.glob("*/results.json") if not p.parent.is_symlink()]
    assert len(found) == 1, found
    return found[0]


def ended_cleanly(results: Path, run: Watched, code: int, want: int, row: dict) -> tuple[Path, dict]:
    """What every fault must leave: the exit code wanted, reports written, the code recorded, no
    traceback, no container of the run left running, nothing blamed on the series. Records the
    end of the transcript in the row; returns the run directory and its results.json."""
    from pipeline.infra.owners import OWNER, owner

    out = run.output
    assert code == want, out[-3000:]
    run_dir = run_dir_of(results)
    row["tail"] = tail(out)
    record = json.loads((run_dir / "results.json").read_text())
    assert record["exit_code"] == want, record["exit_code"]
    assert (run_dir / "junit.xml").stat().st_size > 0 and (run_dir / "summary.txt").stat().st_size > 0
    assert "Traceback" not in out
    assert not [s for s in record["stages"] if s["fault"] == "harness"], "kseries itself failed"
    assert not [v for v in record["verdicts"] if v["kind"] == "regression"]
    left = subprocess.run(["docker", "ps", "-q", "--filter", f"label={OWNER}={owner(run.proc.pid)}"],
                          capture_output=True, text=True, check=True).stdout.split()
    assert not left, "a container outlived the run"
    return run_dir, record


def tail(text: str, lines: int = 6) -> list[str]:
    """The end of a terminal transcript, without the long report paths."""
    return [ln for ln in text.strip().splitlines() if not ln.startswith(("full report:", "JUnit:"))][-lines:]


def kept(run_dir: Path) -> str:
    names = sorted(p.name for p in run_dir.iterdir())
    return ", ".join(n for n in names if n in ("results.json", "junit.xml", "summary.txt", "kcidb.json", "series",
                                                "logs")) + f"; {len(json.loads((run_dir / 'results.json').read_text())['stages'])} stage results"


def resume(run_dir: Path, row: dict, env: dict | None = None) -> dict:
    again = ci("--resume", str(run_dir), "--results", str(run_dir.parent), env=env)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    record = json.loads((run_dir / "results.json").read_text())
    reused = [s for s in record["stages"] if s["reused"] == "an earlier attempt of this run"]
    row["resume_tail"] = tail(again.stdout, 4)
    row["resume"] = f"exit 0, VERDICT: no regressions; {len(reused)} stage(s) reused from the faulted attempt"
    assert "VERDICT: no regressions" in again.stdout
    return record


def faulted(record: dict) -> list[dict]:
    return [s for s in record["stages"] if s["status"] in ("ERROR", "MISS")]


def series_out(arch: str = "x86_64") -> Path:
    return cache_root() / "build" / "page_mapped" / arch / "out"


def make_work(count: int = 40) -> int:
    """Remove some objects from the series' kept O= directory, so the next build has compiling
    to do (a window for the fault) and relinks vmlinux."""
    objects = [o for d in ("mm", "kernel", "fs") for o in sorted((series_out() / d).glob("*.o"))][:count]
    for obj in objects:
        obj.unlink()
    return len(objects)


def configs_with(tmp_path: Path, edit) -> Path:
    """A copy of configs/ with one change (a lowered limit): the fault as data."""
    copy = tmp_path / "configs"
    shutil.copytree(config.REPO / "configs", copy)
    edit(copy)
    return copy


def guest_limits(boot: int, **suites: int):
    """A configs_with edit: the x86_64 boot timeout and these suites' timeouts lowered (the guest's
    limit is their sum)."""
    def edit(copy: Path):
        arch = copy / "arches" / "x86_64.yaml"
        text = arch.read_text()
        assert "boot_timeout: 300" in text
        arch.write_text(text.replace("boot_timeout: 300", f"boot_timeout: {boot}"))
        for suite, seconds in suites.items():
            path = copy / "suites" / f"{suite}.yaml"
            text, n = re.subn(r"(?m)^timeout: \d+", f"timeout: {seconds}", path.read_text())
            assert n == 1, path
            path.write_text(text)
    return edit


@pytest.fixture(scope="module")
def warm(need_docker_module) -> str:
    """page_mapped built and booted once on x86_64: every fault below starts from warm caches.
    Returns the key the base's results are cached under for that run."""
    results = Path(os.environ.get("TMPDIR", "/tmp")) / f"kseries-faults-warm-{os.getpid()}"
    proc = ci("--series", "page_mapped", "--arch", "x86_64", "--results", str(results))
    try:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
        record = json.loads((run_dir_of(results) / "results.json").read_text())
    finally:
        shutil.rmtree(results, ignore_errors=True)
    keys = [s["artifacts"]["key"] for s in record["stages"] if s["stage"] == "reuse" and s["role"] == "base"]
    assert len(keys) == 1, keys
    return keys[0]


@pytest.fixture(scope="module")
def need_docker_module():
    from conftest import docker_ok

    if not docker_ok():
        pytest.fail("the real tier needs a running Docker engine: run 'invoke setup' first")


def start_engine() -> None:
    from pipeline.infra.host import ensure_engine
    from pipeline.infra.runner import Runner

    ensure_engine(Runner(Path("/tmp/kseries-faults-engine.log")), quiet=True)


def test_docker_engine_stopped_mid_build(warm, tmp_path, reliability):
    with reliability("the Docker engine stopped (SIGTERM to dockerd) while make runs in its container") as row:
        removed = make_work()
        results = tmp_path / "results"
        run = page_mapped(results)
        run.wait_line(r"\] build +x86_64 +make -j")
        time.sleep(3)
        subprocess.run(["pkill", "-TERM", "-x", "dockerd"], check=True)
        try:
            code = run.finish(600)
        finally:
            deadline = time.monotonic() + 60
            while subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True).returncode == 0 and \
                    time.monotonic() < deadline:
                time.sleep(0.5)
            start_engine()
        run_dir, record = ended_cleanly(results, run, code, 3, row)
        build = next(s for s in record["stages"] if s["stage"] == "build" and s["role"] == "series")
        assert build["status"] == "ERROR" and build["fault"] == "infra"
        assert "Docker engine stopped answering" in build["message"], build["message"]
        assert "VERDICT: ERROR" in (run_dir / "summary.txt").read_text()
        row["did"] = f"build ERROR (infra): {build['message'][:140]}...; the {removed} objects make was " \
                     "rebuilding were scrubbed; dependents SKIP"
        row["exit"], row["kept"] = 3, kept(run_dir)
        again = resume(run_dir, row)
        redone = next(s for s in again["stages"] if s["stage"] == "build" and s["role"] == "series")
        assert redone["status"] == "PASS" and not redone["reused"]
        row["resume"] += " (dockerd started again by `invoke setup`'s engine step; the build redone)"


@pytest.mark.parametrize("sig, stage, pattern", [
    (signal.SIGTERM, "boot", r"\] boot +x86_64 +booting"),
    (signal.SIGINT, "userspace", r"\] userspace +x86_64 "),
])
def test_a_signal_mid_stage_then_resume(warm, tmp_path, reliability, sig, stage, pattern):
    name = signal.Signals(sig).name
    with reliability(f"{name} ({'a cancelled CI job' if sig == signal.SIGTERM else 'Ctrl-C'}) during {stage}") as row:
        if stage == "userspace":  # the suites must have something to build for the window: none kept,
            # and no base's build of the same inputs to take instead (stages/userspace.py)
            shutil.rmtree(cache_root() / "build" / "page_mapped" / "x86_64" / "suites" / "nolibc",
                          ignore_errors=True)
            shutil.rmtree(cache_root() / "suites", ignore_errors=True)
        results = tmp_path / "results"
        run = page_mapped(results)
        run.wait_line(pattern)
        time.sleep(2)
        os.kill(run.proc.pid, sig)
        code = run.finish(300)
        want = 143 if sig == signal.SIGTERM else 130
        run_dir, record = ended_cleanly(results, run, code, want, row)
        assert record["interrupted"] == name
        cut = [s for s in record["stages"] if s["fault"] == "interrupted"]
        assert cut and {s["stage"] for s in cut} & {stage, "suite"}, [s["stage"] for s in cut]
        assert "VERDICT: interrupted" in (run_dir / "summary.txt").read_text()
        row["did"] = (f"exit {want}; {', '.join(sorted({s['stage'] for s in cut}))} ERROR (interrupted), the "
                      "containers stopped, the stages after it SKIP 'not run: the run was interrupted'")
        row["exit"], row["kept"] = want, kept(run_dir)
        resume(run_dir, row)


def test_results_on_a_full_filesystem(warm, tmp_path, reliability):
    with reliability("the results directory on a full filesystem (a 24 MiB tmpfs)") as row:
        results = tmp_path / "results"
        results.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "kseries-full", str(results)], check=True)
        try:
            run = page_mapped(results)
            code = run.finish(1800)
            run_dir, record = ended_cleanly(results, run, code, 3, row)
            full = [s for s in faulted(record) if "No space left on device" in s["message"]]
            assert full and all(s["fault"] == "infra" for s in full), [s["message"] for s in faulted(record)]
            assert "free space there" in full[0]["message"]
            row["did"] = (f"{full[0]['stage']} ERROR (infra): {full[0]['message'][:150]}...; reports written "
                          "from the 16 MiB the run dir kept in reserve")
            row["exit"], row["kept"] = 3, kept(run_dir)
            subprocess.run(["mount", "-o", "remount,size=600m", str(results)], check=True)
            resume(run_dir, row)
            row["resume"] += " (after the filesystem was grown)"
        finally:
            subprocess.run(["umount", "-l", str(results)])


def test_build_killed_by_its_memory_limit(warm, tmp_path, reliability):
    def lower(copy: Path):
        path = copy / "arches" / "x86_64.yaml"
        path.write_text(path.read_text().replace("  config_target: tinyconfig\n",
                                                 "  config_target: tinyconfig\n  build_memory: 48m\n"))

    with reliability("a kernel build killed by its container's memory limit (build_memory lowered to 48m)") as row:
        make_work()
        results = tmp_path / "results"
        env = {"KSERIES_CONFIGS": str(configs_with(tmp_path, lower))}
        run = page_mapped(results, env=env)
        code = run.finish(1800)
        run_dir, record = ended_cleanly(results, run, code, 3, row)
        build = next(s for s in record["stages"] if s["stage"] == "build" and s["role"] == "series")
        assert build["status"] == "ERROR" and "out-of-memory" in build["message"], build["message"]
        row["did"] = f"build ERROR: {build['message']}"
        row["exit"], row["kept"] = 3, kept(run_dir)
        resume(run_dir, row)  # with the configs as they are: the limit raised again
        row["resume"] += " (with build_memory back at its default)"


def test_concurrent_runs_and_a_killed_run(warm, tmp_path, reliability):
    with reliability("two `invoke ci` at once on one cache; then a run killed with SIGKILL mid-build") as row:
        make_work(20)
        first = Watched("--series", "page_mapped", "--arch", "x86_64", "--results", str(tmp_path / "a"), "--rerun-tests")
        first.wait_line(r"\] run +mm: remove")
        # the second run needs only to wait for the first and take its results (booting again would
        # add ~2 min of guest and prove nothing more about the lock)
        second = Watched("--series", "page_mapped", "--arch", "x86_64", "--results", str(tmp_path / "b"))
        waiting = second.wait_line(r"waiting for pid \d+")
        assert f"pid {first.proc.pid}" in waiting or "which holds" in waiting
        assert first.finish(1800) == 0, first.output[-3000:]
        assert second.finish(1800) == 0, second.output[-3000:]
        row["did"] = f"the second run waited ('{waiting.split('] ', 1)[-1].strip()[:90]}'), both exit 0"

        make_work(150)
        killed = Watched("--series", "page_mapped", "--arch", "x86_64", "--results", str(tmp_path / "c"), "--rerun-tests")
        killed.wait_line(r"\] build +x86_64 +make -j")
        time.sleep(3)
        os.killpg(killed.proc.pid, signal.SIGKILL)
        killed.finish(60)
        began = time.monotonic()
        after = ci("--series", "page_mapped", "--arch", "x86_64", "--results", str(tmp_path / "d"))
        assert after.returncode == 0, after.stdout[-3000:]
        assert "waiting for" not in after.stdout  # the killed run's locks died with it
        assert "a killed kseries run left" in after.stdout, after.stdout[-3000:]  # its make, stopped before we built
        row["did"] += (f"; after kill -9 a new run took the locks at once (no stale lock), killed the make "
                       f"container the dead run left, and passed in {time.monotonic() - began:.0f} s")
        row["exit"] = "0, 0; killed (-9), then 0"
        row["kept"] = "the killed run's results.json (no exit code) and logs"
        run_dir = run_dir_of(tmp_path / "c")
        resume(run_dir, row)


def test_a_truncated_base_cache_entry_is_redone(warm, tmp_path, reliability):
    with reliability("a truncated base-results cache entry (a JSON cut in half)") as row:
        # the entry this run will look up (others, e.g. of tests with lowered limits, may be newer)
        entry = reuse.cache_path(cache_root(), warm)
        assert entry.exists(), f"no base results cached under {warm}"
        text = entry.read_text()
        entry.write_text(text[: len(text) // 2])
        results = tmp_path / "results"
        proc = ci("--series", "page_mapped", "--arch", "x86_64", "--results", str(results))
        assert proc.returncode == 0, proc.stdout[-3000:]
        assert "the cached results are unreadable" in proc.stdout, proc.stdout[-3000:]
        json.loads(entry.read_text())  # written again, whole
        row["did"] = "not trusted: the base lane was built and booted again, the entry rewritten whole; exit 0"
        row["exit"], row["kept"], row["resume"] = 0, "-", "not needed"


def test_a_guest_that_hangs_after_init(warm, tmp_path, reliability):
    """Guest limits lowered (as data) until the guest is stopped inside bpf_arena on the base and
    the series alike: its tests are ERROR (hung), not missing, and a hang on both is no regression."""
    lower = guest_limits(boot=8, nolibc=5, bpf_arena=1, kselftest=1)  # the guest's limit: 15 s; init at ~4 s

    with reliability("a guest that reaches init, then is stopped at its limit inside a suite (limits lowered)") as row:
        results = tmp_path / "results"
        env = {"KSERIES_CONFIGS": str(configs_with(tmp_path, lower))}
        run = page_mapped(results, env=env)
        code = run.finish(1800)
        run_dir, record = ended_cleanly(results, run, code, 3, row)
        suites = [s for s in record["stages"] if s["stage"] == "suite"]
        hung = [s for s in suites if s["status"] == "ERROR" and any(c["message"].startswith("hung")
                                                                    for c in s["cases"])]
        assert {s["role"] for s in hung} == {"base", "series"}, [(s["role"], s["status"], s["message"]) for s in suites]
        kinds = {v["kind"] for v in record["verdicts"]}
        assert "regression" not in kinds, kinds
        why = next(c["message"] for c in hung[-1]["cases"] if c["message"].startswith("hung"))
        row["did"] = f"{hung[-1]['suite']} ERROR on base and series: {why[:150]}...; no regression (hung on both)"
        row["exit"], row["kept"] = 3, kept(run_dir)
        resume(run_dir, row)
        row["resume"] += " (with the limits back at their defaults: the guests ran again)"


def test_the_cache_on_a_full_filesystem(need_docker_module, tmp_path, reliability):
    with reliability("the cache (KSERIES_CACHE) on a full filesystem (a 64 MiB tmpfs; the base import needs "
                     "1.5 GiB)") as row:
        cache = tmp_path / "cache"
        cache.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "kseries-full-cache", str(cache)], check=True)
        try:
            results = tmp_path / "results"
            run = page_mapped(results, env={"KSERIES_CACHE": str(cache)})
            code = run.finish(1800)
        finally:
            subprocess.run(["umount", "-l", str(cache)])
        run_dir, record = ended_cleanly(results, run, code, 3, row)
        source = next(s for s in record["stages"] if s["stage"] == "source")
        assert source["status"] == "ERROR" and source["fault"] == "infra", source
        assert "No space left on device" in source["message"] or "no space left" in source["message"], source
        row["did"] = f"source ERROR (infra): {source['message'][:300]}; every later stage SKIP with the reason"
        row["exit"], row["kept"] = 3, kept(run_dir)
        row["resume"] = ("not tried: resuming needs a cache with room for the 1.5 GiB base tree; with the "
                         "space freed, --resume runs the same way as after a full results filesystem")


def pause_first_guest(run: Watched, lane_dir_name: str, paused: list, stop: threading.Event) -> None:
    """Freeze (docker pause) the first TCG guest of the lane: a machine that stalls under it."""
    from pipeline.infra.owners import OWNER, owner

    label = f"label={OWNER}={owner(run.proc.pid)}"
    while not stop.is_set() and not paused:
        ids = subprocess.run(["docker", "ps", "-q", "--filter", label], capture_output=True, text=True).stdout.split()
        for cid in ids:
            found = subprocess.run(["docker", "inspect", cid], capture_output=True, text=True)
            if found.returncode != 0:  # it ended between ps and inspect (the base's containers come and go)
                continue
            info = json.loads(found.stdout)[0]
            sources = [m["Source"] for m in info["Mounts"]]
            if "tcg" in info["Args"] and any(Path(s).name == lane_dir_name for s in sources):
                subprocess.run(["docker", "pause", cid], check=True)
                paused.append(cid)
                return
        time.sleep(0.3)


def test_a_guest_that_stalls_before_init(warm, tmp_path, reliability):
    """The series' first guest is frozen before it reaches init (docker pause: the machine stalls).
    It is stopped at its limit and booted once more; the second attempt reaches init, and the
    run ends as if nothing happened, the stall noted in the boot's message."""
    # the limit must hold a whole guest (page_mapped runs four mm kselftests, ~60 s under TCG),
    # or the second attempt is stopped inside kselftest too
    lower = guest_limits(boot=20, nolibc=20, bpf_arena=60, kselftest=240)

    with reliability("a guest frozen before init (docker pause of the series' QEMU container)") as row:
        results = tmp_path / "results"
        env = {"KSERIES_CONFIGS": str(configs_with(tmp_path, lower))}
        run = page_mapped(results, env=env)
        paused, stop = [], threading.Event()
        pauser = threading.Thread(target=pause_first_guest, args=(run, "x86_64", paused, stop), daemon=True)
        pauser.start()
        try:
            code = run.finish(1800)
        finally:
            stop.set()
        assert paused, "no series guest was seen to pause"
        run_dir, record = ended_cleanly(results, run, code, 0, row)
        boot = next(s for s in record["stages"] if s["stage"] == "boot" and s["role"] == "series")
        assert boot["status"] == "PASS" and "a first attempt stalled" in boot["message"], boot["message"]
        assert (run_dir / "logs" / "x86_64" / "console-stalled.log").exists()
        row["did"] = f"boot PASS: {boot['message']}; the frozen container was thawed and killed at its limit"
        row["exit"], row["kept"] = 0, kept(run_dir) + ", logs/x86_64/console-stalled.log"
        row["resume"] = "not needed"


def test_sigterm_during_the_source_import(need_docker_module, tmp_path, reliability):
    """A fresh cache: the base is imported from Debian's package (about 80 s); SIGTERM lands in it.
    The run ends 143 with its reports, and nothing half-imported is left to be trusted: the git
    store has no stand-in ref, so the next run imports again."""
    with reliability("SIGTERM (a cancelled CI job) during the import of the base's source tree") as row:
        cache, results = tmp_path / "cache", tmp_path / "results"
        run = page_mapped(results, env={"KSERIES_CACHE": str(cache)})
        run.wait_line(r"\] source +importing ", timeout=1200)
        time.sleep(5)
        os.kill(run.proc.pid, signal.SIGTERM)
        code = run.finish(300)
        run_dir, record = ended_cleanly(results, run, code, 143, row)
        source = next(s for s in record["stages"] if s["stage"] == "source")
        assert source["status"] == "ERROR" and source["fault"] == "interrupted", source
        refs = subprocess.run(["git", "-C", str(cache / "git" / "linux.git"), "for-each-ref", "refs/kseries/"],
                              capture_output=True, text=True).stdout
        assert refs.strip() == "", refs
        row["did"] = "exit 143; source ERROR (interrupted); every later stage SKIP 'not run: the run was interrupted'"
        row["exit"] = 143
        row["kept"] = kept(run_dir) + "; the downloaded .deb (the import is redone, never trusted half-made)"
        row["resume"] = ("not run here: it imports again and then builds both kernels from an empty cache "
                         "(about 35 min); the import's own restart is what this row checks")
