"""Each lane's reproducer.sh (valid shell, the exact image and make and QEMU lines) and metadata.json."""

import json
import shutil
import subprocess


from pipeline.model.lane import Role
from pipeline.model.results import Case, RunRecord, StageResult, Status
from pipeline.report import lane_files
from pipeline.stages.boot import qemu_argv
from pipeline.model import config


def record(tmp_path):
    run_dir = tmp_path / "run"
    lane = run_dir / "sh4"
    (lane / "fragments").mkdir(parents=True)
    (lane / "fragments" / "00-boot.config").write_text("CONFIG_BLK_DEV_INITRD=y\n")
    (lane / "config").write_text('CONFIG_CC_VERSION_TEXT="sh4-linux-gnu-gcc (Debian 14.2.0-19) 14.2.0"\n')
    arch = config.resolve_arch("sh4")
    rec = RunRecord("r1", "page_mapped", "t", ["sh4"], "now",
                    provenance={"tip": "97cfdcdb5f3c", "image-qemu": "kseries/qemu:abc sha256:1",
                                "image-toolchain": "kseries/toolchain:def sha256:2"})
    rec.stages = [
        StageResult("apply", "", Role.SERIES, Status.PASS, 1, artifacts={"worktree": "/cache/trees/page_mapped"}),
        StageResult("build", "sh4", Role.SERIES, Status.PASS, 95, cases=[Case("build", "zImage", Status.PASS)],
                    facts={"image": "kseries/toolchain:def", "config_seconds": 2.0, "make_seconds": 93.0,
                           "jobs": 2, "warnings": ["a: warning: x"]}),
        StageResult("boot", "sh4", Role.SERIES, Status.PASS, 2,
                    facts={"qemu": qemu_argv(arch, "zImage", "initramfs.cpio", "tcg")}),
    ]
    return rec, run_dir


def test_reproducer_is_valid_shell_with_the_exact_commands(tmp_path):
    rec, run_dir = record(tmp_path)
    written = lane_files.write(rec, run_dir)
    script = (run_dir / "sh4" / "reproducer.sh").read_text()
    assert run_dir / "sh4" / "reproducer.sh" in written
    assert "TOOLCHAIN=kseries/toolchain:def" in script and "QEMU=kseries/qemu:abc" in script
    assert "make O=/out ARCH=sh CROSS_COMPILE=sh4-linux-gnu- -j\"$(nproc)\" zImage" in script
    assert "-kernel /out/arch/sh/boot/zImage -initrd /lane/initramfs.cpio" in script
    assert "${1:-/cache/trees/page_mapped}" in script and "--network=none" in script
    assert subprocess.run(["sh", "-n", str(run_dir / "sh4" / "reproducer.sh")]).returncode == 0
    if shutil.which("shellcheck"):
        check = subprocess.run(["shellcheck", "-S", "warning", str(run_dir / "sh4" / "reproducer.sh")],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stdout


def test_metadata_uses_tuxmake_keys(tmp_path):
    rec, run_dir = record(tmp_path)
    lane_files.write(rec, run_dir)
    meta = json.loads((run_dir / "sh4" / "metadata.json").read_text())
    assert meta["compiler"] == {"name": "gcc", "version": "14.2.0",
                                "version_full": "sh4-linux-gnu-gcc (Debian 14.2.0-19) 14.2.0"}
    assert meta["runtime"] == {"image_name": "kseries/toolchain:def", "image_digest": "sha256:2"}
    assert meta["build"]["target_arch"] == "sh" and meta["build"]["kconfig"] == "rts7751r2dplus_defconfig"
    assert meta["build"]["kconfig_add"] == ["00-boot.config"]
    assert meta["results"]["targets"]["kernel"] == {"status": "PASS", "duration": 93.0}
    assert meta["results"]["warnings"] == 1 and meta["sources"]["git"]["commit"] == "97cfdcdb5f3c"
