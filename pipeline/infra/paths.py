"""Path arguments checked before any work: a wrong one is a user error naming the path, what is wrong
with it and the fix, and nothing is created or read to find out (a FIFO or /dev/zero given as a
file would block or never end)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pipeline.infra.errors import UserError

PSEUDO = {"proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "debugfs", "tracefs", "securityfs",
          "pstore", "bpf", "configfs", "mqueue", "hugetlbfs", "fusectl", "binfmt_misc"}


def kind(path: Path) -> str:
    """What is at path, in words: 'a regular file', 'a directory', 'a FIFO', ..."""
    mode = path.stat().st_mode
    for test, word in ((stat.S_ISDIR, "a directory"), (stat.S_ISREG, "a regular file"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return word
    return "a special file"


def _fs_type(path: Path) -> str:
    """The filesystem type path is on (the longest mount point above it in /proc/self/mounts)."""
    best, fstype = "", ""
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return ""
    text = str(path)
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        if (text == point or text.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
            best, fstype = point, fields[2]
    return fstype


def _writable_dir(path: Path, flag: str, original: str, fix: str) -> None:
    """An existing directory kseries can create files in, else a UserError."""
    fstype = _fs_type(path)
    if fstype in PSEUDO:
        why = f"{path} is on the kernel's {fstype} filesystem, where no file of yours can be made"
    elif os.statvfs(path).f_flag & os.ST_RDONLY:
        why = f"{path} is on a read-only filesystem"
    elif not os.access(path, os.W_OK | os.X_OK):
        why = f"{path} is not writable for you"
    else:
        return
    raise UserError(f"{flag} {original}: {why}. {fix}")


def output_dir(text: str, flag: str, fix: str = "Pass a directory you can write to.") -> Path:
    """A directory kseries writes into: an existing writable directory, or one that can be made below
    the nearest existing one. Nothing is created here."""
    path = Path(text).expanduser().absolute()
    probe = path
    while not os.path.lexists(probe) and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        where = "it" if probe == path else f"{probe}, above it,"
        raise UserError(f"{flag} {text}: {where} is {kind(probe)}, not a directory. {fix}")
    if not probe.exists():  # a dangling symlink
        raise UserError(f"{flag} {text}: {probe} is a symbolic link to nothing. {fix}")
    _writable_dir(probe, flag, text, fix)
    return path


def output_file(text: str, flag: str, fix: str = "Pass a file path in a directory you can write to.") -> Path:
    """A file kseries (over)writes: a regular file or a new one in a writable directory."""
    path = Path(text).expanduser().absolute()
    if path.exists():
        if not path.is_file():
            raise UserError(f"{flag} {text}: it is {kind(path)}, not a regular file. {fix}")
        if not os.access(path, os.W_OK):
            raise UserError(f"{flag} {text}: it is not writable for you. {fix}")
    output_dir(str(path.parent), flag, fix)
    return path


def input_dir(text: str, flag: str, fix: str) -> Path:
    """An existing, readable directory."""
    path = Path(text).expanduser()
    if not path.exists():
        raise UserError(f"{flag} {text}: no such directory. {fix}")
    if not path.is_dir():
        raise UserError(f"{flag} {text}: it is {kind(path)}, not a directory. {fix}")
    if not os.access(path, os.R_OK | os.X_OK):
        raise UserError(f"{flag} {text}: it is not readable for you. {fix}")
    return path


def input_file(text: str, flag: str, fix: str, dirs: bool = False) -> Path:
    """An existing, readable regular file (or, with dirs, a directory)."""
    path = Path(text).expanduser()
    if not path.exists():
        raise UserError(f"{flag} {text}: no such file{' or directory' if dirs else ''}. {fix}")
    if path.is_dir() and dirs:
        return input_dir(text, flag, fix)
    if not path.is_file():
        raise UserError(f"{flag} {text}: it is {kind(path)}, not a regular file. {fix}")
    if not os.access(path, os.R_OK):
        raise UserError(f"{flag} {text}: it is not readable for you. {fix}")
    return path
