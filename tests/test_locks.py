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
