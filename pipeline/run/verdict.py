"""The series against its base, test by test, per arch and suite."""

from __future__ import annotations

import dataclasses

from pipeline.model.lane import Role
from pipeline.model.results import Case, Kind, RunRecord, Status, Verdict


def compare(cases: list[Case], running: set[tuple[str, str]], hung: set[tuple] = frozenset(),
            unrun: dict | None = None) -> list[Verdict]:
    """The suite testcases of one run: each base case against the series case of the same arch,
    suite and test, for the (arch, suite) pairs where the suite runs. hung: (arch, suite, role)
    whose guest was stopped at its time limit while the suite ran. unrun: (arch, suite) -> why the
    series' suite did not run at all (its lane did not build or boot): its tests are not regressions."""
    unrun = unrun or {}
    mine = [c for c in cases if c.stage == "suite" and (c.arch, c.suite) in running]
    before = {(c.arch, c.suite, c.test): c for c in mine if c.role is Role.BASE}
    after = {(c.arch, c.suite, c.test): c for c in mine if c.role is Role.SERIES}
    out = []
    for k in list(dict.fromkeys([*before, *after])):
        b, a = before.get(k), after.get(k)
        bs = b.status.value if b else "missing"
        as_ = a.status.value if a else "missing"
        kind = _kind(b, a, bs)
        excerpt = ""
        if a is None and (k[0], k[1]) in unrun:
            why = unrun[(k[0], k[1])]
            kind, excerpt = Kind.NOT_RUN, why if why.startswith("not run") else f"not run: {why}"
        elif a is None and (k[0], k[1], Role.SERIES) in hung:  # the series' guest hung before this test
            kind = Kind.ERROR if (k[0], k[1], Role.BASE) in hung or bs != "PASS" else Kind.REGRESSION
            excerpt = ("did not run: the series' guest hung or ran out of time before it"
                       + (", as the base's did" if kind is Kind.ERROR else "; it passed on the base"))
        if not excerpt and kind in (Kind.REGRESSION, Kind.GONE, Kind.PRE_EXISTING, Kind.FLAKY):
            src = a or b
            excerpt = (src.message + "\n" + src.detail[-1500:]).strip()
        out.append(Verdict(k[0], k[1], k[2], bs, as_, kind, excerpt))
    return out


def _kind(b: Case | None, a: Case | None, bs: str) -> Kind:
    if a is None:
        return Kind.GONE if bs == "PASS" else Kind.OK
    if a.flaky:
        return Kind.FLAKY
    if a.status.broken or (b and b.status.broken):
        return Kind.ERROR
    if a.status == Status.SKIP:
        return Kind.REGRESSION if bs == "PASS" else Kind.SKIPPED
    if b is None:
        return Kind.NEW if a.status == Status.PASS else Kind.REGRESSION
    if a.status == Status.FAIL:
        return Kind.PRE_EXISTING if b.status == Status.FAIL else Kind.REGRESSION
    return Kind.FIXED if b.status == Status.FAIL else Kind.OK


def judge(record: RunRecord, spec, arches: list) -> None:
    from pipeline.stages import suites

    if record.interrupted:  # nothing to judge yet: --resume completes the run, then it is judged
        record.verdicts = []
        return
    running = {(a.name, s.name) for a in arches for s in suites.selected(spec, a)[0]}
    hung = {(s.arch, s.suite, s.role) for s in record.stages if s.stage == "suite" and s.facts.get("hung")}
    broken = {a.name: broken_since(record, a.name) for a in arches}
    unrun = {(s.arch, s.suite): broken.get(s.arch) or s.message for s in record.stages
             if s.stage == "suite" and s.role is Role.SERIES and s.blocked}
    record.verdicts = [attribute(v, record) for v in compare(record.cases, running, hung, unrun)]


def broken_since(record: RunRecord, arch: str) -> str:
    """Why a series lane whose tip does not build ran no test: the patch its build broke at."""
    build = record.find("build", arch, Role.SERIES)
    if build is None or build.status != Status.FAIL:
        return ""
    steps = sorted((c for c in record.cases if c.stage == "per-patch" and c.test == "build" and c.arch == arch
                    and c.role is Role.SERIES), key=lambda c: c.patch)
    if not steps or steps[-1].status != Status.FAIL:
        return f"not run: the {arch} build of the series failed"
    last = steps[-1]
    return f"not run: the {arch} build fails since patch {last.since or last.patch}/{last.patches}"


def attribute(v: Verdict, record: RunRecord) -> Verdict:
    """A regression with the patch the series lane's bisection found it first in."""
    if not v.blamed:
        return v
    found = record.find("bisect", v.arch, Role.SERIES)
    if found is None or found.status != Status.PASS:
        return v
    k = found.facts.get("introduced", {}).get(f"{v.suite}\t{v.test}")
    if not k:
        return v
    from pipeline.stages.bisect import patch_named

    total = found.facts.get("total", k)
    text = patch_named(found.facts, k)
    earliest = found.facts.get("earliest", {}).get(f"{v.suite}\t{v.test}")
    if earliest:  # the states before k did not build: the bisection cannot tell them apart
        text += f" (or patch {earliest}/{total}..{k - 1}/{total} before it, which could not be booted)"
    return dataclasses.replace(v, patch=k, introduced=text)
