"""Stage 'tests': which of the tree's own tests cover the series, chosen before anything builds.

The catalogue (pipeline/catalogue/) is read from the series' tip tree (so a test the series adds
counts) and kept per tree; the selection (catalogue/select.py) gives each chosen test its reason
and names every changed file no test covers. One testcase per changed file says which tests cover
it, or that none does (a SKIP with that reason: the run never calls such a file tested).

Per lane, for_lane() turns the selection into what the lane runs: the KUnit test files its arch can
build (their Kconfig options go into the lane's derived config with CONFIG_KUNIT: stages/derive.py),
and the kselftest tests within the lane's time budget (configs/tests.yaml), the rest named.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.catalogue import catalogue as catalogues
from pipeline.catalogue import select
from pipeline.catalogue.tree import Tree
from pipeline.model import config, testpolicy
from pipeline.model.lane import Role
from pipeline.model.results import Case, Status
from pipeline.stages import coverage
from pipeline.stages.interface import Outcome, Work

COSTS = "kselftest-costs.json"  # <cache>/catalogue/: guest seconds each kselftest test took here


def catalogue_suites(spec: config.SeriesConfig) -> list[config.Suite]:
    return [s for s in (config.load_suite(n) for n in spec.tests if n not in config.BUILTIN_TESTS) if s.catalogue]


def changed(patches: list) -> list[str]:
    """The files whose coverage is asked about: code (.c, .S, .h) and the tests' own files."""
    paths = dict.fromkeys(coverage.changed(patches))
    for p in patches:
        for f in p.files:
            if f.path.startswith("tools/testing/"):
                paths[f.path] = None
    return list(paths)


def stage(work: Work) -> Outcome:
    if not catalogue_suites(work.spec):
        return Outcome(Status.SKIP, "the series' tests name no suite chosen from the tree (kunit, kselftest)")
    worktree = Path(work.need("apply").artifacts["worktree"])
    tip = work.ctx.runner.git(worktree, "rev-parse", "HEAD").output.strip()
    tree = Tree(worktree, tip)
    found, kept = catalogues.load(work.ctx.cache, tree)
    work.ctx.progress.say("tests", "", f"catalogue of the tree: {found.summary()}"
                          + (" (kept from before)" if kept else f", read in {found.seconds:.0f} s"))
    policy = testpolicy.load()
    covers = {n: config.load_suite(n).covers for n in work.spec.tests
              if n not in config.BUILTIN_TESTS and not config.load_suite(n).catalogue}
    paths = changed(work.patches)
    changes = [c for c in select.diffs([Path(p.path).read_text(errors="replace") for p in work.patches])
               if c.path in paths]
    chosen = select.choose(found, tree, changes, covers, policy.ranked, policy.deny)
    kunits = found.kunit_by_source()
    record = {
        "kunit": [dataclasses.asdict(kunits[s]) for s in chosen.tests("kunit") if s in kunits],
        "kselftest": chosen.tests("kselftest"),
        "suites": chosen.tests("suite"),
        "reasons": chosen.reasons(),
        "left_out": dict(chosen.left_out),
        "uncovered": list(chosen.uncovered),
        "configs": {t.name: t.config for t in found.kselftest},
        "timeouts": {t.name: t.timeout for t in found.kselftest},
        "catalogue": found.summary(), "catalogue_seconds": found.seconds, "catalogue_kept": kept,
    }
    cases = []
    for path in paths:
        by = [f"{c.kind} {c.test}" for c in chosen.chosen if c.path == path]
        if by:
            cases.append(Case("tests", path, Status.PASS, 0, "covered by " + ", ".join(by)))
        else:
            cases.append(Case("tests", path, Status.SKIP, 0, f"no test in the tree covers {path}"))
    for test, why in record["reasons"].items():
        work.provenance[f"test {test}"] = "; ".join(dict.fromkeys(why))
    message = (f"{len(record['kunit'])} KUnit test file(s), {len(record['kselftest'])} kselftest test(s)"
               + (f", {len(record['suites'])} suite(s)" if record["suites"] else "") + " cover the changes")
    if chosen.uncovered:
        message += f"; no test covers {', '.join(chosen.uncovered)}"
    return Outcome(Status.PASS, message, cases, facts=record)


def key(work: Work) -> str:
    worktree = Path(work.need("apply").artifacts["worktree"])
    tip = work.ctx.runner.git(worktree, "rev-parse", "HEAD^{tree}").output.strip()
    policy = testpolicy.load()
    return repr((tip, policy.path.read_bytes(), [s.path.read_bytes() for s in catalogue_suites(work.spec)],
                 sorted(work.spec.tests), catalogues.VERSION))


@dataclass
class LaneTests:
    """What one lane runs of the selection."""
    kunit: list[dict] = field(default_factory=list)  # catalogue KunitTest as dicts
    kselftest: list[str] = field(default_factory=list)  # "target:test"
    left_out: dict = field(default_factory=dict)  # test -> why this lane does not run it
    symbols: list[str] = field(default_factory=list)  # Kconfig options the lane's kernel needs for them

    @property
    def targets(self) -> list[str]:
        return list(dict.fromkeys(t.split(":", 1)[0] for t in self.kselftest))


def for_lane(work: Work) -> LaneTests:
    """The selection as the lane's arch can run it (an empty LaneTests when there is none)."""
    found = work.find("tests", "", Role.SERIES, "") if work.lane else None
    if found is None or found.status != Status.PASS:
        return LaneTests()
    facts, arch = found.facts, work.lane.arch
    policy = testpolicy.load()
    out = LaneTests(left_out=dict(facts.get("left_out", {})))
    srcarch = work.lane.arch.kernel.image_path.split("/")[1]
    use = arch.suites.get("kunit")
    if "kunit" in work.spec.tests and use is not None and use.applies:
        for test in facts.get("kunit", []):
            if test["arch"] and test["arch"] != srcarch:
                out.left_out[test["source"]] = f"an arch/{test['arch']}/ test: not for {arch.name}"
            elif not test["symbol"]:
                out.left_out[test["source"]] = "its Makefile names no Kconfig option that builds it"
            elif len(out.kunit) >= policy.kunit_max:
                out.left_out[test["source"]] = f"past the {policy.kunit_max} KUnit test files a lane builds " \
                                               "(configs/tests.yaml kunit_max)"
            else:
                out.kunit.append(test)
        if out.kunit:
            out.symbols += ["KUNIT", *dict.fromkeys(t["symbol"] for t in out.kunit)]
    use = arch.suites.get("kselftest")
    if "kselftest" in work.spec.tests and use is not None and use.applies:
        costs = measured(work.ctx.cache, arch.name)
        spent = 0
        for test in facts.get("kselftest", []):
            cost = costs.get(test, policy.kselftest_cost)
            if spent + cost > policy.kselftest_budget and out.kselftest:
                out.left_out[test] = (f"past the lane's {policy.kselftest_budget} s kselftest budget "
                                      f"(configs/tests.yaml; it takes about {cost:.0f} s here)")
                continue
            spent += cost
            out.kselftest.append(test)
        for target in out.targets:
            fragment = facts.get("configs", {}).get(target)
            if fragment:
                tip = Path(work.need("apply").artifacts["worktree"]) / fragment
                text = tip.read_text(errors="replace") if tip.is_file() else ""
                out.symbols += fragment_symbols(text)
                for sym in fragment_symbols(text, "m"):
                    out.left_out[f"CONFIG_{sym}"] = (
                        f"{target}'s config asks for it as a module (=m): the lane's kernel has no modules, "
                        "and a test module built in runs at boot (CONFIG_TEST_VMALLOC added 120 s to an x86_64 "
                        "TCG boot here); the tests that load it skip or fail alike on the base")
    out.symbols = list(dict.fromkeys(out.symbols))
    return out


def fragment_symbols(text: str, value: str = "y") -> list[str]:
    """The options a kselftest config fragment sets to value: built in (y, what the lane takes) or
    as modules (m, which it leaves out)."""
    return re.findall(rf"^CONFIG_(\w+)={value}\s*$", text or "", re.M)


def measured(cache: Path, arch: str) -> dict[str, float]:
    try:
        return json.loads((cache / "catalogue" / COSTS).read_text()).get(arch, {})
    except (OSError, ValueError):
        return {}


def remember(cache: Path, arch: str, seconds: dict[str, float]) -> None:
    """Keep what each kselftest test took on this machine, for the next lane's budget."""
    path = cache / "catalogue" / COSTS
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    data.setdefault(arch, {}).update({k: round(v, 1) for k, v in seconds.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    tmp.replace(path)


def preview(spec: config.SeriesConfig, patch_texts: list[str], paths: list[str], repo: Path, commit: str,
            cache: Path) -> list[str]:
    """What `invoke series` says of the tests before anything builds: the selection from the base
    tree (a test the series itself adds is counted once the run has applied it)."""
    if not catalogue_suites(spec):
        return ["tests from the tree: none (the series' tests name no kunit or kselftest suite)"]
    if not commit:
        return ["tests from the tree: chosen when the run has the base tree (the base is not cached yet)"]
    tree = Tree(repo, commit)
    found, _ = catalogues.load(cache, tree)
    policy = testpolicy.load()
    covers = {n: config.load_suite(n).covers for n in spec.tests
              if n not in config.BUILTIN_TESTS and not config.load_suite(n).catalogue}
    changes = [c for c in select.diffs(patch_texts) if c.path in paths]
    chosen = select.choose(found, tree, changes, covers, policy.ranked, policy.deny)
    sha = subprocess.run(["git", "-C", str(repo), "rev-parse", f"{commit}^{{commit}}"], capture_output=True,
                         text=True).stdout.strip()
    out = [f"tests chosen from the tree ({found.summary()} at {sha[:12]}):"]
    for test, why in chosen.reasons().items():
        out.append(f"  {test}: {'; '.join(dict.fromkeys(why))}")
    if not chosen.chosen:
        out.append("  none")
    for path in chosen.uncovered:
        out.append(f"  no test in the tree covers {path}")
    if chosen.left_out:
        out.append(f"  left out ({len(chosen.left_out)}):")
        out += [f"    {t}: {why}" for t, why in chosen.left_out[:8]]
        if len(chosen.left_out) > 8:
            out.append(f"    and {len(chosen.left_out) - 8} more")
    return out
