"""Running one command in a fresh container (Docker SDK), and nothing else.

Untrusted work (builds, boots) runs with no network, as a non-root user, with
CPU, memory, pid and time limits, all capabilities dropped and nothing mounted
but the directories it needs. One `Container` value holds every argument: the
SDK call and the `docker run` line written to the command log are both
rendered from it, so the log shows exactly what ran.
"""

from __future__ import annotations

import os
import shlex
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pipeline.infra.diskwatch import DiskWatch
from pipeline.infra.errors import InfraError, Interrupted
from pipeline.infra.owners import OWNER, Reaped, epoch, orphaned, owner
from pipeline.infra.runner import Runner

NONROOT = 1000  # the build user when kseries itself runs as root
PIDS = 4096
TMP_SIZE = "1g"
def engine(timeout: int = 600):
    """The Docker SDK client, or an infrastructure error that says how to get an engine."""
    try:
        import docker

        client = docker.from_env(timeout=timeout)
        client.ping()
        return client
    except Exception as exc:  # noqa: BLE001 - any failure means: no engine
        host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise InfraError(
            f"The Docker engine at {host} is unreachable ({type(exc).__name__}: "
            f"{str(exc)[:160]}). kseries builds and boots kernels in containers. "
            "Run 'invoke setup' to install and start the engine, or start it yourself "
            "(sudo dockerd &, or systemctl start docker) and check that your user may "
            "use it (member of the 'docker' group)."
        ) from exc


def engine_errors() -> tuple[type[BaseException], ...]:
    """What the SDK raises when the engine stops answering (socket gone, daemon killed)."""
    import docker
    import requests
    import urllib3

    return (docker.errors.DockerException, requests.RequestException, urllib3.exceptions.HTTPError,
            ConnectionError)


@dataclass
class Mount:
    host: Path
    target: str
    writable: bool = False

    @property
    def mode(self) -> str:
        return "rw" if self.writable else "ro"


@dataclass
class Container:
    """Everything one `docker run` is made of."""

    image: str
    argv: list[str]
    mounts: list[Mount] = field(default_factory=list)
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    network: bool = False
    root: bool = False  # trusted steps only (package downloads): uid 0 with Docker's default capabilities
    cpus: float = 0.0  # 0: every core
    memory: str = "8g"
    devices: list[str] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)
    disk: int = 0  # bytes the writable mounts may hold together; 0: no limit (see DiskWatch)

    @property
    def user(self) -> str:
        uid, gid = (0, 0) if self.root else build_user()
        return f"{uid}:{gid}"

    @property
    def limits(self) -> float:
        return self.cpus or float(os.cpu_count() or 1)

    @property
    def environment(self) -> dict[str, str]:
        return {"HOME": "/tmp", **self.env}

    def sdk_kwargs(self) -> dict:
        """The arguments of docker.containers.run (besides image and command)."""
        return {
            "user": self.user,
            "network_disabled": not self.network,
            "volumes": {str(m.host): {"bind": m.target, "mode": m.mode} for m in self.mounts},
            "working_dir": self.workdir,
            "environment": self.environment,
            "nano_cpus": int(self.limits * 1e9),
            "mem_limit": self.memory,
            "pids_limit": PIDS,
            "cap_drop": None if self.root else ["ALL"],
            "security_opt": ["no-new-privileges"],
            # untrusted work writes only its writable mounts and a bounded /tmp (counted in memory)
            "read_only": not self.root,
            "tmpfs": None if self.root else {"/tmp": f"size={TMP_SIZE},mode=1777"},
            "devices": [f"{d}:{d}:rwm" for d in self.devices],
            "group_add": self.groups or None,
            "labels": {OWNER: owner()},
        }

    def docker_argv(self) -> list[str]:
        """The same container as a `docker run` command line, rendered from sdk_kwargs()."""
        kw = self.sdk_kwargs()
        argv = ["docker", "run", "--rm", f"--user={kw['user']}", f"--cpus={kw['nano_cpus'] / 1e9:g}",
                f"--memory={kw['mem_limit']}", f"--pids-limit={kw['pids_limit']}"]
        argv += [f"--cap-drop={c}" for c in kw["cap_drop"] or []]
        argv += [f"--security-opt={o}" for o in kw["security_opt"]]
        argv += ["--read-only"] if kw["read_only"] else []
        argv += [f"--tmpfs={path}:{opts}" for path, opts in (kw["tmpfs"] or {}).items()]
        argv += ["--network=none"] if kw["network_disabled"] else []
        argv += [f"-v={host}:{v['bind']}:{v['mode']}" for host, v in kw["volumes"].items()]
        argv += [f"--device={d}" for d in kw["devices"]]
        argv += [f"--group-add={g}" for g in kw["group_add"] or []]
        argv += [f"--label={k}={v}" for k, v in kw["labels"].items()]
        argv += [f"-e={k}={v}" for k, v in kw["environment"].items()]
        return argv + [f"-w={kw['working_dir']}", self.image, *self.argv]


@dataclass
class Exited:
    exit_code: int | None  # None: killed on timeout
    seconds: float
    timed_out: bool = False
    oom: bool = False  # the kernel's OOM killer acted inside the container's memory limit
    disk_full: bool = False  # the writable mounts outgrew Container.disk and it was stopped


def build_user() -> tuple[int, int]:
    uid, gid = os.getuid(), os.getgid()
    return (uid, gid) if uid != 0 else (NONROOT, NONROOT)


def _kill(container) -> None:
    """Kill a container; a paused (frozen) one is thawed first, as the engine refuses to kill it."""
    try:
        container.kill()
    except Exception:  # noqa: BLE001 - already gone, or paused
        try:
            container.unpause()
            container.kill()
        except Exception:  # noqa: BLE001
            pass


class Docker:
    """Runs Containers; stop() kills every one still running (an interrupted run)."""

    def __init__(self, runner: Runner, client=None):
        self.runner = runner
        self.client = client or engine()
        self.stopped = threading.Event()
        self._live: set = set()
        self._lock = threading.Lock()
        self.reaped = self.reap()

    def reap(self) -> list[Reaped]:
        """Kill the containers a killed kseries run left running: a make still writing into a kept
        O= directory, a guest still booting. Returns them, with the directories they could write
        and when they started (what they wrote since may be cut short: stages/build.py scrubs it)."""
        reaped = []
        try:
            for container in self.client.containers.list(filters={"label": OWNER}):
                if orphaned(container.labels.get(OWNER, "")):
                    writable = [m["Source"] for m in container.attrs.get("Mounts", []) if m.get("RW")]
                    started = container.attrs.get("State", {}).get("StartedAt", "")
                    _kill(container)
                    reaped.append(Reaped(container.name, tuple(writable), epoch(started)))
        except engine_errors():
            return reaped
        if reaped:
            self.runner.note(f"# killed {len(reaped)} container(s) a killed kseries run left: "
                             f"{', '.join(r.name for r in reaped)}")
        return reaped

    def stop(self) -> None:
        self.stopped.set()
        with self._lock:
            for container in list(self._live):
                _kill(container)

    def run(self, spec: Container, *, log: Path, timeout: float = 3600,
            on_line: Callable[[str], None] | None = None, stop_on: Callable[[str], bool] | None = None,
            grace: float = 3.0) -> Exited:
        """Run spec in a fresh container and stream its output to log (and on_line).

        stop_on: once it returns True for a line, the container is stopped after
        `grace` seconds (a guest that said it is done need not power off cleanly)."""
        if self.stopped.is_set():
            raise Interrupted("the run was interrupted before this container started")
        uid, gid = (int(x) for x in spec.user.split(":"))
        for m in spec.mounts:
            if m.writable:
                m.host.mkdir(parents=True, exist_ok=True)
                if os.getuid() == 0 and not spec.root:
                    os.chown(m.host, uid, gid)
        self.runner.note(f"$ {shlex.join(spec.docker_argv())}")
        log.parent.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        try:
            container = self.client.containers.run(spec.image, spec.argv, detach=True, **spec.sdk_kwargs())
        except Exception as exc:  # noqa: BLE001
            raise InfraError(f"Docker could not start a container from {spec.image}: {str(exc)[:300]}") from exc
        with self._lock:
            self._live.add(container)
        finished, timed_out = threading.Event(), threading.Event()
        disk = DiskWatch(spec)

        def watchdog():
            if not finished.wait(timeout):
                timed_out.set()
                _kill(container)

        threading.Thread(target=watchdog, daemon=True).start()
        threading.Thread(target=disk.watch, args=(lambda: _kill(container), finished), daemon=True).start()
        try:
            self._stream(container, spec, log, on_line, stop_on, grace)
            code = container.wait().get("StatusCode")
            container.reload()
            oom = bool(container.attrs.get("State", {}).get("OOMKilled"))
        except engine_errors() as exc:  # the engine went away under a running container
            if self.stopped.is_set():
                raise Interrupted(f"the run was interrupted while {spec.argv[0]} ran in a container") from exc
            raise InfraError(
                f"The Docker engine stopped answering while {spec.argv[0]} ran in a container from "
                f"{spec.image} ({type(exc).__name__}: {str(exc)[:200]}); its output so far is in {log}. "
                "Nothing is blamed on the series: start the engine again ('invoke setup') and complete "
                "the run with 'invoke ci --resume'.") from exc
        finally:
            finished.set()
            with self._lock:
                self._live.discard(container)
            try:
                container.remove(force=True)
            except Exception:  # noqa: BLE001
                pass
        seconds = time.monotonic() - start
        disk.check()
        if self.stopped.is_set():
            raise Interrupted(f"the run was interrupted while {spec.argv[0]} ran in a container")
        if timed_out.is_set():
            with open(log, "a") as out:
                out.write(f"[kseries: killed after the {timeout:.0f} s time limit]\n")
            return Exited(None, seconds, timed_out=True)
        if disk.exceeded.is_set():
            with open(log, "a") as out:
                out.write(f"[kseries: stopped: its writable mounts grew past {spec.disk / 2**30:.1f} GiB]\n")
            return Exited(code, seconds, disk_full=True)
        if oom:
            with open(log, "a") as out:
                out.write(f"[kseries: killed by the out-of-memory killer at its {spec.memory} memory limit]\n")
        return Exited(code, seconds, oom=oom)

    @staticmethod
    def _stream(container, spec: Container, log: Path, on_line, stop_on, grace: float) -> None:
        kill = threading.Timer(grace, _kill, args=(container,))  # started when stop_on says the work is done
        kill.daemon = True  # a pending kill never holds up the exit
        try:
            Docker._lines(container, spec, log, on_line, stop_on, kill)
        finally:
            kill.cancel()  # the container ended by itself within its grace

    @staticmethod
    def _lines(container, spec: Container, log: Path, on_line, stop_on, kill: threading.Timer) -> None:
        with open(log, "a", errors="replace") as out:
            out.write(f"$ {shlex.join(spec.argv)}\n")
            pending = b""
            for chunk in container.logs(stream=True, follow=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    line = raw.decode("utf-8", "replace")
                    out.write(line + "\n")
                    if on_line:
                        on_line(line)
                    if stop_on and kill.ident is None and stop_on(line):
                        kill.start()
                out.flush()
            if pending:
                out.write(pending.decode("utf-8", "replace") + "\n")
