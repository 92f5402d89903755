"""Config derivation: Kbuild gates, Kconfig conditions, and the rounds that enable what a changed file needs."""

from __future__ import annotations

import dataclasses
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
config RATIONAL
\ttristate
config KUNIT
\ttristate "KUnit"
config RATIONAL_KUNIT_TEST
\ttristate "KUnit test for rational"
\tdepends on KUNIT
\tselect RATIONAL
config HAVE_LEGACY_CLK
\tbool
config HAVE_CLK
\tbool
config HAVE_CLK_PREPARE
\tbool
config COMMON_CLK
\tbool "Common clock framework"
\tdepends on !HAVE_LEGACY_CLK
\tselect HAVE_CLK
\tselect HAVE_CLK_PREPARE
\tselect RATIONAL
config MAP
\tbool
\tdefault y if MMIO_HELPER
config MMIO_HELPER
\ttristate
config SYSCON
\tbool "syscon"
\tselect MMIO_HELPER
config WLED
\ttristate "wled"
\tselect MAP
config ARM_ONLY_HELPER
\ttristate
config ARM_DRIVER
\ttristate "An ARM SoC's driver"
\tdepends on ARM
\tselect ARM_ONLY_HELPER
""",
    "Kbuild": "obj-y += lib/\n",
    "lib/Makefile": "obj-$(CONFIG_TEST_FOO) += test_foo.o\nbar-y := bar_main.o \\\n\tbar_util.o\n"
                    "obj-$(CONFIG_NET) += bar.o\nobj-y += sub/\nlist-$(CONFIG_PCI) := pci_a.o\nobj-y += $(list-y)\n"
                    "obj-$(CONFIG_RATIONAL) += rational.o\nobj-$(CONFIG_ARM_ONLY_HELPER) += arm_helper.o\n"
                    "obj-$(CONFIG_MAP) += map/\n",
    "lib/map/Makefile": "obj-$(CONFIG_MMIO_HELPER) += map_mmio.o\n",
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


def olddefconfig(index: kconfig.Index, base: dict[str, str], refuse: set[str] = frozenset()):
    """A stand-in for the container's merge_config.sh + olddefconfig: an asked-for symbol takes when
    every condition of one of its entries holds and it has a prompt (else it is dropped); a set
    symbol sets what it selects (and what it implies, whose own conditions hold). `refuse`: symbols
    that never take, as if the real Kconfig said more than the index reads."""
    def holds(entry, values):
        return all(kconfig.evaluate(kconfig.parse(c), values) == 2 for c in entry.conditions)

    def generate(ctx, image, src, arch, frag_dir, names, cfg_dir, log):
        asked = {}
        for path in sorted(frag_dir.iterdir()):
            asked.update(build.parse_config(path.read_text()))
        values = dict(base)
        for _ in range(10):
            for name, want in asked.items():
                sym = name.removeprefix("CONFIG_")
                if sym not in refuse and any(e.prompt and holds(e, values) for e in index.entries.get(sym, [])):
                    values[name] = want
            for sym, entries in index.entries.items():  # a default y whose condition holds
                if any(not e.prompt and value == "y" and kconfig.evaluate(kconfig.parse(cond or "y"), values) == 2
                       for e in entries for value, cond in e.defaults):
                    values["CONFIG_" + sym] = "y"
            for sym in [n.removeprefix("CONFIG_") for n, v in values.items() if v == "y"]:
                for entry in index.entries.get(sym, []):
                    for kind, target, cond in entry.selects:
                        if (not cond or kconfig.evaluate(kconfig.parse(cond), values) == 2) and (
                                kind == "select" or any(holds(e, values) for e in index.entries.get(target, []))):
                            values["CONFIG_" + target] = "y"
        generate.calls += 1
        return values
    generate.calls = 0
    return generate


def work_for(tmp_path: Path, arch: str = "x86_64"):
    lane = SimpleNamespace(name=arch, dir=tmp_path / "run" / arch)
    ctx = SimpleNamespace(cache=tmp_path / "cache", progress=Progress(io.StringIO()),
                          log=lambda name: tmp_path / "logs" / name)
    (tmp_path / "cache").mkdir(exist_ok=True)
    # without the kselftest suite, whose fragment (configs/kconfig/kselftest.config) sets NET itself
    spec = dataclasses.replace(config.adhoc_series("t", "t", "abc"), tests=("boot", "console", "nolibc"))
    return SimpleNamespace(ctx=ctx, lane=lane, spec=spec)


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
                              "needs CONFIG_HIDDEN (HIDDEN has no prompt and no option this arch reads selects it)"}
    assert found["fragment"] == ""


def test_derive_reaches_a_gate_with_no_prompt_through_the_cheapest_option_that_selects_it(tree, tmp_path,
                                                                                         monkeypatch):
    index = kconfig.Index(tree, "x86")
    monkeypatch.setattr(genconfig, "generate", olddefconfig(index, {"CONFIG_X86": "y", "CONFIG_MMIO": "y"}))
    work = work_for(tmp_path)
    found = derive.derive(work, tree, config.resolve_arch("x86_64"), "img", ["lib/rational.c"], "x86")
    # the KUnit test costs itself and KUNIT (2); COMMON_CLK itself and the two it selects (3)
    assert found["enabled"] == ["CONFIG_KUNIT", "CONFIG_RATIONAL_KUNIT_TEST"] and found["unmet"] == {}
    route = found["routes"]["CONFIG_RATIONAL"]
    assert (route["by"], route["kind"], route["able"], route["of"], route["cost"]) == \
        ("CONFIG_RATIONAL_KUNIT_TEST", "select", 2, 2, 2)
    assert found["rounds"] == 1 and "# CONFIG_RATIONAL has no prompt: enabled CONFIG_RATIONAL_KUNIT_TEST" in \
        found["fragment"] and "CONFIG_RATIONAL=y" not in found["fragment"]
    work.provenance = {}
    work.lane.arch = config.resolve_arch("x86_64")
    said = derive.outcome(work, found, tmp_path / "cache", "")
    assert said.message == (
        "enabled CONFIG_RATIONAL for lib/rational.c, and 2 it needs: CONFIG_KUNIT, CONFIG_RATIONAL_KUNIT_TEST; "
        "CONFIG_RATIONAL has no prompt: enabled CONFIG_RATIONAL_KUNIT_TEST, which selects it (the smallest of 2 "
        "option(s) the lane can meet, of 2 that select it: 2 symbol(s) to enable, counting what they select)")
    assert said.facts["routes"] == found["routes"]


def test_an_option_that_did_not_take_gives_way_to_the_next_cheapest(tree, tmp_path, monkeypatch):
    index = kconfig.Index(tree, "x86")
    fake = olddefconfig(index, {"CONFIG_X86": "y", "CONFIG_MMIO": "y"}, refuse={"RATIONAL_KUNIT_TEST"})
    monkeypatch.setattr(genconfig, "generate", fake)
    found = derive.derive(work_for(tmp_path), tree, config.resolve_arch("x86_64"), "img", ["lib/rational.c"], "x86")
    # KUNIT took in round 1, the test option did not: round 2 asks for COMMON_CLK instead, and not for KUNIT
    assert found["enabled"] == ["CONFIG_COMMON_CLK"] and found["unmet"] == {}
    assert found["routes"]["CONFIG_RATIONAL"]["by"] == "CONFIG_COMMON_CLK" and "KUNIT" not in found["fragment"]
    assert found["rounds"] == 2 and fake.calls == 3


def test_a_gate_is_planned_knowing_what_the_gates_before_it_set(tree, tmp_path, monkeypatch):
    index = kconfig.Index(tree, "x86")
    monkeypatch.setattr(genconfig, "generate", olddefconfig(index, {"CONFIG_X86": "y", "CONFIG_MMIO": "y"}))
    work = work_for(tmp_path)
    found = derive.derive(work, tree, config.resolve_arch("x86_64"), "img", ["lib/map/map_mmio.c"], "x86")
    assert found["gates"] == {"lib/map/map_mmio.c": ["MMIO_HELPER", "MAP"]}
    # SYSCON sets MMIO_HELPER, and MAP's default follows it: WLED, which selects MAP, is not asked for
    assert found["enabled"] == ["CONFIG_SYSCON"] and found["unmet"] == {}
    assert found["reached"] == ["CONFIG_MMIO_HELPER", "CONFIG_MAP"]
    assert found["routes"]["CONFIG_MAP"]["kind"] == "default" and found["routes"]["CONFIG_MAP"]["cost"] == 0


def test_what_no_option_of_the_arch_can_select_stays_unmet_naming_the_options(tree, tmp_path, monkeypatch):
    from pipeline.stages import coverage

    index = kconfig.Index(tree, "sh")
    base = {"CONFIG_SUPERH": "y", "CONFIG_NOPCI": "y", "CONFIG_HAVE_LEGACY_CLK": "y"}
    fake = olddefconfig(index, base)
    monkeypatch.setattr(genconfig, "generate", fake)
    found = derive.derive(work_for(tmp_path, "sh4"), tree, config.resolve_arch("sh4"), "img",
                          ["lib/arm_helper.c"], "sh")
    why = found["unmet"]["CONFIG_ARM_ONLY_HELPER"]
    assert why == ("ARM_ONLY_HELPER has no prompt, and the one option that selects it cannot be met here: "
                   "CONFIG_ARM_DRIVER (needs CONFIG_ARM (ARM is defined in no Kconfig this arch reads))")
    assert found["enabled"] == [] and fake.calls == 1  # nothing to ask for: no second generation
    assert any(why.startswith(f"ARM_ONLY_HELPER {c}") for c in coverage.CANNOT)  # coverage: no lane can have it


def test_without_derivation_a_symbol_an_option_can_select_is_not_called_impossible(tree):
    from pipeline.stages import coverage

    index = kconfig.Index(tree, "x86")
    why = derive.why_not(index, "RATIONAL", {"CONFIG_X86": "y"})
    assert why == ("set only by options that select it: CONFIG_RATIONAL_KUNIT_TEST would, the smallest of 2 this "
                   "config can meet (CONFIG_KUNIT, CONFIG_RATIONAL_KUNIT_TEST)")
    assert not any(why.startswith(f"RATIONAL {c}") for c in coverage.CANNOT)  # coverage fails it, not skips


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
