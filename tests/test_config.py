"""configs/ as strict data: aliases, errors naming the input, a fourth arch from data alone."""

import dataclasses
import shutil
from pathlib import Path

import pytest

from pipeline.stages import boot, build, suites
from pipeline.model import config
from pipeline.run import pipeline as orchestrator
from pipeline.infra.errors import UserError

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("alias,name", [("sh", "sh4"), ("aarch64", "arm64"), ("amd64", "x86_64"),
                                        ("x86_64", "x86_64"), ("SH4", "sh4")])
def test_arch_aliases_resolve(alias, name):
    assert config.resolve_arch(alias).name == name


def test_unknown_arch_lists_valid_names():
    with pytest.raises(UserError) as err:
        config.resolve_arch("mips")
    assert "Unknown architecture 'mips'" in err.value.message
    for name in ("arm64", "sh4", "x86_64"):
        assert name in err.value.message


def test_unknown_series_names_known_ones():
    with pytest.raises(UserError) as err:
        config.load_series("no_such_series")
    assert "no_such_series" in err.value.message and "page_mapped" in err.value.message


@pytest.fixture
def configs_copy(tmp_path):
    root = tmp_path / "configs"
    shutil.copytree(REPO / "configs", root)
    return root


def test_unknown_key_is_rejected(configs_copy):
    path = configs_copy / "arches" / "x86_64.yaml"
    path.write_text(path.read_text() + "colour: blue\n")
    with pytest.raises(UserError) as err:
        config.load_arch("x86_64", configs_copy)
    assert "colour" in err.value.message and str(path) in err.value.message


def test_malformed_yaml_names_the_file(configs_copy):
    path = configs_copy / "series" / "page_mapped.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(UserError) as err:
        config.load_series("page_mapped", configs_copy)
    assert "not valid YAML" in err.value.message and str(path) in err.value.message


def test_missing_required_key(configs_copy):
    path = configs_copy / "series" / "page_mapped.yaml"
    text = "\n".join(l for l in path.read_text().splitlines() if not l.startswith("message_id:"))
    path.write_text(text)
    with pytest.raises(UserError) as err:
        config.load_series("page_mapped", configs_copy)
    assert "message_id" in err.value.message


RISCV = """\
name: riscv64
aliases: [riscv]
kernel:
  make_vars: {ARCH: riscv, CROSS_COMPILE: riscv64-linux-gnu-}
  image_target: Image
  image_path: arch/riscv/boot/Image
  config_target: tinyconfig
  fragments: [boot.config]
userspace: {cc: gcc}
qemu:
  binary: qemu-system-riscv64
  machine: virt
  memory: 512M
  console: ttyS0
  append: [panic=-1]
  extra_args: [-bios, default]
suites:
  nolibc: {applies: true, vars: {XARCH: riscv64}}
  bpf_arena: {applies: false, reason: "not wired up in this test"}
"""


def test_fourth_arch_from_data_alone(configs_copy):
    (configs_copy / "arches" / "riscv64.yaml").write_text(RISCV)
    arch = config.resolve_arch("riscv", configs_copy)
    assert arch.name == "riscv64" and "riscv64" in config.arch_names(configs_copy)
    argv = boot.qemu_argv(arch, "Image", "initramfs.cpio", "tcg")
    assert argv == ["qemu-system-riscv64", "-accel", "tcg", "-M", "virt", "-m", "512M", "-smp", "1",
                    "-display", "none", "-monitor", "none", "-no-reboot", "-serial", "stdio",
                    "-kernel", "Image", "-initrd", "initramfs.cpio",
                    "-append", "console=ttyS0 panic=-1", "-bios", "default"]


def test_fourth_arch_plans_its_lane_from_data_alone(monkeypatch, configs_copy):
    """Kernel fragments, suites that run, suites that don't (with the reason), the guest's manifest."""
    (configs_copy / "arches" / "riscv64.yaml").write_text(RISCV)
    monkeypatch.setattr(config, "CONFIGS", configs_copy)
    spec, arches, _ = orchestrator.plan("page_mapped", ["riscv"])
    spec = dataclasses.replace(spec, tests=("boot", "console", "nolibc", "bpf_arena"))
    riscv = arches[0]
    assert [p.name for p in build.fragments_for(riscv, spec)] == ["boot.config", "bpf-syscall.config", "nolibc.config"]
    runs, skips = suites.selected(spec, riscv)
    assert [s.name for s in runs] == ["nolibc"]
    assert [(s.name, why) for s, why in skips] == [("bpf_arena", "not wired up in this test")]
    assert suites.manifest(runs, riscv) == "nolibc - /bin/nolibc-test\n"
    assert build.make_argv(riscv, "/out", "Image", jobs=2) == [
        "make", "O=/out", "ARCH=riscv", "CROSS_COMPILE=riscv64-linux-gnu-", "-j2", "Image"]


def test_plan_validates_before_work(monkeypatch, configs_copy):
    monkeypatch.setattr(config, "CONFIGS", configs_copy)
    spec, arches, _ = orchestrator.plan("page_mapped", ["sh", "sh4", "amd64"])
    assert [a.name for a in arches] == ["sh4", "x86_64"]  # aliases resolved, duplicates dropped
    (configs_copy / "kconfig" / "sh4.config").unlink()
    with pytest.raises(UserError) as err:
        orchestrator.plan("page_mapped", ["sh4"])
    assert "sh4.config" in err.value.message


@pytest.mark.parametrize("written, read", [("01234567", "342391"), ("7.10", "7.1")])
def test_a_number_where_text_belongs_is_an_error_not_a_conversion(configs_copy, written, read):
    path = configs_copy / "series" / "page_mapped.yaml"
    text = path.read_text()
    path.write_text(text.replace("  commit: a2ddbfd1af0f54ea84bf17f0400088815d012e8d", f"  commit: {written}"))
    with pytest.raises(UserError) as err:
        config.load_series("page_mapped", configs_copy)
    assert str(path) in err.value.message and "'commit'" in err.value.message
    assert read in err.value.message and "in quotes" in err.value.message


def test_a_series_without_yaml_runs_the_suites_and_arches_its_paths_call_for(configs_copy, monkeypatch):
    from pipeline.run import select

    monkeypatch.setattr(config, "CONFIGS", configs_copy)
    spec = config.adhoc_series("adhoc-x", "t", "a" * 40, root=configs_copy)
    paths = ["kernel/bpf/arena.c", "arch/sh/mm/cache-sh4.c", "arch/mips/mm/c-r4k.c", "mm/rmap.c"]
    chosen, why = select.choose(spec, paths)
    assert "bpf_arena" in chosen.tests and why["test bpf_arena"] == "the series changes kernel/bpf/arena.c, which it covers"
    assert chosen.arches == spec.arches  # sh4 is a default already
    assert "no configs/arches YAML" in why["arch/mips"]
    unrelated, _ = select.choose(spec, ["mm/rmap.c"])
    assert "bpf_arena" not in unrelated.tests
    riscv = (configs_copy / "arches" / "x86_64.yaml").read_text().replace("name: x86_64", "name: riscv64") \
        .replace("arch/x86/boot/bzImage", "arch/riscv/boot/Image").replace("aliases: [amd64, x86-64, x64]", "aliases: []")
    (configs_copy / "arches" / "riscv64.yaml").write_text(riscv)
    more, why = select.choose(spec, ["arch/riscv/kernel/setup.c"])
    assert "riscv64" in more.arches and why["arch riscv64"] == "the series changes arch/riscv/"
