"""Locks on shared cache directories: a waiting run says who it waits for; a killed holder
leaves no stale lock."""

import os
import signal
import subprocess
import sys
import threading
import time

from pipeline.infra import locks

HOLDER = """
import sys, time
from pathlib import Path
from pipeline.infra import locks
with locks.hold(Path(sys.argv[1]), "dirs-base-0123", holder="run A"):
    print("held", flush=True)
    time.sleep(600)
"""


def _holder(cache):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(cache)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_waits_and_names_the_holder(tmp_path):
    proc = _holder(tmp_path)
    said, got = [], threading.Event()

    def second():
        with locks.hold(tmp_path, "dirs-base-0123", said.append, "run B"):
            got.set()

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.5)
    assert not got.is_set() and said == [f"waiting for pid {proc.pid} (run A), which holds dirs-base-0123"]
    proc.terminate()
    proc.wait()
    thread.join(10)
    assert got.is_set() and said[-1].startswith("dirs-base-0123 is free after")


def test_a_lock_left_by_a_killed_run_is_not_stale(tmp_path):
    proc = _holder(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    said = []
    start = time.monotonic()
    with locks.hold(tmp_path, "dirs-base-0123", said.append, "run C"):
        assert said == [] and time.monotonic() - start < 1
    assert (tmp_path / "locks" / "dirs-base-0123.lock").read_text().startswith(f"pid {os.getpid()} (run C)")


def test_an_attempt_goes_on_without_a_lock_another_holder_has(tmp_path):
    with locks.hold(tmp_path, "dirs-base"):
        with locks.attempt(tmp_path, "dirs-base", "spare") as held:
            assert held is False
    with locks.attempt(tmp_path, "dirs-base", "spare") as held:
        assert held is True
        assert "(spare)" in (tmp_path / "locks" / "dirs-base.lock").read_text()


def test_a_run_of_other_patches_of_a_series_takes_free_directories_and_one_of_the_same_waits(tmp_path):
    """Runs of one series with other patches never wait for each other's whole run (each its own
    kept directories); a run of the same patches waits for the one that holds them, to reuse them."""
    from types import SimpleNamespace

    from pipeline.run.pipeline import Run

    patch = tmp_path / "0001.patch"
    patch.write_text("a patch")
    said = []
    run = SimpleNamespace(spec=SimpleNamespace(name="s"), patches=[SimpleNamespace(path=patch)],
                          record=SimpleNamespace(run_id="run B", provenance={}),
                          ctx=SimpleNamespace(cache=tmp_path, progress=SimpleNamespace(say=lambda *a: said.append(a[-1]))))
    holder = subprocess.Popen([sys.executable, "-c", HOLDER.replace("dirs-base-0123", "series-s"), str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    try:
        (tmp_path / "locks" / "series-s.patches").write_text("other patches")
        other = tmp_path / "0001-v2.patch"
        other.write_text("another version of the patch")
        run2 = SimpleNamespace(**{**vars(run), "patches": [SimpleNamespace(path=other)]})
        with Run.series_dirs(run) as dirs:
            assert dirs == "s~2" and run.record.provenance["series directories"] == "s~2 (s's were in use)"
            with Run.series_dirs(run2) as third:  # s~2 is held by a run of other patches now
                pass
        assert third == "s~3"
        (tmp_path / "locks" / "series-s.patches").write_text((tmp_path / "locks" / "series-s~2.patches").read_text())
        got = threading.Event()

        def same():
            with Run.series_dirs(run) as d:
                got.set()
                assert d == "s"

        thread = threading.Thread(target=same)
        thread.start()
        time.sleep(0.5)
        assert not got.is_set() and said[-1] == f"waiting for pid {holder.pid} (run A), which holds series-s"
    finally:
        holder.terminate()
        holder.wait()
    thread.join(10)
    assert got.is_set()
