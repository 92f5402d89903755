"""The real tier: ci/suites/kselftest.sh builds and installs the kselftest target mm for x86_64 in the
toolchain container, as the userspace stage runs a suite's script (read-only tree at /src, no
network, non-root), and leaves what the guest needs in $OUT/rootfs: the tree's run_kselftest.sh and
kselftest-list.txt (plus the built programs the tree lists for no runner, e.g. mm:mseal_test),
busybox as /bin/sh, and /usr/bin/timeout (ci/kselftest/timeout.c) with the coreutils semantics the
tree's runner relies on (--foreground, exit 124), checked by running it. A few minutes: only the
kernel's UAPI headers are made (headers_install), no kernel is built."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ci import seedlike
from pipeline.infra.containers import Container, Mount
from pipeline.infra.context import Context, cache_root
from pipeline.infra.progress import Progress
from pipeline.infra.runner import Runner
from pipeline.model import config
from pipeline.stages import source

pytestmark = pytest.mark.real
REPO = Path(__file__).resolve().parent.parent


def elf(path: Path) -> bool:
    return path.read_bytes()[:4] == b"\x7fELF"


def interpreter(path: Path) -> str:
    out = subprocess.run(["readelf", "-l", str(path)], capture_output=True, text=True, check=True).stdout
    return next((ln.split(":", 1)[1].strip(" ]") for ln in out.splitlines() if "program interpreter" in ln), "")


@pytest.fixture
def tree(tmp_path):
    """The base tree of the seed series, checked out in a worktree of its own (removed after)."""
    ctx = Context(tmp_path / "run", cache_root(), Runner(tmp_path / "c.log"), Progress())
    base = source.ensure_base(ctx, config.load_series(seedlike.SEED))
    where = tmp_path / "tree"
    subprocess.run(["git", "-C", str(base.repo), "worktree", "add", "--detach", "-q", str(where), base.commit],
                   check=True)
    try:
        yield ctx, where
    finally:
        subprocess.run(["git", "-C", str(base.repo), "worktree", "remove", "--force", str(where)], check=False)


def test_the_mm_target_builds_and_installs_what_the_guest_runs(tree, tmp_path, need_docker):
    ctx, src = tree
    image = ctx.image("toolchain")
    kbuild, out = tmp_path / "kbuild", tmp_path / "out"
    for d in (kbuild, out):
        d.mkdir()
        d.chmod(0o777)  # the container's build user writes there
    x86 = config.load_arch("x86_64")
    env = {**{k: str(v) for k, v in x86.kernel.make_vars.items()}, "KSELFTEST_TARGETS": "mm",
           "BUSYBOX": "/bin/busybox", "SRC": "/src", "KBUILD": "/kbuild", "OUT": "/out",
           "JOBS": str(ctx.jobs), "KSELFTEST_HELPERS": "/kselftest-helpers"}
    log = tmp_path / "build.log"
    exited = ctx.docker.run(Container(image, ["sh", "-eu", "/suite/kselftest.sh"], workdir="/out", env=env,
                                      mounts=[Mount(src, "/src"), Mount(REPO / "ci" / "suites", "/suite"),
                                              Mount(REPO / "ci" / "kselftest", "/kselftest-helpers"),
                                              Mount(kbuild, "/kbuild", writable=True),
                                              Mount(out, "/out", writable=True)]),
                            log=log, timeout=1200)
    said = log.read_text(errors="replace")
    assert exited.exit_code == 0, said[-4000:]

    root = out / "rootfs"
    kst = root / "kselftest"
    # the tree's own install: its runner and list
    assert (kst / "run_kselftest.sh").is_file() and (kst / "kselftest" / "runner.sh").is_file()
    listed = (kst / "kselftest-list.txt").read_text().split()
    tree_listed = (kst / "kselftest-list.tree.txt").read_text().split()
    assert "mm:ksft_mmap.sh" in tree_listed and "mm:ksft_mmap.sh" in listed  # the tree's lines kept
    assert "mm:mseal_test" in listed and "mm:mseal_test" not in tree_listed  # built, listed by kseries
    assert elf(kst / "mm" / "mseal_test") and os.access(kst / "mm" / "mseal_test", os.X_OK)
    assert (kst / "mm" / "settings").is_file()
    # every listed program is there, and what the image could not build is named with why
    for line in listed:
        collection, name = line.split(":", 1)
        assert (kst / collection / name).is_file(), line
    unbuilt = kst / "kseries-unbuilt.txt"
    for line in unbuilt.read_text().splitlines() if unbuilt.exists() else []:
        name, why = line.split("\t")
        assert "lacks" in why and name not in listed, line

    # busybox is the shell and the runner's tools
    busybox = root / "bin" / "busybox"
    assert elf(busybox) and not interpreter(busybox)
    for applet in ("bin/sh", "bin/sed", "bin/grep", "usr/bin/tr", "usr/bin/cut", "usr/bin/basename"):
        assert (root / applet).is_symlink() and os.readlink(root / applet) == "/bin/busybox", applet

    # the runner calls /usr/bin/timeout --foreground and reads 124 as a timeout: ours does both
    runner = (kst / "kselftest" / "runner.sh").read_text()
    assert "/usr/bin/timeout --foreground" in runner and "timeout_rc=124" in runner
    timeout = root / "usr" / "bin" / "timeout"
    assert elf(timeout) and not interpreter(timeout) and not timeout.is_symlink()
    ran = subprocess.run([str(timeout), "--foreground", "1", str(timeout), "1", "sleep", "20"], timeout=15)
    assert ran.returncode == 124
    assert subprocess.run([str(timeout), "5", "sh", "-c", "exit 3"], timeout=15).returncode == 3

    # dynamically linked tests find their loader and libc in the initramfs
    loader = root / interpreter(kst / "mm" / "mseal_test").lstrip("/")
    if loader.is_symlink():  # an absolute link, to be read inside the initramfs
        loader = root / os.readlink(loader).lstrip("/")
    assert elf(loader) and not loader.is_symlink()
    assert (root / "lib" / "x86_64-linux-gnu" / "libc.so.6").is_file()
    assert elf(root / "bin" / "bash")  # mm's run_vmtests.sh (behind every mm:ksft_*.sh) is bash
