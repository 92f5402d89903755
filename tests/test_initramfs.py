"""The newc writer, read back by the real cpio tool."""

import shutil
import stat
import subprocess

import pytest

from pipeline.stages.initramfs import newc


def test_cpio_tool_reads_our_archive(tmp_path):
    if not shutil.which("cpio"):
        pytest.fail("cpio is not installed (.ci/run installs it)")
    data = newc([("dev", stat.S_IFDIR | 0o755, b""),
                 ("dev/console", stat.S_IFCHR | 0o600, b"", (5, 1)),
                 ("init", stat.S_IFREG | 0o755, b"\x7fELF" + b"x" * 1001)])
    listing = subprocess.run(["cpio", "-itv"], input=data, capture_output=True, check=True).stdout.decode()
    lines = listing.splitlines()
    assert [l.split()[-1] for l in lines] == ["dev", "dev/console", "init"]
    assert lines[1].startswith("crw-------") and "5," in lines[1]
    assert lines[2].startswith("-rwxr-xr-x") and " 1005 " in lines[2]
