"""Stage 'derive': a config fragment that makes the lane's kernel compile the files the series changes.

The lean configs compile little. For each changed .c/.S file this arch can build (never another
arch's arch/<dir>/ code), the symbols its Makefiles compile it under (kbuild.gates) that the
lane's config leaves off are enabled in a derived fragment, with what Kconfig says they depend
on, and the config is generated again until they took (a few rounds at most). The fragment is
named by its content, kept in the cache and copied into the lane's directory; from then on the
lane's arch carries it (Work.arch), so the config, the build and base-results keys, the base
lane and the series lane all use it. Nothing to enable: no fragment, and the lane is as before.
The result is cached by (tree, arch data, fragments, toolchain image, files): a rerun derives
in no time. Whether each file was in fact compiled is the coverage stage's to prove.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from pipeline.model.results import Status
from pipeline.run.select import arch_dir
from pipeline.stages import build, coverage, genconfig, kbuild, kconfig
from pipeline.stages.interface import Outcome, Work

ROUNDS = 5  # config generations at most: each adds the dependencies the one before showed missing
DERIVATION = 2  # in the cache key: a record derived by an earlier way of deriving is not taken


def candidates(files: list[str], srcarch: str) -> list[str]:
    """The changed files this arch's kernel could compile: .c and .S, not another arch's, not tools."""
    out = []
    for path in files:
        if not path.endswith((".c", ".S")) or path.startswith(("tools/", "scripts/", "Documentation/", "samples/")):
            continue
        if path.startswith("arch/") and not path.startswith(f"arch/{srcarch}/"):
            continue
        out.append(path)
    return out


def stage(work: Work) -> Outcome:
    arch = work.lane.arch  # as its YAML has it: the derived fragment is this stage's to add
    srcarch = arch_dir(arch)
    extra = for_tests(work)  # what the chosen tests need is enabled even with derivation off: a suite's need
    if not work.spec.derive and not extra:
        return Outcome(Status.SKIP, "config derivation is off (--no-derive, or 'derive: false' in the series YAML)")
    files = candidates(coverage.changed(work.patches), srcarch) if work.spec.derive else []
    if not files and not extra:
        return Outcome(Status.PASS, f"nothing to derive: the series changes no .c/.S file {arch.name} could compile")
    tree = Path(work.need("apply").artifacts["worktree"])
    image = work.image(arch.toolchain)
    tip = work.ctx.runner.git(tree, "rev-parse", "HEAD^{tree}").output.strip()
    key = hashlib.sha256(repr((build.inputs_key(tip, arch, work.spec, image), files, DERIVATION, extra)).encode()
                         ).hexdigest()[:20]
    store = work.ctx.cache / "derived"
    record = store / f"{key}.json"
    try:
        found = json.loads(record.read_text())
        reused = " (reused: same tree, config and files)"
    except (OSError, ValueError):
        found, reused = derive(work, tree, arch, image, files, srcarch, extra), ""
        store.mkdir(parents=True, exist_ok=True)
        tmp = record.with_suffix(".tmp")
        tmp.write_text(json.dumps(found, indent=1))
        tmp.replace(record)
    return outcome(work, found, store, reused)


def for_tests(work: Work) -> dict[str, list[str]]:
    """What the tests chosen for the lane need in its kernel (stages/tests.py), by what needs it:
    each KUnit test's own option with CONFIG_KUNIT, and each kselftest target's config fragment."""
    from pipeline.stages import tests

    lane = tests.for_lane(work)
    out = {f"KUnit {t['source']}": ["KUNIT", t["symbol"]] for t in lane.kunit}
    kunit = {s for t in lane.kunit for s in ("KUNIT", t["symbol"])}
    rest = [s for s in lane.symbols if s not in kunit]
    if rest:
        out[f"kselftest {', '.join(lane.targets)} config"] = rest
    return out


def outcome(work: Work, found: dict, store: Path, reused: str) -> Outcome:
    facts = {k: found.get(k, {}) for k in ("gates", "enabled", "reached", "unmet", "routes", "rounds")}
    if not found["enabled"]:
        message = ("the lane's config already compiles every changed file it can"
                   if not found["unmet"] else "nothing could be enabled: " + _unmet(found["unmet"]))
        return Outcome(Status.PASS, message + reused, facts=facts)
    text = found["fragment"]
    name = f"{build.DERIVED}{work.lane.arch.name}-{hashlib.sha256(text.encode()).hexdigest()[:12]}.config"
    path = store / name
    if not path.is_file():
        path.write_text(text)
    work.lane.dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, work.lane.dir / "derived.config")
    work.provenance[f"derived config {work.lane.arch.name}"] = \
        f"{name}: {' '.join(s + '=y' for s in found['enabled'])}"
    gates = list(dict.fromkeys("CONFIG_" + g for syms in found["gates"].values() for g in syms))
    routes = found.get("routes", {})
    direct = found.get("reached") or [s for s in gates if s in found["enabled"] or s in routes]
    deps = [s for s in found["enabled"] if s not in gates]
    message = f"enabled {', '.join(direct) or 'nothing the files name'} for " \
              f"{', '.join(found['gates'])}" + (f", and {len(deps)} it needs: {', '.join(deps)}" if deps else "")
    message += "".join(f"; {route['reason']}" for route in routes.values())
    if found["unmet"]:
        message += "; could not enable " + _unmet(found["unmet"])
    return Outcome(Status.PASS, message + reused, facts=facts, artifacts={"fragment": str(path)})


def _unmet(unmet: dict) -> str:
    return "; ".join(f"{sym} ({why})" for sym, why in unmet.items())


def derive(work: Work, tree: Path, arch, image: str, files: list[str], srcarch: str,
           extra: dict[str, list[str]] | None = None) -> dict:
    """Generate the config, enable what is missing, again, until it took or nothing more can be done.
    Each round plans every gate still off from the config just generated (kconfig.Planner: the
    symbol's prompt with all it needs, or the cheapest option that selects it); an option asked
    for that did not take is not asked for again, so the next round takes the next cheapest."""
    gates: dict[str, list[str]] = {}
    for path in files:
        found = kbuild.gates(tree, path)
        if found:
            gates[path] = [s.removeprefix("CONFIG_") for s in found]
    gates.update(extra or {})  # what the chosen tests need, as if a file were gated by it
    wanted = list(dict.fromkeys(s for syms in gates.values() for s in syms))
    result = {"gates": gates, "enabled": [], "reached": [], "unmet": {}, "routes": {}, "rounds": 0, "fragment": ""}
    if not wanted:
        return result
    index = None  # read only when a symbol is missing: the Kconfig files of every arch take a second
    asked: list[str] = []
    plans: dict[str, list[str]] = {}  # wanted symbol -> what its plan asks for
    refused: set[str] = set()  # asked for in a round and did not take: not asked for again
    routes: dict[str, kconfig.Route] = {}
    (work.ctx.cache / "tmp").mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"derive-{arch.name}-", dir=work.ctx.cache / "tmp"))
    try:
        values = _generate(work, tree, arch, image, scratch, asked, 0)
        first = {s for s in wanted if values.get("CONFIG_" + s) == "y"}  # what the lane's config compiles already
        for rnd in range(1, ROUNDS + 1):
            missing = [s for s in wanted if values.get("CONFIG_" + s) != "y"]
            if not missing:
                break
            index = index or kconfig.Index(tree, srcarch)
            refused |= _refused(asked, values)
            expected = values
            for name in missing:  # each planned knowing what the plans before it set
                plan = kconfig.Planner(index, expected, refused).symbol(name)
                plans[name] = plan.enable  # a plan that did not take is replaced, and what it asked for dropped
                routes.update(plan.routes)
                expected = kconfig.assumed(index, expected, plan.enable)
            now = list(dict.fromkeys(s for name in wanted for s in plans.get(name, [])))
            if not set(now) - set(asked):
                break
            asked = now
            values = _generate(work, tree, arch, image, scratch, asked, rnd)
            result["rounds"] = rnd
        result["enabled"] = [s for s in asked if values.get("CONFIG_" + s) == "y"]
        result["reached"] = ["CONFIG_" + s for s in wanted if s not in first and values.get("CONFIG_" + s) == "y"]
        result["routes"] = {f"CONFIG_{r.symbol}": {"by": f"CONFIG_{r.by}" if r.kind != "default" else r.by,
                                                   "kind": r.kind, "able": r.able, "of": r.of, "cost": r.cost,
                                                   "reason": r.sentence()}
                            for r in routes.values() if values.get("CONFIG_" + r.symbol) == "y"
                            and (r.kind == "default" or r.by in result["enabled"])}
        for name in wanted:
            if values.get("CONFIG_" + name) != "y":
                index = index or kconfig.Index(tree, srcarch)
                result["unmet"]["CONFIG_" + name] = why_not(index, name, values, refused | _refused(asked, values))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result["enabled"] = ["CONFIG_" + s for s in result["enabled"]]
    if result["enabled"]:
        lines = [f"# derived by kseries: what {arch.name} needs to compile the series' changed files"]
        lines += [f"# {path}: {', '.join('CONFIG_' + s for s in syms)}" for path, syms in gates.items()]
        lines += [f"# {reason['reason']}" for reason in result["routes"].values()]
        lines += [f"{s}=y" for s in result["enabled"]]
        result["fragment"] = "\n".join(lines) + "\n"
    return result


def _refused(asked: list[str], values: dict[str, str]) -> set[str]:
    return {s for s in asked if values.get("CONFIG_" + s) != "y"}


def why_not(index: kconfig.Index, name: str, values: dict[str, str], refused: set[str] = frozenset()) -> str:
    """Why a symbol is not set: what blocks it (for a symbol with no prompt, the options that
    select it and what blocks each), or, when it could be set, what it would take."""
    plan = kconfig.plan(index, name, values, set(refused) - {name})
    if not plan.ok:
        return "; ".join(plan.why)
    route = plan.routes.get(name)
    if route is not None and route.kind != "default":
        return (f"set only by options that select it: CONFIG_{route.by} would, the smallest of {route.able} "
                f"this config can meet ({', '.join('CONFIG_' + s for s in plan.enable)})")
    deps = [s for s in plan.enable if s != name]
    return "needs " + ", ".join("CONFIG_" + s for s in deps) if deps else "did not take"


def _generate(work: Work, tree: Path, arch, image: str, scratch: Path, asked: list[str], rnd: int) -> dict:
    frag_dir, cfg_dir = scratch / f"frag{rnd}", scratch / f"cfg{rnd}"
    frag_dir.mkdir()
    cfg_dir.mkdir()
    names = build.stage_fragments(build.fragments_for(arch, work.spec), frag_dir)
    if asked:
        (frag_dir / "99-derived.config").write_text("".join(f"CONFIG_{s}=y\n" for s in asked))
        names.append("/frag/99-derived.config")
    work.ctx.progress.say("derive", work.lane.name, f"config round {rnd}: {len(asked)} option(s) asked for")
    return genconfig.generate(work.ctx, image, tree, arch, frag_dir, names, cfg_dir,
                          work.ctx.log(f"{work.lane.name}/derive.log"))
