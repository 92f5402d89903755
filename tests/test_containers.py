"""The `docker run` line in commands.log is what the SDK call does, for root and non-root containers."""

import os
from pathlib import Path

import pytest

from pipeline.infra import containers, diskwatch, owners
from pipeline.infra.containers import Container, Mount


def parse(argv: list[str]) -> dict:
    """A `docker run` command line back into the Docker SDK's keyword arguments (the flags kseries uses)."""
    assert argv[:3] == ["docker", "run", "--rm"]
    kw = {"volumes": {}, "environment": {}, "devices": [], "cap_drop": None, "group_add": None,
          "security_opt": [], "network_disabled": False, "read_only": False, "tmpfs": None}
    rest = argv[3:]
    while rest[0].startswith("-"):
        flag, _, value = rest.pop(0).partition("=")
        if flag == "--user":
            kw["user"] = value
        elif flag == "--cpus":
            kw["nano_cpus"] = int(float(value) * 1e9)
        elif flag == "--memory":
            kw["mem_limit"] = value
        elif flag == "--pids-limit":
            kw["pids_limit"] = int(value)
        elif flag == "--cap-drop":
            kw["cap_drop"] = (kw["cap_drop"] or []) + [value]
        elif flag == "--security-opt":
            kw["security_opt"].append(value)
        elif flag == "--read-only":
            kw["read_only"] = True
        elif flag == "--tmpfs":
            path, _, opts = value.partition(":")
            kw["tmpfs"] = {**(kw["tmpfs"] or {}), path: opts}
        elif flag == "--network":
            kw["network_disabled"] = value == "none"
        elif flag == "-v":
            host, bind, mode = value.rsplit(":", 2)
            kw["volumes"][host] = {"bind": bind, "mode": mode}
        elif flag == "--device":
            kw["devices"].append(value)  # HOST:CONTAINER:PERMISSIONS, as docker run takes it
        elif flag == "--group-add":
            kw["group_add"] = (kw["group_add"] or []) + [int(value)]
        elif flag == "--label":
            k, _, v = value.partition("=")
            kw["labels"] = {**kw.get("labels", {}), k: v}
        elif flag == "-e":
            k, _, v = value.partition("=")
            kw["environment"][k] = v
        elif flag == "-w":
            kw["working_dir"] = value
        else:
            raise AssertionError(f"unknown flag {flag}")
    return {"image": rest[0], "command": rest[1:], **kw}


@pytest.mark.parametrize("root", [False, True])
def test_logged_line_equals_the_sdk_call(root):
    spec = Container("kseries/toolchain:abc", ["make", "-j2", "O=/out"], workdir="/src", root=root,
                     network=root, cpus=2, memory="4g", env={"CCACHE_DIR": "/ccache"},
                     mounts=[Mount(Path("/srv/tree"), "/src"), Mount(Path("/srv/out"), "/out", writable=True)],
                     devices=["/dev/kvm"], groups=[108])
    back = parse(spec.docker_argv())
    assert back.pop("image") == spec.image and back.pop("command") == spec.argv
    assert back == spec.sdk_kwargs()
    if root:  # a trusted download step: root, network, Docker's default capabilities - and the log says so
        assert "--cap-drop=ALL" not in spec.docker_argv() and "--network=none" not in spec.docker_argv()
        assert back["user"] == "0:0"
    else:
        assert "--cap-drop=ALL" in spec.docker_argv() and "--network=none" in spec.docker_argv()
        assert back["user"] != "0:0" and back["pids_limit"] == containers.PIDS
        assert back["read_only"] and "size=" in back["tmpfs"]["/tmp"]  # writes go to its mounts or a bounded /tmp


def test_a_container_that_outgrows_its_disk_limit_is_found(tmp_path):
    import threading

    out = tmp_path / "out"
    out.mkdir()
    (out / "kept.o").write_bytes(b"x" * 300_000)  # kept from an earlier build: not counted
    spec = Container("i", ["true"], mounts=[Mount(out, "/out", writable=True)], disk=200_000)
    watch = diskwatch.DiskWatch(spec, every=0.05)
    killed = []
    finished = threading.Event()
    thread = threading.Thread(target=watch.watch, args=(lambda: killed.append(True), finished))
    thread.start()
    (out / "small").write_bytes(b"y" * 100_000)
    threading.Event().wait(0.3)
    assert not watch.exceeded.is_set() and not killed
    (out / "fill").write_bytes(b"z" * 200_000)
    thread.join(5)
    assert watch.exceeded.is_set() and killed

    quick = diskwatch.DiskWatch(spec, every=60)  # exits before its first poll: measured at the end
    (out / "more").write_bytes(b"w" * 300_000)
    quick.check()
    assert quick.exceeded.is_set()


def test_untrusted_work_never_runs_as_root():
    uid = Container("i", ["true"]).user.split(":")[0]
    assert uid != "0" and int(uid) == (os.getuid() or containers.NONROOT)


def test_only_containers_of_a_dead_kseries_process_on_this_machine_are_orphans():
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()
    assert owners.orphaned(owners.owner(dead.pid))
    assert not owners.orphaned(owners.owner())  # this process is alive
    assert not owners.orphaned(f"another-boot:{dead.pid}")  # another machine's engine
    assert not owners.orphaned("garbage")


def test_a_reaped_container_s_start_time_reads_as_epoch_seconds():
    from pipeline.infra.owners import epoch as _epoch

    assert _epoch("2026-11-29T17:25:25.123456789Z") == pytest.approx(1795973125.123456, abs=1e-3)
    assert _epoch("2026-11-29T17:25:25Z") == pytest.approx(1795973125.0)
    assert _epoch("") == 0.0 and _epoch("0001-01-01T00:00:00Z") < 0  # unknown: everything is suspect


class Chatty:
    """A container whose output is given; kill() is counted."""

    def __init__(self, chunks):
        self.chunks, self.kills = chunks, 0

    def logs(self, stream, follow):
        yield from self.chunks

    def kill(self):
        self.kills += 1


def test_a_container_that_ends_within_its_grace_is_not_killed_and_leaves_no_timer(tmp_path):
    import threading
    import time

    done = Chatty([b"booting\n", b"kseries: done\n", b"power off\n"])
    containers.Docker._stream(done, Container("img", ["true"]), tmp_path / "log", None,
                              lambda line: "done" in line, grace=0.3)
    time.sleep(0.5)
    assert done.kills == 0 and not [t for t in threading.enumerate() if isinstance(t, threading.Timer)]
    assert (tmp_path / "log").read_text().endswith("kseries: done\npower off\n")

    def hung():  # says it is done, then never ends by itself
        yield b"kseries: done\n"
        time.sleep(0.6)

    stuck = Chatty(hung())
    containers.Docker._stream(stuck, Container("img", ["true"]), tmp_path / "log2", None,
                              lambda line: "done" in line, grace=0.2)
    assert stuck.kills == 1  # killed after its grace
