"""`invoke setup`: install and start what is missing; idempotent.

Needs the system: a Docker engine (Debian's docker.io) and, where no registry
is reachable, debootstrap to make the base image. QEMU and the toolchains live
in images kseries builds itself, so the host needs neither.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from pipeline.model import config
from pipeline.infra.errors import InfraError
from pipeline.infra.runner import Runner

DOCKERD_LOG = Path("/var/log/kseries-dockerd.log")


def _say(text: str, quiet: bool) -> None:
    if not quiet:
        print(f"setup: {text}", flush=True)


def docker_ok() -> bool:
    """Does a Docker engine answer (DOCKER_HOST or the default socket)?"""
    try:
        import docker

        docker.from_env(timeout=5).ping()
        return True
    except Exception:  # noqa: BLE001
        return False


def _apt_install(runner: Runner, packages: list[str], quiet: bool) -> None:
    if os.getuid() != 0:
        raise InfraError(
            f"kseries needs the Debian packages {' '.join(packages)}, and installing them needs "
            f"root. Run: sudo apt-get install -y {' '.join(packages)} - then rerun 'invoke setup'."
        )
    _say(f"installing {' '.join(packages)} with apt-get", quiet)
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    runner.run(["apt-get", "update", "-q"], env=env, timeout=900)
    runner.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages], env=env, timeout=1800)


def ensure_engine(runner: Runner, quiet: bool) -> None:
    if docker_ok():
        _say("Docker engine: running", quiet)
        return
    missing = [p for p, exe in (("docker.io", "dockerd"), ("debootstrap", "debootstrap")) if not shutil.which(exe)]
    if missing:
        _apt_install(runner, missing, quiet)
    if os.getuid() != 0:
        raise InfraError(
            "The Docker engine is installed but not running, and starting it needs root. Run "
            "'sudo systemctl start docker' (or 'sudo dockerd &'), add yourself to the docker "
            "group ('sudo usermod -aG docker $USER', then log in again), and rerun 'invoke setup'."
        )
    if shutil.which("systemctl") and Path("/run/systemd/system").is_dir():
        runner.run(["systemctl", "start", "docker"], check=False, timeout=120)
    if not docker_ok():
        _say(f"starting dockerd in the background (log {DOCKERD_LOG})", quiet)
        runner.note("$ dockerd &")
        with open(DOCKERD_LOG, "ab") as log:
            subprocess.Popen(["dockerd"], stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    for _ in range(120):
        if docker_ok():
            _say("Docker engine: started", quiet)
            return
        time.sleep(0.5)
    raise InfraError(f"dockerd was started but does not answer after 60 s; see {DOCKERD_LOG}.")


def ensure_kvm_access(quiet: bool) -> None:
    """Let the unprivileged boot user open /dev/kvm, as GitHub Actions' udev rule does.
    Whether KVM really boots a guest is still decided by a probe at boot time."""
    from pipeline.stages.boot import kvm_usable

    kvm = Path("/dev/kvm")
    if not kvm.exists() or kvm_usable():
        return
    if os.getuid() == 0:
        kvm.chmod(0o666)
        _say("/dev/kvm: made usable by the unprivileged boot user (mode 0666)", quiet)
    else:
        _say("/dev/kvm is not usable by unprivileged users; boots use TCG "
             "(to allow KVM: sudo chmod 666 /dev/kvm)", quiet)


def browser_present() -> bool:
    """A Chromium for Playwright: Debian's, or Playwright's own (GitHub's runners install that)."""
    own = Path(os.environ.get("PLAYWRIGHT_BROWSERS_PATH", Path.home() / ".cache" / "ms-playwright"))
    return bool(shutil.which("chromium") or list(own.glob("chromium-*")))


def ensure_test_tools(quiet: bool = False) -> None:
    """What the test suite needs on the host besides the engine: cpio reads our initramfs
    back, shellcheck lets actionlint check every run: script of the workflows, objcopy (binutils)
    dumps the ELF section the BTF reader is checked against, a Chromium is the browser Playwright
    drives against the dashboard."""
    tools = {"cpio": "cpio", "shellcheck": "shellcheck", "objcopy": "binutils"}  # command -> package
    missing = [pkg for cmd, pkg in tools.items() if not shutil.which(cmd)]
    missing += [] if browser_present() else ["chromium"]
    if missing:
        _apt_install(Runner(), missing, quiet)
    _say("test tools: cpio, shellcheck, objcopy and a Chromium present", quiet)


def ensure(quiet: bool = False, image_cache: str = "", test: bool = False) -> int:
    """image_cache: a directory of saved images (docker save), e.g. kept by a CI cache:
    images found there are loaded instead of built, and images built are saved there.
    test: also install what the test suite needs (ensure_test_tools)."""
    runner = Runner()
    ensure_engine(runner, quiet)
    ensure_kvm_access(quiet)
    if test:
        ensure_test_tools(quiet)
    if not os.environ.get("KSERIES_BASE_IMAGE") and not shutil.which("debootstrap"):
        _apt_install(runner, ["debootstrap"], quiet)
    from pipeline.infra.images import Images, tag as image_tag

    images = Images(runner)
    log = Path(os.environ.get("TMPDIR", "/tmp")) / "kseries-images.log"
    cache = Path(image_cache) if image_cache else None
    for name in sorted(p.stem for p in (config.CONFIGS / "images").glob("*.yaml")):
        start = time.monotonic()
        image = config.load_image(name)
        tarball = cache / f"{image.name}-{image.digest}.tar" if cache else None
        tag = image_tag(image)
        if tarball and tarball.exists() and not images.has(tag):
            runner.run(["docker", "load", "-i", str(tarball)], timeout=1800)
        tag = images.ensure(name, log)
        if tarball and not tarball.exists():
            tarball.parent.mkdir(parents=True, exist_ok=True)
            for old in tarball.parent.glob(f"{image.name}-*.tar"):
                old.unlink()  # an older digest: the cache keeps one per image
            runner.run(["docker", "save", "-o", str(tarball), tag], timeout=1800)
        _say(f"image {tag}: ready ({time.monotonic() - start:.0f} s)", quiet)
    return 0
