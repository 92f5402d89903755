"""What a run leaves for after its answer (the spares for the next new series) is done by a real
detached process, which a run that wants its work waits for; a dead one is never waited on."""

import json
import os
import time

from pipeline.infra import background
from pipeline.model import config
from pipeline.stages import build, seed
from test_apply import ctx_for


def finished(pid: int, limit: float = 60) -> None:
    until = time.monotonic() + limit
    while background.alive(str(pid)) and time.monotonic() < until:
        time.sleep(0.05)
    assert not background.alive(str(pid))


def base_build(ctx, arch, objects: int = 200):
    base_out = build.lane_dirs(ctx, "base-x", arch)[1]
    (base_out / arch.kernel.image_path).parent.mkdir(parents=True)
    (base_out / arch.kernel.image_path).write_text("kernel")
    for i in range(objects):
        (base_out / f"o{i}.o").write_text(f"object {i}")
    return base_out


def test_the_queue_is_done_after_the_run_by_a_detached_process_and_a_run_waits_for_its_work(tmp_path):
    ctx = ctx_for(tmp_path)
    arch = config.resolve_arch("x86_64")
    base_out = base_build(ctx, arch)
    spare = seed.spare_out(ctx, "base-x", arch)
    seed.make_spare(ctx, base_out, spare, "base-x", arch)
    seed.make_spare(ctx, base_out, spare, "base-x", arch)  # queued once per target
    assert not spare.exists()  # nothing is made during the run
    pid = background.hand_off(ctx)
    assert pid and pid != os.getpid() and background.hand_off(ctx) is None  # the queue went with it
    state = ctx.cache / "later" / f"{pid}.json"
    assert json.loads(state.read_text())["targets"] == [str(spare)]
    said = []
    background.wait(ctx.cache, spare, said.append)
    assert (spare / "o7.o").read_text() == "object 7" and (spare / arch.kernel.image_path).is_file()
    finished(pid)
    assert not state.exists() and not (ctx.cache / "later" / str(pid)).exists()  # done: nothing left
    assert f"after this run, process {pid} makes: spare x86_64 O= copy" in (tmp_path / "run" / "commands.log").read_text()
    assert os.stat(spare / "o7.o").st_ino != os.stat(base_out / "o7.o").st_ino  # a copy: make writes in place


def test_a_failed_job_is_noted_and_its_commands_kept(tmp_path):
    ctx = ctx_for(tmp_path)
    background.later("a thing", seed.spare_copy, tmp_path / "target")  # called without its arguments
    (ctx.cache / "later").mkdir(parents=True)
    (ctx.cache / "later" / "999999999.json").write_text("{}")  # an ended process's, left behind
    pid = background.hand_off(ctx)
    finished(pid)
    log = ctx.cache / "later" / str(pid) / "commands.log"
    assert "# a thing not made: TypeError" in log.read_text()
    assert not (ctx.cache / "later" / "999999999.json").exists()


def test_wait_never_waits_on_a_dead_process_or_for_what_another_makes(tmp_path):
    folder = tmp_path / "later"
    folder.mkdir()
    target = tmp_path / "spare"
    (folder / "999999999.json").write_text(json.dumps({"targets": [str(target)]}))  # a killed one's
    (folder / f"{os.getpid()}.json").write_text(json.dumps({"targets": [str(tmp_path / "other")]}))
    said = []
    start = time.monotonic()
    background.wait(tmp_path, target, said.append)
    assert time.monotonic() - start < 1 and said == []
    assert not (folder / "999999999.json").exists() and (folder / f"{os.getpid()}.json").exists()


def test_a_live_process_making_the_target_is_waited_for_until_it_is_there(tmp_path):
    folder = tmp_path / "later"
    folder.mkdir()
    target = tmp_path / "spare"
    (folder / f"{os.getpid()}.json").write_text(json.dumps({"targets": [str(target)]}))  # "this" one makes it
    said = []
    start = time.monotonic()
    background.wait(tmp_path, target, said.append, limit=0.5)
    assert time.monotonic() - start >= 0.5 and "is making it" in said[0]  # the limit, as it never came


def test_a_zombie_is_not_alive(tmp_path):
    import subprocess

    child = subprocess.Popen(["true"])
    time.sleep(0.3)  # exited, not reaped yet
    assert not background.alive(str(child.pid)) and background.alive(str(os.getpid()))
    child.wait()


def test_no_spares_on_a_machine_that_runs_one_series(tmp_path, monkeypatch):
    ctx = ctx_for(tmp_path)
    arch = config.resolve_arch("x86_64")
    monkeypatch.setenv("KSERIES_SPARES", "0")
    seed.make_spare(ctx, base_build(ctx, arch), seed.spare_out(ctx, "base-x", arch), "base-x", arch)
    assert background.hand_off(ctx) is None  # nothing queued
    monkeypatch.setenv("KSERIES_SPARES", "1")
    seed.make_spare(ctx, build.lane_dirs(ctx, "base-x", arch)[1], seed.spare_out(ctx, "base-x", arch), "base-x", arch)
    assert [job["what"] for job in background._queue] == ["spare x86_64 O= copy"]
