"""Stage 'suite': one guest test suite's results, read from the lane's console.

Which suites a lane runs (and why others do not) comes from the series' tests
and the arch's YAML; stages/userspace.py builds them, /init runs them in the
order of the run list (manifest) and frames their output on the console.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.model import config
from pipeline.stages import parsers
from pipeline.infra.errors import UserError
from pipeline.model.results import Case, Status
from pipeline.stages.interface import Outcome, Work

MARKER = re.compile(r"kseries-init: suite (?P<name>\S+) "
                    r"(?P<what>start|exit|signal|error|file-begin|file-end|file-missing)\b ?(?P<rest>.*)$")


def selected(spec: config.SeriesConfig, arch: config.Arch) -> tuple[list[config.Suite], list[tuple[config.Suite, str]]]:
    """The series' suites that run on this arch, and those that do not with the reason."""
    runs, skips = [], []
    for name in spec.tests:
        if name in config.BUILTIN_TESTS:
            continue
        suite = config.load_suite(name)
        use = arch.suites.get(name)
        if use is None:
            skips.append((suite, f"configs/arches/{arch.name}.yaml does not declare the suite '{name}'"))
        elif not use.applies:
            skips.append((suite, use.reason or f"not applicable on {arch.name}"))
        else:
            runs.append(suite)
    return runs, skips


def lane_suites(spec: config.SeriesConfig, arch: config.Arch) -> list[config.Suite]:
    """Every suite of the series, in its order: those that run on the arch and those that do not."""
    runs, skips = selected(spec, arch)
    chosen = {s.name for s in runs} | {s.name for s, _ in skips}
    return [config.load_suite(n) for n in spec.tests if n in chosen]


def fragments(spec: config.SeriesConfig, arch: config.Arch) -> list[str]:
    """Kernel config fragments the lane's suites need."""
    return [f for s in selected(spec, arch)[0] for f in s.fragments]


def argv(suite: config.Suite, arch: config.Arch) -> list[str]:
    """The suite's command line in the guest, with the arch's test selection. A suite whose tests
    come from the tree's catalogue runs a script of its own in the initramfs, which carries the
    chosen tests (userspace.wrapper)."""
    if suite.catalogue:
        return ["/bin/sh", f"/kseries/{suite.name}.sh"]
    use = arch.suites.get(suite.name)
    out = list(suite.run)
    for flag, names in ((suite.allow_flag, suite.allow), (suite.deny_flag, (*suite.deny, *(use.deny if use else ())))):
        if flag and names:
            out += [flag, ",".join(names)]
    return out


def manifest(suites: list[config.Suite], arch: config.Arch) -> str:
    """/kseries/run for the guest's init: one suite per line: name, results file or -, argv."""
    lines = []
    for s in suites:
        if s.kind != "guest":  # run by the kernel itself, before init
            continue
        words = [s.name, s.results or "-", *argv(s, arch)]
        bad = [w for w in words if not w or any(c.isspace() for c in w)]
        if bad:
            raise UserError(f"{s.path}: the guest command line cannot carry {bad!r} (empty, or with spaces). "
                            "Use single words in 'run', 'allow', 'deny' and 'results'.")
        lines.append(" ".join(words) + "\n")
    return "".join(lines)


def split_console(lines: list[str]) -> dict[str, dict]:
    """suite name -> {'lines': [...], 'end': 'exit 0' | 'signal 11' | None, 'file': text | None}."""
    found: dict[str, dict] = {}
    current, target = None, "lines"
    for line in lines:
        m = MARKER.search(line)
        if m:
            name, what = m.group("name"), m.group("what")
            if what == "start":
                current, target = found.setdefault(name, {"lines": [], "end": None, "file": None}), "lines"
            elif name in found and what == "file-begin":
                current, target = found[name], "file_lines"
                current["file_lines"] = []
            elif name in found and what == "file-end":
                found[name]["file"] = "\n".join(found[name].pop("file_lines", []))
                current = None
            elif name in found and what != "file-missing":
                found[name]["end"] = f"{what} {m.group('rest').strip()}".strip()
                current = None
            continue
        if current is not None:
            current[target].append(line)
    return found


def before_init(lines: list[str]) -> list[str]:
    """The console up to init's first line: what the kernel printed while it booted (KUnit)."""
    for i, line in enumerate(lines):
        if "kseries-init:" in line:
            return lines[:i]
    return lines


def results(suite: config.Suite, arch: str, console_lines: list[str], hung: str = "", ktap=None,
            expected: dict[str, str] | None = None) -> list[Case]:
    """The suite's testcases from the console, plus a FAIL when it did not finish or exited non-zero
    unexplained. hung: why the guest was stopped after init (its time limit), if it was: a suite cut
    short by that is an ERROR (hung or too slow), not a failure of the kernel. ktap: the base tree's
    kunit_parser, for the KTAP suites. expected (KUnit): suite name -> the option that builds it; a
    suite missing from the console is said, with that option."""

    def case(test, status, message="", detail=""):
        return Case("suite", test, status, 0, message, detail, arch, suite=suite.name)
    if suite.kind == "kunit":
        return kunit_results(suite, case, before_init(console_lines), ktap, expected or {}, hung)
    part = split_console(console_lines).get(suite.name)
    if part is None and hung:
        return [case("ran", Status.ERROR, f"hung: {hung} before this suite started; its tests are compared "
                     "with the base (a regression if they finished there)")]
    if part is None:
        return [case("ran", Status.FAIL, "the suite never started: the guest stopped before init ran it")]
    cases, seen = [], {}
    try:
        parsed = parsers.PARSERS[suite.parser](part["lines"], part["file"], ktap=ktap)
    except parsers.Unreadable as exc:
        tail = "\n".join(part["lines"][-40:])
        if part["end"] is None and hung:  # cut short at the guest's limit before it wrote its results
            return [case("finished", Status.ERROR, f"hung: {hung} before the suite wrote its results ({exc}); "
                         "its tests are compared with the base (a regression if they finished there)", tail)]
        if part["end"] is None or part["end"].startswith("signal"):
            # it crashed or the kernel stopped under it: the kernel under test may be why
            how = f"was killed by {part['end']}" if part["end"] else "did not finish"
            return [case("finished", Status.FAIL, f"the suite {how} before writing its results ({exc})", tail)]
        return [case("results", Status.ERROR, f"the suite's results could not be read: {exc}", tail)]
    for name, status, message, output in parsed:
        seen[name] = seen.get(name, 0) + 1
        unique = name if seen[name] == 1 else f"{name}#{seen[name]}"
        if suite.must_run and status == Status.SKIP:
            status, message = Status.ERROR, (
                f"skipped ({message or 'no reason given'}), but {suite.name} requires every selected test to run: "
                "the lane's kernel config or guest lacks what it needs (fix the suite's fragments, "
                "or deny the test for this arch in its YAML)")
        cases.append(case(unique, status, message, output))
    tail = "\n".join(part["lines"][-40:])
    ran = {c.test for c in cases}
    for wanted in suite.allow:  # an allow-listed test that did not run is never silently dropped
        if not any(ch in wanted for ch in "*?[") and wanted not in ran:
            cases.append(case(wanted, Status.FAIL,
                              "selected but did not run: the suite does not have it (did its build drop it?)", tail))
    end = part["end"]
    if end is None and hung:
        cases.append(case("finished", Status.ERROR, f"hung: {hung}; the tests it did not get to are "
                          "compared with the base (a regression if they finished there)", tail))
    elif end is None:
        cases.append(case("finished", Status.FAIL,
                          "the suite did not finish: the kernel stopped or the guest timed out while it ran", tail))
    elif end == "exit 127":
        cases.append(case("finished", Status.ERROR,
                          "init could not execute the suite (packaging problem, not the series)", tail))
    elif end != "exit 0" and not any(c.status == Status.FAIL for c in cases):
        cases.append(case("finished", Status.FAIL, f"the suite ended with {end} but reported no failing test", tail))
    elif not cases:
        cases.append(case("finished", Status.ERROR,
                          f"the suite exited 0 but printed no line the '{suite.parser}' parser knows", tail))
    return cases


def kunit_results(suite: config.Suite, case, lines: list[str], ktap, expected: dict[str, str],
                  hung: str) -> list[Case]:
    """KUnit's KTAP from the boot, one testcase per test case (parameters kept); a chosen suite the
    kernel did not run is an ERROR naming the option that should have built it in."""
    if not expected:
        return []
    try:
        parsed = parsers.PARSERS[suite.parser](lines, None, ktap=ktap)
    except parsers.Unreadable as exc:
        if hung:
            return [case("ran", Status.ERROR, f"hung: {hung} while KUnit ran ({exc})", "\n".join(lines[-40:]))]
        return [case("ran", Status.FAIL, f"KUnit's output ended before its results ({exc}): the kernel "
                     "stopped while its tests ran", "\n".join(lines[-40:]))]
    cases, seen = [], {}
    for name, status, message, output in parsed:
        seen[name] = seen.get(name, 0) + 1
        unique = name if seen[name] == 1 else f"{name}#{seen[name]}"
        cases.append(case(unique, status, message, output))
    ran = {c.test.split(".", 1)[0] for c in cases}
    for name, option in expected.items():
        if name not in ran:
            cases.append(case(name, Status.ERROR, f"the kernel did not run the KUnit suite '{name}': "
                              f"CONFIG_{option} is not in its config (the derive stage says why)"))
    return cases


def reader(work: Work):
    """The base tree's kunit_parser, when a suite of the lane reads KTAP (None otherwise)."""
    if not any(config.load_suite(n).parser.startswith("ktap") for n in work.spec.tests
               if n not in config.BUILTIN_TESTS):
        return None
    from pipeline.catalogue import ktap
    from pipeline.catalogue.tree import Tree

    source = work.need("source").artifacts
    return ktap.load(work.ctx.cache, Tree(Path(source["repo"]), source["commit"]))


def expected(work: Work, suite: config.Suite) -> dict[str, str]:
    """KUnit: the suites the lane chose, by name -> the option that builds them."""
    if suite.kind != "kunit":
        return {}
    from pipeline.stages import tests

    return {name: t["symbol"] for t in tests.for_lane(work).kunit for name in t["suites"]}


def lane_results(work: Work, suite: config.Suite, lines: list[str], hung: str = "", ktap=None) -> list[Case]:
    cases = results(suite, work.arch.name, lines, hung, ktap if ktap is not None else reader(work),
                    expected(work, suite))
    return not_built(cases, unbuilt(work, suite))


UNBUILT = "kseries-unbuilt.txt"  # in a suite's build: "target:program<TAB>why", what it could not build


def unbuilt(work: Work, suite: config.Suite) -> dict[str, str]:
    """The programs the suite's build could not build ("mm:rmap" -> why), as its build named them
    in UNBUILT (ci/suites/kselftest.sh: a library the toolchain image lacks)."""
    made = work.need("userspace").artifacts.get(suite.name) if suite.kind == "guest" else None
    out = {}
    for path in sorted(Path(made).glob(f"*/{UNBUILT}")) if made else []:
        for line in path.read_text(errors="replace").splitlines():
            name, _, why = line.partition("\t")
            out[name.strip()] = why.strip()
    return out


def not_built(cases: list[Case], unbuilt: dict[str, str]) -> list[Case]:
    """A test that failed because a program it runs was not built (its script says the program is
    not there) did not test the kernel: SKIP, saying which program and why, on base and series alike."""
    for case in cases:
        for name, why in unbuilt.items() if case.status == Status.FAIL else ():
            target, _, program = name.partition(":")
            if case.test.startswith(f"{target}:") and re.search(
                    rf"(^|[/ ]){re.escape(program)}: (No such file or directory|not found)", case.detail, re.M):
                case.status = Status.SKIP
                case.message = f"not run: {target}/{program} was not built ({why}); the test could not start it"
                break
    return cases


def stage(work: Work) -> Outcome:
    """The suite's testcases from the first console; a test that failed there and passed on the
    guest's second run (boot-retry) is FLAKY."""
    suite, arch = work.suite, work.arch
    runs, skips = selected(work.spec, arch)
    why = next((w for s, w in skips if s.name == suite.name), None)
    if why is not None:
        why = f"{suite.title} does not apply on {arch.name}: {why}"
        return Outcome(Status.SKIP, why, [Case("suite", "", Status.SKIP, 0, why, suite=suite.name)])
    if suite.catalogue:
        from pipeline.stages import tests

        chosen = tests.for_lane(work)
        if not (chosen.kunit if suite.kind == "kunit" else chosen.kselftest):
            why = f"{suite.title}: no test of this kind in the tree covers what the series changes" \
                  + (f" on {arch.name}" if chosen.left_out else "")
            return Outcome(Status.SKIP, why, [Case("suite", "", Status.SKIP, 0, why, suite=suite.name)])
    if suite.kind == "guest" and suite.name not in work.need("userspace").artifacts:
        built = next((c for c in work.need("userspace").cases if c.test == f"build {suite.name}"), None)
        why = f"{suite.title} was not built: {built.message if built else 'its build did not run'}"
        return Outcome(Status.SKIP, why, [Case("suite", "", Status.SKIP, 0, why, suite=suite.name)])
    boot = work.need("boot")
    ktap = reader(work) if suite.parser.startswith("ktap") else None
    cases = lane_results(work, suite, _lines(boot), hung(boot), ktap)
    retry = work.need("boot-retry")
    if retry.status == Status.PASS:
        second = {c.test: c for c in lane_results(work, suite, _lines(retry), hung(retry), ktap)}
        for case in cases:
            if case.status == Status.FAIL and getattr(second.get(case.test), "status", None) == Status.PASS:
                case.status, case.flaky = Status.PASS, True
                case.message = f"FLAKY: failed on the first run ({case.message}), passed on the retry"
    counts = {st: sum(1 for c in cases if c.status == st) for st in Status}
    summary = ", ".join(f"{n} {st.value.lower()}" for st, n in counts.items() if n)
    flaky = sum(1 for c in cases if c.flaky)
    summary += f", {flaky} flaky" if flaky else ""
    facts = {k.value: v for k, v in counts.items()}
    facts["hung"] = any(c.status == Status.ERROR and c.message.startswith("hung") for c in cases)
    return Outcome(Status.worst([c.status for c in cases if c.status != Status.SKIP]),
                   f"{len(cases)} testcases: {summary}", cases, facts)


def hung(booted) -> str:
    """Why the guest was stopped after reaching init, when its time limit stopped it ('' otherwise)."""
    f = booted.facts
    if f.get("timed_out") and f.get("seconds_to_init") is not None:
        return f"the guest reached init and was stopped at its {f.get('timeout', '?')} s limit"
    return ""


def _lines(booted) -> list[str]:
    return Path(booted.artifacts["console"]).read_text(errors="replace").splitlines()


def failed(work: Work, console: list[str]) -> set[tuple[str, str]]:
    """The (suite, test) of the lane's suite tests that failed on this console: of the suites the
    guest ran (one that was not built never starts, and running the guest again would not change that)."""
    from pipeline.stages import userspace

    ktap = reader(work)
    return {(s.name, c.test) for s in userspace.built_suites(work) for c in lane_results(work, s, console, ktap=ktap)
            if c.status == Status.FAIL}


def key(work: Work) -> str:
    use = work.arch.suites.get(work.suite.name)
    lane = ""
    if work.suite.catalogue:
        from pipeline.stages import tests

        lane = repr(tests.for_lane(work))
    return repr((work.suite.path.read_bytes(), use, lane))
