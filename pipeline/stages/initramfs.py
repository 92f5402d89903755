"""The lane's userspace: a static /init built with the tree's nolibc, packed as a newc cpio."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

from pipeline.model import config
from pipeline.infra.containers import Container, Mount
from pipeline.infra.context import Context
from pipeline.infra.errors import InfraError

INIT_SOURCE = config.REPO / "ci" / "init" / "init.c"


def newc(entries: list[tuple]) -> bytes:
    """A newc ("070701") cpio archive of (name, mode, data[, (rdev major, minor)])."""
    out = bytearray()
    for ino, entry in enumerate([*entries, ("TRAILER!!!", 0, b"")], 1):
        name, mode, data = entry[:3]
        major, minor = entry[3] if len(entry) > 3 else (0, 0)
        encoded = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, major, minor, len(encoded), 0]
        out += b"070701" + b"".join(b"%08X" % f for f in fields) + encoded
        out += b"\0" * (-len(out) % 4) + data
        out += b"\0" * (-len(out) % 4)
    return bytes(out)


def tree_entries(root: Path) -> list[tuple]:
    """newc entries for every directory, file and symlink under root (modes kept, owner root)."""
    entries = []
    for path in sorted(root.rglob("*")):
        name = str(path.relative_to(root))
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            entries.append((name, stat.S_IFLNK | 0o777, str(path.readlink()).encode()))
        elif stat.S_ISDIR(st.st_mode):
            entries.append((name, stat.S_IFDIR | 0o755, b""))
        elif stat.S_ISREG(st.st_mode):
            entries.append((name, stat.S_IFREG | stat.S_IMODE(st.st_mode), path.read_bytes()))
    return entries


def build(ctx: Context, image: str, src: Path, arch: config.Arch, lane: Path, trees: list[Path], run: str) -> Path:
    """The lane's initramfs: /init, the suites' files (trees merged in order) and /kseries/run."""
    work = lane / "userspace"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copy(INIT_SOURCE, work / "init.c")
    cc = f"{arch.kernel.make_vars.get('CROSS_COMPILE', '')}{arch.userspace.cc}"
    argv = [cc, "-Os", "-static", "-nostdlib", "-fno-asynchronous-unwind-tables", "-fno-ident",
            "-include", "/src/tools/include/nolibc/nolibc.h", "-I/src/tools/include/nolibc",
            *arch.userspace.cflags, "-o", "/work/init", "/work/init.c", "-lgcc"]
    log = ctx.log(f"{lane.name}/userspace.log")
    out = ctx.docker.run(Container(image, argv, workdir="/work", mounts=[Mount(src, "/src"),
                                                                         Mount(work, "/work", writable=True)]),
                         log=log, timeout=600)
    init = work / "init"
    if out.exit_code != 0 or not init.exists():
        raise InfraError(f"Building the {arch.name} /init with nolibc failed; see {log}.")
    entries = [
        ("dev", stat.S_IFDIR | 0o755, b""),
        ("dev/console", stat.S_IFCHR | 0o600, b"", (5, 1)),
        ("proc", stat.S_IFDIR | 0o755, b""),
        ("init", stat.S_IFREG | 0o755, init.read_bytes()),
        ("kseries", stat.S_IFDIR | 0o755, b""),
        ("kseries/run", stat.S_IFREG | 0o644, run.encode()),
    ]
    names = {e[0] for e in entries}
    for tree in trees:
        for entry in tree_entries(tree):
            if entry[0] in names and stat.S_ISDIR(entry[1]):
                continue
            names.add(entry[0])
            entries.append(entry)
    cpio = lane / "initramfs.cpio"
    cpio.write_bytes(newc(entries))
    return cpio
