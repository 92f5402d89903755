"""kseries' own container images, built locally from their YAML (configs/images/).

An image is named by one function, tag(): kseries/<name>:<digest of its YAML>,
so editing the YAML makes a new image and an unchanged one is built once. The
Debian base comes from debootstrap where there is no registry, or from a
registry image named by KSERIES_BASE_IMAGE (e.g. debian:trixie-slim on GitHub).
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path

from pipeline.infra import locks
from pipeline.infra.containers import engine
from pipeline.infra.errors import InfraError
from pipeline.infra.runner import Runner
from pipeline.model import config

BASE_TAG = "kseries/base:trixie"
SUITE = "trixie"
MIRROR = "http://deb.debian.org/debian"
APT = "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends"
CLEAN = "rm -rf /var/lib/apt/lists/* /tmp/*.deb"


def tag(image: config.Image) -> str:
    return f"kseries/{image.name}:{image.digest}"


def _run(steps: list[str]) -> str:
    return "RUN " + " \\\n && ".join(steps + [CLEAN]) + "\n"


def dockerfile(image: config.Image) -> str:
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


class Images:
    def __init__(self, runner: Runner, client=None, cache: Path | None = None):
        from pipeline.infra.context import cache_root

        self.runner = runner
        self.client = client or engine()
        self.cache = cache or cache_root()

    def has(self, name: str) -> bool:
        import docker

        try:
            self.client.images.get(name)
            return True
        except docker.errors.ImageNotFound:
            return False

    def image_id(self, name: str) -> str:
        return self.client.images.get(name).id

    def base(self, log: Path) -> str:
        """The Debian base every image starts from."""
        wanted = os.environ.get("KSERIES_BASE_IMAGE")
        if wanted:
            if not self.has(wanted):
                self.runner.note(f"$ docker pull {wanted}")
                try:
                    self.client.images.pull(wanted)
                except Exception as exc:  # noqa: BLE001
                    raise InfraError(
                        f"KSERIES_BASE_IMAGE={wanted} is not present and could not be pulled "
                        f"({str(exc)[:160]}). Unset it to build the base with debootstrap."
                    ) from exc
            return wanted
        if self.has(BASE_TAG):
            return BASE_TAG
        if not shutil.which("debootstrap") or os.getuid() != 0:
            raise InfraError(
                f"The base image {BASE_TAG} does not exist and cannot be made here: it needs "
                "debootstrap, run as root. Run 'sudo invoke setup', or set "
                "KSERIES_BASE_IMAGE=debian:trixie-slim on a machine with a registry."
            )
        with tempfile.TemporaryDirectory(prefix="kseries-rootfs-", dir="/var/tmp") as tmp:
            root = Path(tmp) / "rootfs"
            self.runner.run(["debootstrap", "--variant=minbase", SUITE, root, MIRROR], log=log, timeout=1800)
            tarball = Path(tmp) / "rootfs.tar"
            self.runner.run(["tar", "-C", root, "-cf", tarball, "."], log=log, timeout=600)
            repo, version = BASE_TAG.split(":")
            self.runner.note(f"$ docker import {tarball} {BASE_TAG}")
            self.client.api.import_image_from_file(str(tarball), repository=repo, tag=version)
        return BASE_TAG

    def ensure(self, name: str, log: Path) -> str:
        """The image configs/images/<name>.yaml describes, built once; its tag."""
        image = config.load_image(name)
        wanted = tag(image)
        if self.has(wanted):
            return wanted
        with locks.hold(self.cache, f"image-{name}"):  # another run may be building it right now
            return wanted if self.has(wanted) else self._build(image, wanted, log)

    def _build(self, image, wanted: str, log: Path) -> str:
        base = self.base(log)
        text = dockerfile(image)
        self.runner.note(f"$ docker build --build-arg BASE={base} -t {wanted} - <<EOF\n{text}EOF")
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as out:
            try:
                for chunk in self.client.api.build(fileobj=io.BytesIO(text.encode()), tag=wanted,
                                                   buildargs={"BASE": base}, rm=True, forcerm=True, decode=True):
                    if "stream" in chunk:
                        out.write(chunk["stream"])
                    if "error" in chunk:
                        raise InfraError(
                            f"Building the container image {wanted} failed: {chunk['error'].strip()}. "
                            f"The full log is {log}. Check that Debian's archive is reachable."
                        )
            except InfraError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise InfraError(f"Building the container image {wanted} failed: {exc}. See {log}.") from exc
        return wanted
