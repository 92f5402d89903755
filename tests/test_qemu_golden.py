"""Golden files pin each arch's QEMU command line, rendered from configs/arches/.
Regenerate with KSERIES_REGEN_GOLDEN=1 after an intended change."""

import os
import shlex
from pathlib import Path

import pytest

from pipeline.stages import boot
from pipeline.model import config

GOLDEN = Path(__file__).parent / "golden"


CASES = [(name, accel) for name in config.arch_names() for accel in ("tcg", "kvm")
         if accel == "tcg" or config.load_arch(name).qemu.kvm_host]


@pytest.mark.parametrize("name,accel", CASES)
def test_qemu_command_line(name, accel):
    arch = config.load_arch(name)
    got = shlex.join(boot.qemu_argv(arch, "KERNEL", "INITRD", accel)) + "\n"
    path = GOLDEN / f"qemu-{name}-{accel}.txt"
    if os.environ.get("KSERIES_REGEN_GOLDEN"):
        path.write_text(got)
    assert path.read_text() == got
