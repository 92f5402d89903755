"""What a series without a YAML runs, from the paths it changes: the suites whose `covers:` globs
match a changed file (besides the defaults), and the arches whose arch/<dir>/ it changes (besides
the defaults). Each choice carries its reason, shown in the summary's provenance; an arch
directory with no configs/arches YAML is named, never silently ignored."""

from __future__ import annotations

import dataclasses
from fnmatch import fnmatch

from pipeline.model import config


def arch_dir(arch: config.Arch) -> str:
    """arch/<dir>/ of the kernel tree, from where its image is built (arch/x86/boot/bzImage -> x86)."""
    return arch.kernel.image_path.split("/")[1]


def choose(spec: config.SeriesConfig, paths: list[str]) -> tuple[config.SeriesConfig, dict]:
    """The ad hoc series with the suites and arches its paths call for, and why each was chosen."""
    why: dict[str, str] = {}
    tests = list(spec.tests)
    for name in (t for t in tests if t not in config.BUILTIN_TESTS):
        why[f"test {name}"] = "in configs/defaults.yaml"
    for name in config.suite_names():
        if name in tests:
            continue
        suite = config.load_suite(name)
        hit = next((p for p in paths for g in suite.covers if fnmatch(p, g)), None)
        if hit:
            tests.append(name)
            why[f"test {name}"] = f"the series changes {hit}, which it covers"
    arches = list(spec.arches)
    known = {arch_dir(config.load_arch(n)): n for n in config.arch_names()}
    for d in dict.fromkeys(p.split("/")[1] for p in paths if p.startswith("arch/") and p.count("/") >= 2):
        name = known.get(d)
        if name is None:
            why[f"arch/{d}"] = "changed, but kseries has no configs/arches YAML for it: not built or tested"
        elif name not in arches:
            arches.append(name)
            why[f"arch {name}"] = f"the series changes arch/{d}/"
    return dataclasses.replace(spec, tests=tuple(tests), arches=tuple(arches)), why
