"""Per lane: reproducer.sh (rebuild that kernel from that tree, boot it with that initramfs) and
metadata.json (TuxMake's keys where they fit, so tools that read TuxMake output read kseries')."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from pipeline.model import config
from pipeline.model.lane import Role
from pipeline.model.results import RunRecord, StageResult, Status


def write(record: RunRecord, run_dir: Path) -> list[Path]:
    written = []
    for build in (s for s in record.stages if s.stage == "build" and s.arch and s.facts.get("image")):
        lane_dir = run_dir / build.role.tag(build.arch)
        if not lane_dir.is_dir():
            continue
        arch = config.resolve_arch(build.arch)
        boot = record.find("boot", build.arch, build.role)
        (lane_dir / "metadata.json").write_text(json.dumps(metadata(record, build, boot, lane_dir), indent=1))
        written.append(lane_dir / "metadata.json")
        if build.status == Status.PASS:
            script = lane_dir / "reproducer.sh"
            script.write_text(reproducer(record, arch, build, boot, lane_dir))
            script.chmod(0o755)
            written.append(script)
    return written


def _tree(record: RunRecord, build: StageResult) -> tuple[str, str]:
    """(the source tree kseries built, the commit it holds)."""
    if build.role is Role.BASE:
        checkout = record.find("checkout", build.arch, Role.BASE)
        return (checkout.artifacts.get("worktree", "") if checkout else ""), record.provenance.get("base-commit", "")
    apply = record.find("apply")
    return (apply.artifacts.get("worktree", "") if apply else ""), record.provenance.get("tip", "")


def reproducer(record: RunRecord, arch: config.Arch, build: StageResult, boot: StageResult | None,
               lane_dir: Path) -> str:
    tree, commit = _tree(record, build)
    make_vars = [f"{k}={v}" for k, v in arch.kernel.make_vars.items()]
    qemu_image = record.provenance.get("image-qemu", "").split(" ")[0]
    make = ["make", "O=/out", *make_vars]
    docker = 'docker run --rm --network=none --user "$(id -u):$(id -g)" -v "$TREE:/src:ro" -v "$OUT:/out" -w /src'
    lines = [
        "#!/bin/sh",
        f"# kseries reproducer: run {record.run_id}, lane {lane_dir.name} ({build.arch}, the {build.role.value}).",
        "# Rebuilds this lane's kernel from its tree with this lane's .config in the same toolchain",
        "# container, then boots it with this lane's initramfs under QEMU, as kseries did.",
        f"#   sh reproducer.sh [TREE]    TREE: the kernel tree at {commit or 'the commit kseries built'}",
        "# The images are kseries' own ('invoke setup' builds them from configs/images/ by these tags).",
        "set -eu",
        'HERE=$(cd "$(dirname "$0")" && pwd)',
        f'TREE=$(cd "${{1:-{tree}}}" && pwd)',
        'OUT=${OUT:-$HERE/reproducer-out}',
        f"TOOLCHAIN={build.facts['image']}",
        'mkdir -p "$OUT"',
        'cp "$HERE/config" "$OUT/.config"',
        f'{docker} "$TOOLCHAIN" {shlex.join(make)} olddefconfig',
        f'{docker} "$TOOLCHAIN" {shlex.join(make)} -j"$(nproc)" {arch.kernel.image_target}',
    ]
    if boot is not None and boot.facts.get("qemu") and qemu_image:
        argv = [f"/out/{arch.kernel.image_path}" if a == Path(arch.kernel.image_path).name else
                "/lane/initramfs.cpio" if a == "initramfs.cpio" else a for a in boot.facts["qemu"]]
        argv = ["tcg" if a == "kvm" else a for a in argv]  # a probe decided KVM; TCG always works
        lines += [f"QEMU={qemu_image}",
                  f'docker run --rm --network=none -v "$OUT:/out:ro" -v "$HERE:/lane:ro" "$QEMU" {shlex.join(argv)}']
    return "\n".join(lines) + "\n"


def metadata(record: RunRecord, build: StageResult, boot: StageResult | None, lane_dir: Path) -> dict:
    arch = config.resolve_arch(build.arch)
    cfg = lane_dir / "config"
    cc = re.search(r'^CONFIG_CC_VERSION_TEXT="([^"]*)"', cfg.read_text(), re.M) if cfg.exists() else None
    version = re.search(r"(\d+\.\d+(?:\.\d+)?)\s*$", cc.group(1)) if cc else None
    image = record.provenance.get(f"image-{arch.toolchain}", build.facts.get("image", "")).split(" ")
    warnings = build.facts.get("warnings", [])
    targets = {"config": {"status": "PASS" if build.facts.get("config_seconds") is not None else build.status.value,
                          "duration": build.facts.get("config_seconds")},
               "kernel": {"status": build.status.value, "duration": build.facts.get("make_seconds")}}
    if boot is not None:
        targets["boot"] = {"status": boot.status.value, "duration": boot.seconds}
    return {
        "build": {"target_arch": arch.kernel.make_vars.get("ARCH", arch.name), "toolchain": "gcc",
                  "kconfig": arch.kernel.config_target,
                  "kconfig_add": sorted(p.name for p in (lane_dir / "fragments").glob("*")) if
                  (lane_dir / "fragments").is_dir() else [],
                  "targets": list(targets), "jobs": build.facts.get("jobs"), "runtime": "docker",
                  "make_variables": dict(arch.kernel.make_vars)},
        "compiler": {"name": "gcc", "version": version.group(1) if version else "",
                     "version_full": cc.group(1) if cc else ""},
        "runtime": {"image_name": image[0], "image_digest": image[1] if len(image) > 1 else ""},
        "results": {"status": build.status.value, "targets": targets, "warnings": len(warnings),
                    "errors": sum(1 for c in build.cases if c.status == Status.FAIL),
                    "duration": {"build": build.seconds}},
        "sources": {"git": {"commit": _tree(record, build)[1]}},
        "kseries": {"run": record.run_id, "lane": lane_dir.name, "role": build.role.value,
                    "reused": build.reused},
    }
