"""Docker behind one small interface: build our own images, run one command.

Untrusted work (builds, boots) runs with no network, as a non-root user, with
CPU, memory, pid and time limits, all capabilities dropped and nothing mounted
but the directories it needs. Images are built locally from a Debian base: by
debootstrap where there is no registry, or from a registry image named by
KSERIES_BASE_IMAGE (e.g. debian:trixie-slim on GitHub Actions).
"""

from __future__ import annotations

import io
import os
import shlex
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .config import Image
from .errors import InfraError
from .runner import Runner

BASE_TAG = "kseries/base:trixie"
SUITE = "trixie"
MIRROR = "http://deb.debian.org/debian"
NONROOT = 1000  # used when kseries itself runs as root

APT = "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends"
CLEAN = "rm -rf /var/lib/apt/lists/* /tmp/*.deb"


def _run(steps: list[str]) -> str:
    return "RUN " + " \\\n && ".join(steps + [CLEAN]) + "\n"


def dockerfile(image: Image) -> str:
    """The image's Dockerfile, rendered from its YAML: trixie packages, then any from
    unstable (pinned low, so only the named ones come from there), then foreign-arch
    libraries unpacked into /opt/sysroot/<arch> for cross-linking (no multiarch dpkg).
    Each part is its own layer, so adding a sysroot library reuses the layers before it."""
    text = "ARG BASE\nFROM ${BASE}\n" + _run(["apt-get update", f"{APT} {' '.join(image.packages)}"])
    if image.unstable_packages:
        text += _run([
            "echo 'deb http://deb.debian.org/debian sid main' > /etc/apt/sources.list.d/sid.list",
            "printf 'Package: *\\nPin: release a=unstable\\nPin-Priority: 100\\n' > /etc/apt/preferences.d/sid",
            "apt-get -o Acquire::Check-Valid-Until=false update",
            f"{APT} {' '.join(p + '/unstable' for p in image.unstable_packages)}",
        ])
    for arch, pkgs in image.sysroots.items():
        text += _run([
            f"dpkg --add-architecture {arch}",
            "apt-get -o Acquire::Check-Valid-Until=false update",
            f"mkdir -p /opt/sysroot/{arch}",
            f"cd /tmp && apt-get download {' '.join(f'{p}:{arch}/trixie' for p in pkgs)}",
            f"for d in /tmp/*_{arch}.deb; do dpkg-deb -x $d /opt/sysroot/{arch}; done",
        ])
    return text


@dataclass
class Mount:
    host: Path
    target: str
    writable: bool = False


@dataclass
class Outcome:
    exit_code: int | None  # None: killed on timeout
    seconds: float
    timed_out: bool = False


def _kill(container) -> None:
    try:
        container.kill()
    except Exception:  # noqa: BLE001 - already gone
        pass


def build_user() -> tuple[int, int]:
    uid, gid = os.getuid(), os.getgid()
    return (uid, gid) if uid != 0 else (NONROOT, NONROOT)


class Docker:
    def __init__(self, runner: Runner):
        self.runner = runner
        try:
            import docker  # the SDK

            self.client = docker.from_env(timeout=600)
            self.client.ping()
        except Exception as exc:  # noqa: BLE001 - any failure means: no engine
            host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
            raise InfraError(
                f"The Docker engine at {host} is unreachable ({type(exc).__name__}: "
                f"{str(exc)[:160]}). kseries builds and boots kernels in containers. "
                "Run 'invoke setup' to install and start the engine, or start it yourself "
                "(sudo dockerd &, or systemctl start docker) and check that your user may "
                "use it (member of the 'docker' group)."
            ) from exc

    # ---- images -------------------------------------------------------------
    def has_image(self, tag: str) -> bool:
        import docker

        try:
            self.client.images.get(tag)
            return True
        except docker.errors.ImageNotFound:
            return False

    def image_id(self, tag: str) -> str:
        return self.client.images.get(tag).id

    def ensure_base(self, log: Path) -> str:
        wanted = os.environ.get("KSERIES_BASE_IMAGE")
        if wanted:
            if not self.has_image(wanted):
                self.runner.note(f"$ docker pull {wanted}")
                try:
                    self.client.images.pull(wanted)
                except Exception as exc:  # noqa: BLE001
                    raise InfraError(
                        f"KSERIES_BASE_IMAGE={wanted} is not present and could not be pulled "
                        f"({str(exc)[:160]}). Unset it to build the base with debootstrap."
                    ) from exc
            return wanted
        if self.has_image(BASE_TAG):
            return BASE_TAG
        if not shutil.which("debootstrap") or os.getuid() != 0:
            raise InfraError(
                f"The base image {BASE_TAG} does not exist and cannot be made here: it needs "
                "debootstrap, run as root. Run 'sudo invoke setup', or set "
                "KSERIES_BASE_IMAGE=debian:trixie-slim on a machine with a registry."
            )
        with tempfile.TemporaryDirectory(prefix="kseries-rootfs-", dir="/var/tmp") as tmp:
            root = Path(tmp) / "rootfs"
            self.runner.run(
                ["debootstrap", "--variant=minbase", SUITE, root, MIRROR], log=log, timeout=1800
            )
            tarball = Path(tmp) / "rootfs.tar"
            self.runner.run(["tar", "-C", root, "-cf", tarball, "."], log=log, timeout=600)
            repo, tag = BASE_TAG.split(":")
            self.runner.note(f"$ docker import {tarball} {BASE_TAG}")
            self.client.api.import_image_from_file(str(tarball), repository=repo, tag=tag)
        return BASE_TAG

    def ensure_image(self, image: Image, log: Path) -> str:
        """Build kseries/<name>:<digest of its YAML> once; later calls reuse it."""
        tag = f"kseries/{image.name}:{image.digest}"
        if self.has_image(tag):
            return tag
        base = self.ensure_base(log)
        text = dockerfile(image)
        self.runner.note(f"$ docker build --build-arg BASE={base} -t {tag} - <<EOF\n{text}EOF")
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as out:
            try:
                for chunk in self.client.api.build(
                    fileobj=io.BytesIO(text.encode()),
                    tag=tag,
                    buildargs={"BASE": base},
                    rm=True,
                    forcerm=True,
                    decode=True,
                ):
                    if "stream" in chunk:
                        out.write(chunk["stream"])
                    if "error" in chunk:
                        raise InfraError(
                            f"Building the container image {tag} failed: {chunk['error'].strip()}. "
                            f"The full log is {log}. Check that Debian's archive is reachable."
                        )
            except InfraError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise InfraError(f"Building the container image {tag} failed: {exc}. See {log}.") from exc
        return tag

    # ---- running ------------------------------------------------------------
    def run(
        self,
        image: str,
        argv: list[str],
        *,
        mounts: list[Mount],
        log: Path,
        workdir: str = "/",
        env: dict[str, str] | None = None,
        network: bool = False,
        root: bool = False,
        cpus: float | None = None,
        memory: str = "8g",
        timeout: float = 3600,
        devices: list[str] | None = None,
        groups: list[int] | None = None,
        on_line: Callable[[str], None] | None = None,
        stop_on: Callable[[str], bool] | None = None,
        grace: float = 3.0,
    ) -> Outcome:
        """Run argv in a fresh container and stream its output to log (and on_line).

        stop_on: once it returns True for a line, the container is stopped after
        `grace` seconds (a guest that said it is done need not power off cleanly).
        """
        cpus = cpus or float(os.cpu_count() or 1)
        uid, gid = (0, 0) if root else build_user()
        for m in mounts:
            if m.writable:
                m.host.mkdir(parents=True, exist_ok=True)
                if os.getuid() == 0 and not root:
                    os.chown(m.host, uid, gid)
        volumes = {
            str(m.host): {"bind": m.target, "mode": "rw" if m.writable else "ro"} for m in mounts
        }
        env = {"HOME": "/tmp", **(env or {})}
        equivalent = ["docker", "run", "--rm", f"--user={uid}:{gid}", f"--cpus={cpus:g}",
                      f"--memory={memory}", "--pids-limit=4096", "--cap-drop=ALL",
                      "--security-opt=no-new-privileges"]
        equivalent += [] if network else ["--network=none"]
        equivalent += [f"-v={m.host}:{m.target}:{'rw' if m.writable else 'ro'}" for m in mounts]
        equivalent += [f"--device={d}" for d in devices or []]
        equivalent += [f"--group-add={g}" for g in groups or []]
        equivalent += [f"-e={k}={v}" for k, v in env.items()] + [f"-w={workdir}", image, *argv]
        self.runner.note(f"$ {shlex.join(equivalent)}")
        log.parent.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        try:
            container = self.client.containers.run(
                image,
                argv,
                detach=True,
                user=f"{uid}:{gid}",
                network_disabled=not network,
                volumes=volumes,
                working_dir=workdir,
                environment=env,
                nano_cpus=int(cpus * 1e9),
                mem_limit=memory,
                pids_limit=4096,
                cap_drop=None if root else ["ALL"],
                security_opt=["no-new-privileges"],
                devices=[f"{d}:{d}:rwm" for d in devices or []],
                group_add=groups or None,
            )
        except Exception as exc:  # noqa: BLE001
            raise InfraError(f"Docker could not start a container from {image}: {str(exc)[:300]}") from exc
        timed_out = threading.Event()

        def watchdog():
            if not finished.wait(timeout):
                timed_out.set()
                _kill(container)

        finished = threading.Event()
        stopping = threading.Event()
        threading.Thread(target=watchdog, daemon=True).start()
        try:
            with open(log, "a", errors="replace") as out:
                out.write(f"$ {shlex.join(argv)}\n")
                pending = b""
                for chunk in container.logs(stream=True, follow=True):
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for raw in lines:
                        line = raw.decode("utf-8", "replace")
                        out.write(line + "\n")
                        if on_line:
                            on_line(line)
                        if stop_on and not stopping.is_set() and stop_on(line):
                            stopping.set()
                            threading.Timer(grace, _kill, args=(container,)).start()
                    out.flush()
                if pending:
                    out.write(pending.decode("utf-8", "replace") + "\n")
            code = container.wait().get("StatusCode")
        finally:
            finished.set()
            try:
                container.remove(force=True)
            except Exception:  # noqa: BLE001
                pass
        seconds = time.monotonic() - start
        if timed_out.is_set():
            with open(log, "a") as out:
                out.write(f"[kseries: killed after the {timeout:.0f} s time limit]\n")
            return Outcome(None, seconds, timed_out=True)
        return Outcome(code, seconds)
