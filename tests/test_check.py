"""Console checks: a splat anywhere fails the lane."""

from pipeline.check import scan
from pipeline.results import Status

CLEAN = """\
[    0.7] Run /init as init process
kseries-init: reached userspace: Linux 7.2.13 x86_64
kseries-init: suite nolibc start
kseries-init: suite nolibc exit 0
kseries-init: done
"""


def test_clean_console_passes(tmp_path):
    log = tmp_path / "console.log"
    log.write_text(CLEAN)
    cases = scan(log, "x86_64")
    assert [(c.name, c.status) for c in cases] == [("x86_64: console free of splats", Status.PASS)]


def test_warning_fails_with_excerpt(tmp_path):
    log = tmp_path / "console.log"
    log.write_text(CLEAN.replace("kseries-init: done", "[ 1.0] WARNING: CPU: 0 PID: 1 at mm/rmap.c:42 foo+0x1\n"
                                 "[ 1.0] Call Trace:\nkseries-init: done"))
    case = scan(log, "arm64")[0]
    assert case.status == Status.FAIL
    assert "WARNING: CPU: 0 PID: 1 at mm/rmap.c:42" in case.message
    assert "Call Trace" in case.detail


def test_panic_fails(tmp_path):
    log = tmp_path / "console.log"
    log.write_text("[ 0.5] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000000\n")
    assert scan(log, "sh4")[0].status == Status.FAIL
