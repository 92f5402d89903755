"""Kconfig planning: a symbol with no prompt reached through the cheapest option that selects it."""

from __future__ import annotations

import pytest

from pipeline.stages import kconfig

KCONFIG = {
    "Kconfig": 'mainmenu "tiny"\nsource "lib/Kconfig"\nsource "drivers/Kconfig"\nsource "arch/$(SRCARCH)/Kconfig"\n',
    "arch/x86/Kconfig": "config X86\n\tdef_bool y\n",
    "arch/sh/Kconfig": "config SUPERH\n\tdef_bool y\n\tselect HAVE_LEGACY_CLK\n",
    "lib/Kconfig": """config RATIONAL
\ttristate

config KUNIT
\ttristate "KUnit"
\tdepends on !NO_KUNIT

config KUNIT_ALL_TESTS
\ttristate "All KUnit tests"
\tdepends on KUNIT

config RATIONAL_KUNIT_TEST
\ttristate "KUnit test for rational" if !KUNIT_ALL_TESTS
\tdepends on KUNIT
\tselect RATIONAL
\tdefault KUNIT_ALL_TESTS

config FOUR
\tbool
config THREE
\tbool
\tselect FOUR
config TWO
\tbool
\tselect THREE
config ONE
\tbool
\tselect TWO
config ZERO
\tbool "zero"
\tselect ONE

config STRAY
\tbool
\tselect FOUR if NET

config IMPLIED
\ttristate
config IMPLIER
\ttristate "implies it"
\timply IMPLIED

config DEFAULTED
\tbool
\tdefault y if NET

config FORCED_QUIET
\tdef_bool y
config QUIET
\tbool "quiet" if !FORCED_QUIET
config LOUD_USER
\tbool "uses quiet"
\tselect QUIET

config NOBODY_SELECTS
\tbool

config MARK_TARGET
\ttristate '"MARK" target support' if NET
\tselect ONLY_ELSEWHERE if NET

config NET
\tbool "Networking"
""",
    "drivers/Kconfig": """config HAVE_CLK
\tbool
config HAVE_CLK_PREPARE
\tbool
config HAVE_LEGACY_CLK
\tbool

menuconfig COMMON_CLK
\tbool "Common Clock Framework"
\tdepends on !HAVE_LEGACY_CLK
\tselect HAVE_CLK_PREPARE
\tselect HAVE_CLK
\tselect RATIONAL

menuconfig MEDIA_SUPPORT
\ttristate "Multimedia support"

config VIDEO_DEV
\ttristate "Video4Linux core"
\tdepends on MEDIA_SUPPORT
\tselect RATIONAL
\tselect VIDEOBUF
\tselect MEDIA_CORE
\tselect HAVE_CLK

config VIDEOBUF
\ttristate
config MEDIA_CORE
\ttristate

config COMPILE_TEST
\tbool "Compile also drivers which will not load"

config SERIAL_IMX
\ttristate "IMX serial port support"
\tdepends on ARCH_MXC || COMPILE_TEST
\tselect RATIONAL
\tselect ONLY_ELSEWHERE

config ONLY_ELSEWHERE
\ttristate

choice
\tprompt "Clock mode"
config MODE_A
\tbool "mode A"
\tselect ONLY_ELSEWHERE
config MODE_B
\tbool "mode B"
endchoice
""",
}


@pytest.fixture
def tree(tmp_path):
    for name, text in KCONFIG.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_index_reads_selects_implies_defaults_choices_and_single_quoted_prompts(tree):
    x86 = kconfig.Index(tree, "x86")
    assert [(k, e.name) for k, _, e in x86.selectors["RATIONAL"]] == [
        ("select", "RATIONAL_KUNIT_TEST"), ("select", "COMMON_CLK"), ("select", "VIDEO_DEV"), ("select", "SERIAL_IMX")]
    assert [(k, c, e.name) for k, c, e in x86.selectors["FOUR"]] == [("select", "", "THREE"), ("select", "NET", "STRAY")]
    assert [(k, e.name) for k, _, e in x86.selectors["IMPLIED"]] == [("imply", "IMPLIER")]
    assert x86.entries["DEFAULTED"][0].defaults == [("y", "NET")]
    assert x86.entries["FORCED_QUIET"][0].defaults == [("y", "")]
    mark = x86.entries["MARK_TARGET"][0]
    assert mark.prompt and mark.prompt_if == ["NET"]  # '"MARK" target support' is a prompt
    assert x86.entries["MODE_A"][0].in_choice and not x86.entries["COMMON_CLK"][0].in_choice
    assert x86.entries["RATIONAL_KUNIT_TEST"][0].prompt_if == ["!KUNIT_ALL_TESTS"]


def test_a_symbol_with_no_prompt_is_reached_through_the_cheapest_selector(tree):
    x86 = kconfig.Index(tree, "x86")
    # nothing set: the KUnit test costs KUNIT and itself (2); COMMON_CLK itself and the two it
    # selects (3); VIDEO_DEV MEDIA_SUPPORT, itself and three it selects (5); SERIAL_IMX none
    plan = kconfig.plan(x86, "RATIONAL", {"CONFIG_X86": "y"})
    assert plan.ok and plan.enable == ["KUNIT", "RATIONAL_KUNIT_TEST"]
    route = plan.routes["RATIONAL"]
    assert (route.by, route.kind, route.able, route.of, route.cost) == ("RATIONAL_KUNIT_TEST", "select", 3, 4, 2)
    assert route.sentence() == ("CONFIG_RATIONAL has no prompt: enabled CONFIG_RATIONAL_KUNIT_TEST, which selects it "
                                "(the smallest of 3 option(s) the lane can meet, of 4 that select it: 2 symbol(s) "
                                "to enable, counting what they select)")
    # what a selector selects that is already on costs nothing: now COMMON_CLK alone is cheapest
    plan = kconfig.plan(x86, "RATIONAL", {"CONFIG_X86": "y", "CONFIG_HAVE_CLK": "y", "CONFIG_HAVE_CLK_PREPARE": "y"})
    assert plan.enable == ["COMMON_CLK"] and plan.routes["RATIONAL"].cost == 1


def test_a_selector_whose_own_dependencies_cannot_be_met_is_passed_over(tree):
    sh = kconfig.Index(tree, "sh")
    values = {"CONFIG_SUPERH": "y", "CONFIG_HAVE_LEGACY_CLK": "y", "CONFIG_HAVE_CLK": "y",
              "CONFIG_HAVE_CLK_PREPARE": "y", "CONFIG_NO_KUNIT": "y"}
    plan = kconfig.plan(sh, "RATIONAL", values)  # COMMON_CLK needs !HAVE_LEGACY_CLK, KUnit is barred
    assert plan.enable == ["MEDIA_SUPPORT", "VIDEO_DEV"] and plan.routes["RATIONAL"].able == 1


def test_selectors_are_followed_a_bounded_number_of_options_deep(tree):
    x86 = kconfig.Index(tree, "x86")
    assert kconfig.HOPS == 3
    plan = kconfig.plan(x86, "THREE", {})  # THREE <- TWO <- ONE <- ZERO (a prompt): three options deep
    assert plan.enable == ["ZERO"] and set(plan.routes) == {"THREE", "TWO", "ONE"}
    assert plan.routes["THREE"].by == "TWO" and plan.routes["ONE"].by == "ZERO"
    plan = kconfig.plan(x86, "FOUR", {})  # one more is too deep; STRAY, which has no prompt, nothing selects
    assert not plan.ok
    assert plan.why[0].startswith("FOUR has no prompt, and none of the 2 options that select it can be met here: "
                                  "CONFIG_THREE (THREE has no prompt, and the one option that selects it cannot")
    assert f"followed {kconfig.HOPS} deep only" in plan.why[0]
    assert "CONFIG_STRAY (STRAY has no prompt and no option this arch reads selects it)" in plan.why[0]


def test_imply_a_default_and_a_conditional_prompt_are_routes_too(tree):
    x86 = kconfig.Index(tree, "x86")
    plan = kconfig.plan(x86, "IMPLIED", {})
    assert plan.enable == ["IMPLIER"] and plan.routes["IMPLIED"].kind == "imply"
    assert "which implies it" in plan.routes["IMPLIED"].sentence()
    plan = kconfig.plan(x86, "DEFAULTED", {})
    assert plan.enable == ["NET"] and plan.routes["DEFAULTED"].kind == "default"
    # QUIET's prompt is hidden while FORCED_QUIET (no prompt, always y) holds: LOUD_USER selects it
    plan = kconfig.plan(x86, "QUIET", {"CONFIG_FORCED_QUIET": "y"})
    assert plan.enable == ["LOUD_USER"] and plan.routes["QUIET"].by == "LOUD_USER"


def test_what_no_option_of_the_arch_can_select_names_each_selector_and_why(tree):
    x86 = kconfig.Index(tree, "x86")
    plan = kconfig.plan(x86, "ONLY_ELSEWHERE", {"CONFIG_X86": "y"})  # MARK_TARGET's select needs NET: it can
    assert plan.ok and plan.enable == ["NET", "MARK_TARGET"]
    plan = kconfig.plan(x86, "ONLY_ELSEWHERE", {"CONFIG_X86": "y", "CONFIG_NO_NET": "y"}, refused={"NET"})
    assert plan.why == [
        "ONLY_ELSEWHERE has no prompt, and none of the 3 options that select it can be met here: "
        "CONFIG_MODE_A (a choice's member: setting it would unset the alternative the config chose); "
        "CONFIG_MARK_TARGET (needs CONFIG_NET (CONFIG_NET was asked for and did not take)); "
        "CONFIG_SERIAL_IMX (needs CONFIG_ARCH_MXC (ARCH_MXC is defined in no Kconfig this arch reads))"]
    assert kconfig.plan(x86, "NOBODY_SELECTS", {}).why == ["NOBODY_SELECTS has no prompt and no option this arch "
                                                           "reads selects it"]


def test_compile_test_is_never_a_way_in(tree):
    x86 = kconfig.Index(tree, "x86")
    plan = kconfig.plan(x86, "SERIAL_IMX", {})
    assert not plan.ok and "COMPILE_TEST" not in plan.enable
    assert kconfig.plan(x86, "COMPILE_TEST", {}).why == [kconfig.NEVER["COMPILE_TEST"]]


def test_bad_kconfig_text_gives_reasons_not_tracebacks(tmp_path):
    (tmp_path / "Kconfig").write_text("config A\n\tbool\n\tselect\n\tselect B if (((\nconfig B\n\tbool\n"
                                      "\tdepends on A && (\nconfig C\n\tbool \"c\"\n\tdepends on C\n"
                                      "config D\n\tbool\n\tselect D\n")
    index = kconfig.Index(tmp_path, "x86")
    assert not kconfig.plan(index, "B", {}).ok
    assert kconfig.plan(index, "C", {}).why == ["needs CONFIG_C (C depends on itself)"]
    assert not kconfig.plan(index, "D", {}).ok  # it selects itself: no way in


def test_a_menu_s_visible_if_hides_its_prompts_and_a_selector_serves(tmp_path):
    (tmp_path / "Kconfig").write_text("""config FILTER
\tbool "Filter drivers"
menu "Core support"
\tvisible if !FILTER
\tdepends on MEDIA
config VIDEO_CORE
\ttristate "Video core"
\tdepends on I2C || I2C=n
endmenu
config AFTER
\tbool "after the menu"
config MEDIA
\tbool "media"
config CAMERA
\ttristate "a camera"
\tdepends on MEDIA
\tselect VIDEO_CORE
""")
    index = kconfig.Index(tmp_path, "x86")
    core = index.entries["VIDEO_CORE"][0]
    assert core.conditions == ["MEDIA", "!FILTER", "I2C || I2C=n"] and core.prompt_if == ["!FILTER"]
    assert index.entries["AFTER"][0].conditions == []  # the menu's conditions end with it
    plan = kconfig.plan(index, "VIDEO_CORE", {"CONFIG_FILTER": "y"})  # its prompt hidden: CAMERA selects it
    assert plan.enable == ["MEDIA", "CAMERA"] and plan.routes["VIDEO_CORE"].by == "CAMERA"
    assert kconfig.plan(index, "VIDEO_CORE", {}).enable == ["MEDIA", "VIDEO_CORE"]
