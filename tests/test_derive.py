"""Config derivation: Kbuild gates, Kconfig conditions, and the rounds that enable what a changed file needs."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline.infra.progress import Progress
from pipeline.model import config
from pipeline.stages import build, derive, genconfig, kbuild, kconfig

KCONFIG = {
    "Kconfig": 'mainmenu "tiny"\nsource "lib/Kconfig"\nsource "arch/$(SRCARCH)/Kconfig"\n',
    "arch/x86/Kconfig": "config X86\n\tdef_bool y\n\tselect MMIO\nconfig MMIO\n\tbool\n",
    "arch/sh/Kconfig": "config SUPERH\n\tdef_bool y\nconfig NOPCI\n\tdef_bool y\n",
    "lib/Kconfig": """menuconfig RUNTIME_TESTING_MENU
\tbool "Runtime Testing"
if RUNTIME_TESTING_MENU
config TEST_FOO
\ttristate "Test foo" if !SHY
\tdepends on NET && (PCI || MMIO)
\thelp
\t  if you say Y here, nothing
\t  depends on whatever
endif
comment "a comment"
\tdepends on NET
menu "Networking"
\tdepends on !NONET
config NET
\tbool "Networking" # the prompt
config PCI
\tbool "PCI"
\tdepends on !NOPCI
endmenu
config HIDDEN
\tbool
config NEEDS_HIDDEN
\tbool "needs hidden"
\tdepends on HIDDEN
""",
    "Kbuild": "obj-y += lib/\n",
    "lib/Makefile": "obj-$(CONFIG_TEST_FOO) += test_foo.o\nbar-y := bar_main.o \\\n\tbar_util.o\n"
                    "obj-$(CONFIG_NET) += bar.o\nobj-y += sub/\nlist-$(CONFIG_PCI) := pci_a.o\nobj-y += $(list-y)\n",
    "lib/sub/Makefile": "obj-$(CONFIG_NEEDS_HIDDEN) += deep.o\n",
}


@pytest.fixture
def tree(tmp_path):
    for name, text in KCONFIG.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_gates_follow_composites_lists_and_directories(tree):
    assert kbuild.gates(tree, "lib/test_foo.c") == ["CONFIG_TEST_FOO"]
    assert kbuild.gates(tree, "lib/bar_util.c") == ["CONFIG_NET"]  # part of bar.o, over a continuation line
    assert kbuild.gates(tree, "lib/pci_a.c") == ["CONFIG_PCI"]  # in $(list-y)
    assert kbuild.gates(tree, "lib/sub/deep.c") == ["CONFIG_NEEDS_HIDDEN"]  # obj-y += sub/ adds none
    assert kbuild.gates(tree, "lib/unknown.c") is None


def test_index_reads_conditions_of_blocks_prompts_and_sources(tree):
    x86 = kconfig.Index(tree, "x86")
    foo = x86.entries["TEST_FOO"][0]
    assert foo.prompt and foo.file == "lib/Kconfig"
    assert foo.conditions == ["RUNTIME_TESTING_MENU", "!SHY", "NET && (PCI || MMIO)"]  # help text is not read
    assert x86.entries["NET"][0].conditions == ["!NONET"]  # the menu's, not the comment's
    assert x86.defined("X86") and not x86.defined("SUPERH")  # only this arch's Kconfig
    assert not x86.entries["HIDDEN"][0].prompt


def test_needs_picks_what_to_enable_and_says_what_cannot_be(tree):
    x86, sh = kconfig.Index(tree, "x86"), kconfig.Index(tree, "sh")
    values = {"CONFIG_MMIO": "y"}
    assert kconfig.needs(x86, "TEST_FOO", values) == ({"RUNTIME_TESTING_MENU", "NET"}, [])  # MMIO serves
    assert kconfig.needs(sh, "TEST_FOO", {"CONFIG_NOPCI": "y"}) == ({"RUNTIME_TESTING_MENU", "NET", "PCI"}, [])
    add, why = kconfig.needs(sh, "PCI", {"CONFIG_NOPCI": "y"})
    assert why == ["needs !NOPCI"]
    assert kconfig.needs(x86, "HIDDEN", {})[1] == ["HIDDEN has no prompt: only other options select it"]
    assert kconfig.needs(x86, "NOPE", {})[1] == ["NOPE is defined in no Kconfig this arch reads"]
    assert kconfig.evaluate(kconfig.parse('A = "y" || (B != n && !C)'), {"CONFIG_B": "m"}) == 2


def olddefconfig(index: kconfig.Index, base: dict[str, str]):
    """A stand-in for the container's merge_config.sh + olddefconfig: an asked-for symbol takes when
    every condition of one of its entries holds and it has a prompt (else it is dropped)."""
    def generate(ctx, image, src, arch, frag_dir, names, cfg_dir, log):
        asked = {}
        for path in sorted(frag_dir.iterdir()):
            asked.update(build.parse_config(path.read_text()))
        values = dict(base)
        for _ in range(10):
            for name, want in asked.items():
                sym = name.removeprefix("CONFIG_")
                if any(e.prompt and all(kconfig.evaluate(kconfig.parse(c), values) == 2 for c in e.conditions)
                       for e in index.entries.get(sym, [])):
                    values[name] = want
        generate.calls += 1
        return values
    generate.calls = 0
    return generate


def work_for(tmp_path: Path, arch: str = "x86_64"):
    lane = SimpleNamespace(name=arch, dir=tmp_path / "run" / arch)
    ctx = SimpleNamespace(cache=tmp_path / "cache", progress=Progress(io.StringIO()),
                          log=lambda name: tmp_path / "logs" / name)
    (tmp_path / "cache").mkdir(exist_ok=True)
    return SimpleNamespace(ctx=ctx, lane=lane, spec=config.adhoc_series("t", "t", "abc"))


def test_derive_enables_the_gate_and_its_dependencies_in_rounds(tree, tmp_path, monkeypatch):
    index = kconfig.Index(tree, "x86")
    fake = olddefconfig(index, {"CONFIG_X86": "y", "CONFIG_MMIO": "y"})
    monkeypatch.setattr(genconfig, "generate", fake)
    arch = config.resolve_arch("x86_64")
    found = derive.derive(work_for(tmp_path), tree, arch, "img", ["lib/test_foo.c", "lib/bar_main.c"], "x86")
    assert found["gates"] == {"lib/test_foo.c": ["TEST_FOO"], "lib/bar_main.c": ["NET"]}
    assert set(found["enabled"]) == {"CONFIG_TEST_FOO", "CONFIG_NET", "CONFIG_RUNTIME_TESTING_MENU"}
    assert found["unmet"] == {}
    assert found["rounds"] == 1 and fake.calls == 2  # the lean config, then the gates with what they need
    assert "CONFIG_TEST_FOO=y" in found["fragment"] and "# lib/test_foo.c: CONFIG_TEST_FOO" in found["fragment"]


def test_derive_names_what_cannot_be_enabled(tree, tmp_path, monkeypatch):
    index = kconfig.Index(tree, "sh")
    monkeypatch.setattr(genconfig, "generate", olddefconfig(index, {"CONFIG_SUPERH": "y", "CONFIG_NOPCI": "y"}))
    found = derive.derive(work_for(tmp_path, "sh4"), tree, config.resolve_arch("sh4"), "img",
                          ["lib/pci_a.c", "lib/sub/deep.c"], "sh")
    assert found["enabled"] == []
    # PCI cannot be had on sh; NEEDS_HIDDEN was asked for, but what it needs only a select can set
    assert found["unmet"] == {"CONFIG_PCI": "needs !NOPCI", "CONFIG_NEEDS_HIDDEN":
                              "needs CONFIG_HIDDEN (HIDDEN has no prompt: only other options select it)"}
    assert found["fragment"] == ""


def test_candidates_leave_out_other_arches_and_tools():
    files = ["arch/sh/mm/cache-sh4.c", "arch/x86/mm/fault.c", "mm/rmap.c", "tools/lib/bpf/btf.c",
             "include/linux/mm.h", "Documentation/x.rst"]
    assert derive.candidates(files, "x86") == ["arch/x86/mm/fault.c", "mm/rmap.c"]


def test_a_derived_fragment_counts_by_name_not_by_its_path(tmp_path):
    arch = config.resolve_arch("x86_64")
    one = tmp_path / "a" / "derived-x86_64-0123456789ab.config"
    two = tmp_path / "b" / "derived-x86_64-0123456789ab.config"
    for p in (one, two):
        p.parent.mkdir()
        p.write_text("CONFIG_NET=y\n")
    from dataclasses import replace

    with_one = replace(arch, kernel=replace(arch.kernel, fragments=(*arch.kernel.fragments, str(one))))
    with_two = replace(arch, kernel=replace(arch.kernel, fragments=(*arch.kernel.fragments, str(two))))
    assert config.identity(with_one) == config.identity(with_two) != config.identity(arch)
    assert build.fragments_for(with_one, config.adhoc_series("t", "t", "abc"))[-1] == one


def test_a_lane_s_arch_carries_its_derived_fragment_once_derived(tmp_path):
    from pipeline.model.lane import Lane, Role
    from pipeline.model.results import StageResult, Status
    from pipeline.stages.interface import Work

    arch = config.resolve_arch("x86_64")
    fragment = tmp_path / "derived-x86_64-0123456789ab.config"
    fragment.write_text("CONFIG_NET=y\n")
    results: dict = {}
    work = Work(None, config.adhoc_series("t", "t", "abc"), [], Lane(arch, Role.BASE, tmp_path),
                lambda *k: results.get(k))
    assert work.arch == arch  # not derived yet
    results[("derive", "x86_64", Role.BASE, "")] = StageResult("derive", "x86_64", Role.BASE, Status.PASS, 0,
                                                              artifacts={"fragment": str(fragment)})
    assert work.arch.kernel.fragments[-1] == str(fragment)
    assert build.fragments_for(work.arch, work.spec)[-1] == fragment
