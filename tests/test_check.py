"""Console checks: a splat anywhere fails the lane, unless the base shows the same splat."""

from pipeline.stages.check import scan
from pipeline.model.results import Status

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
    cases, _ = scan(log, "x86_64")
    assert [(c.name, c.status) for c in cases] == [("x86_64: console free of splats", Status.PASS)]


def test_warning_fails_with_excerpt(tmp_path):
    log = tmp_path / "console.log"
    log.write_text(CLEAN.replace("kseries-init: done", "[ 1.0] WARNING: CPU: 0 PID: 1 at mm/rmap.c:42 foo+0x1\n"
                                 "[ 1.0] Call Trace:\nkseries-init: done"))
    case = scan(log, "arm64")[0][0]
    assert case.status == Status.FAIL
    assert "WARNING: CPU: 0 PID: 1 at mm/rmap.c:42" in case.message
    assert "Call Trace" in case.detail


def test_panic_fails(tmp_path):
    log = tmp_path / "console.log"
    log.write_text("[ 0.5] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000000\n")
    assert scan(log, "sh4")[0][0].status == Status.FAIL


def test_a_splat_the_base_shows_too_is_pre_existing_and_a_new_one_is_the_series(tmp_path):
    base, series = tmp_path / "base.log", tmp_path / "series.log"
    base.write_text(CLEAN.replace("kseries-init: done", "[ 2.133] WARNING: CPU: 1 PID: 77 at mm/rmap.c:42 "
                                  "foo+0x1a/0x40\nkseries-init: done"))
    _, known = scan(base, "x86_64")
    same = CLEAN.replace("kseries-init: done", "[ 3.901] WARNING: CPU: 0 PID: 80 at mm/rmap.c:42 foo+0x1a/0x40\n"
                         "kseries-init: done")
    series.write_text(same)
    case = scan(series, "x86_64", set(known))[0][0]
    assert case.status == Status.PASS and case.message.startswith("pre-existing") and case.detail
    series.write_text(same.replace("kseries-init: done", "[ 4.0] BUG: kernel NULL pointer dereference\n"
                                   "kseries-init: done"))
    case = scan(series, "x86_64", set(known))[0][0]
    assert case.status == Status.FAIL and "1 kernel splat line(s) (1 more the base shows too)" in case.message
    assert "BUG: kernel NULL pointer" in case.message


def test_a_kernel_message_inside_the_init_marker_still_proves_userspace():
    # seen in CI: a late printk landed inside "kseries-init: reached userspace", the lane
    # ran all its suites, and the boot was failed for "stopping before init"
    from pipeline.stages.boot import console_rules, proves_userspace
    rules = console_rules()
    garbled = "kseries-init: rea[    3.1] clocksource: Switched to clocksource tsc"
    assert not rules["reached"] in garbled
    assert proves_userspace(garbled, rules)
    assert proves_userspace("kseries-init: suite nolibc start", rules)
    assert not proves_userspace("[    0.9] Run /init as init process", rules)
    assert not proves_userspace("Kernel panic - not syncing: Attempted to kill init!", rules)


def test_a_kernel_stuck_before_init_is_blamed_only_when_the_base_reached_init():
    from types import SimpleNamespace
    from pathlib import Path

    from pipeline.model.results import Case, Status
    from pipeline.stages.boot import Booted, stuck_before_init

    def booted(timed_out=True, ok=False):
        case = Case("boot", "boot to init (TCG)", Status.FAIL, 60, "the kernel did not reach userspace init "
                    "within 60 s, in two attempts", arch="x86_64")
        return Booted(ok, case, Path("console.log"), {"timed_out": timed_out})

    def work(base_lane=False, base=None):
        return SimpleNamespace(lane=SimpleNamespace(is_base=base_lane), other=lambda stage, role: base)

    passed = SimpleNamespace(status=Status.PASS, facts={"seconds_to_init": 3.0})
    status, message = stuck_before_init(work(base=passed), booted())
    assert status == Status.FAIL and "while the base's kernel reached init in 3.0 s" in message
    status, message = stuck_before_init(work(base=SimpleNamespace(status=Status.FAIL, facts={})), booted())
    assert status == Status.ERROR and "not the series" in message
    assert stuck_before_init(work(base_lane=True), booted())[0] == Status.ERROR
    assert stuck_before_init(work(base=passed), booted(timed_out=False)) is None  # a panic stays the kernel's
