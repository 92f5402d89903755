"""Bisecting a tip's test regressions and new splats over the per-patch kernels (boots faked here;
the real tier boots real ones)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline.model.lane import Role
from pipeline.model.results import Kind, RunRecord, StageResult, Status, Verdict
from pipeline.report import summary
from pipeline.run import policy, verdict
from pipeline.stages import bisect
from pipeline.stages.per_patch import Step

ITEM = ("bpf_arena", "arena_htab")


def fake(monkeypatch, tmp_path, n: int, introduced: dict, broken=(), unchanged=(), items=(ITEM,)):
    """A series of n patches whose state k shows item once k >= introduced[item]."""
    steps = []
    for k in range(1, n):
        kernel = tmp_path / f"k{k}.bzImage"
        kernel.write_bytes(b"kernel")
        status = Status.FAIL if k in broken else Status.PASS
        steps.append(Step(k, n, f"patch {k}", status, 1.0, "", kernel="" if k in unchanged else str(kernel),
                          skipped=k in unchanged))
    booted = []

    def boot(self, k, kernel):
        booted.append(k)
        return {i for i in self.items if k >= introduced[i]}

    monkeypatch.setattr(bisect, "regressed", lambda work: [i for i in items if i[0] != bisect.SPLAT])
    monkeypatch.setattr(bisect, "new_splats", lambda work: [t for s, t in items if s == bisect.SPLAT])
    monkeypatch.setattr(bisect.per_patch, "recorded", lambda work: steps)
    monkeypatch.setattr(bisect.Probe, "_boot", boot)
    patches = [SimpleNamespace(index=k, subject=f"subject {k}") for k in range(1, n + 1)]
    work = SimpleNamespace(patches=patches, arch=SimpleNamespace(name="x86_64"),
                           lane=SimpleNamespace(dir=tmp_path, name="x86_64"))
    return work, booted


def test_a_clean_tip_boots_nothing(monkeypatch, tmp_path):
    work, booted = fake(monkeypatch, tmp_path, 3, {}, items=())
    out = bisect.stage(work)
    assert out.status == Status.SKIP and booted == []


@pytest.mark.parametrize("n,at,boots", [(3, 2, 2), (3, 3, 1), (3, 1, 2), (8, 6, 3), (16, 1, 4)])
def test_the_first_patch_showing_it_in_log2_boots(monkeypatch, tmp_path, n, at, boots):
    work, booted = fake(monkeypatch, tmp_path, n, {ITEM: at})
    out = bisect.stage(work)
    assert out.facts["introduced"] == {"bpf_arena\tarena_htab": at}
    assert len(booted) == boots == out.facts["boots"] and n not in booted  # the tip is known, never booted
    assert f"patch {at}/{n} 'subject {at}'" in out.message


def test_two_items_from_two_patches(monkeypatch, tmp_path):
    splat = (bisect.SPLAT, "WARNING: CPU: N PID: N at mm/rmap.c:N")
    work, booted = fake(monkeypatch, tmp_path, 5, {ITEM: 4, splat: 2}, items=(ITEM, splat))
    out = bisect.stage(work)
    assert out.facts["introduced"] == {"bpf_arena\tarena_htab": 4, f"console\t{splat[1]}": 2}


def test_a_state_that_does_not_build_is_stepped_over_and_an_unchanged_one_is_not_booted(monkeypatch, tmp_path):
    work, booted = fake(monkeypatch, tmp_path, 5, {ITEM: 3}, broken=(2,), unchanged=(3,))
    out = bisect.stage(work)
    # 2 does not build and 3 is 2's kernel (nothing compiled changed): clean at 1, broken at 4, so the
    # item comes from patch 4 or from 2..3 before it, which cannot be booted
    assert out.facts["introduced"] == {"bpf_arena\tarena_htab": 4}
    assert out.facts["earliest"] == {"bpf_arena\tarena_htab": 2}
    assert sorted(booted) == [1, 4]
    assert "patch 2/5 (it does not build)" in out.message and "patch 3/5 (the kernel of patch 2)" in out.message


def test_verdicts_policy_and_summary_name_the_patch(tmp_path):
    record = RunRecord("r", "s", "t", ["x86_64"], started="now")
    record.stages.append(StageResult("bisect", "x86_64", Role.SERIES, Status.PASS, 1.0, facts={
        "introduced": {"bpf_arena\tarena_htab": 2, "console\tBUG: kernel NULL pointer dereference": 1},
        "total": 3, "subjects": {"1": "mm: one", "2": "mm: two"}}))
    v = Verdict("x86_64", "bpf_arena", "arena_htab", "PASS", "FAIL", Kind.REGRESSION, "failed")
    record.verdicts = [verdict.attribute(v, record),
                       Verdict("x86_64", "nolibc", "x", "PASS", "PASS", Kind.OK)]
    assert record.verdicts[0].introduced == "patch 2/3 'mm: two'" and record.verdicts[0].patch == 2
    policy.decide(record)
    assert record.exit_code == 1
    assert record.verdict == ("the series is blamed: 1 regression(s) against the base "
                              "(1 introduced by patch 2/3 'mm: two')")
    lines = summary.details(record)
    assert lines[0] == "  introduced by patch 2/3 'mm: two': 1 regression(s)"
    assert lines[1].startswith("    REGRESSION x86_64: [bpf_arena] arena_htab")
    assert "  SPLAT x86_64: introduced by patch 1/3 'mm: one': BUG: kernel NULL pointer dereference" in lines
    record.save(tmp_path / "results.json")
    assert RunRecord.load(tmp_path / "results.json").verdicts[0].introduced == "patch 2/3 'mm: two'"


def test_the_headline_names_the_patch_and_arch_that_broke_the_build():
    from pipeline.model.results import Case

    own = [Case("per-patch", "build", Status.FAIL, 1, "patch 1/3 breaks the build on sh4: make exited 2: "
                "arch/sh/mm/cache-sh4.c:251:9: error: implicit declaration", arch="sh4", patch=1, patches=3),
           Case("build", "zImage", Status.FAIL, 1, "make exited 2: arch/sh/mm/cache-sh4.c:251:9: error", arch="sh4"),
           Case("checkpatch", "patch 1/3: x", Status.FAIL, 1, "1 error: ERROR:MISSING_SIGN_OFF", patch=1, patches=3)]
    text = policy.blame(own, [])
    assert text.startswith("patch 1/3 breaks the build on sh4: make exited 2: arch/sh/mm/cache-sh4.c:251:9: error")
    assert text.endswith("(+2 more failure(s) of its own)")  # a broken build heads the verdict, not checkpatch


def test_junit_and_kcidb_carry_the_patch(tmp_path):
    from pipeline.model.results import Case
    from pipeline.report import junit, kcidb

    record = RunRecord("r", "s", "t", ["x86_64"], started="2026-11-29T12:00:00+0000")
    for role, status in ((Role.BASE, Status.PASS), (Role.SERIES, Status.FAIL)):
        record.stages.append(StageResult("suite", "x86_64", role, status, 1.0, suite="bpf_arena", cases=[
            Case("suite", "arena_htab", status, 1.0, "failed" if status == Status.FAIL else "", arch="x86_64",
                 suite="bpf_arena", role=role)]))
    record.verdicts = [Verdict("x86_64", "bpf_arena", "arena_htab", "PASS", "FAIL", Kind.REGRESSION, "failed",
                               patch=2, introduced="patch 2/3 'mm: two'")]
    junit.write(record, tmp_path / "junit.xml")
    text = (tmp_path / "junit.xml").read_text()
    assert "failed [introduced by patch 2/3 &apos;mm: two&apos;]" in text or \
        "failed [introduced by patch 2/3 'mm: two']" in text
    tests = kcidb.export(record, tmp_path)["tests"]
    series = [t for t in tests if t["status"] == "FAIL"]
    assert series[0]["misc"] == {"introduced_by_patch": 2, "introduced_by": "patch 2/3 'mm: two'"}
    assert all("misc" not in t for t in tests if t["status"] == "PASS")


def test_a_placed_splat_is_named_in_the_headline():
    from pipeline.model.results import Case

    record = RunRecord("r", "s", "t", ["x86_64"], started="now")
    record.stages.append(StageResult("check", "x86_64", Role.SERIES, Status.FAIL, 0, cases=[
        Case("check", "console free of splats", Status.FAIL, 0, "1 kernel splat line(s), first: WARNING: x",
             arch="x86_64")]))
    record.stages.append(StageResult("bisect", "x86_64", Role.SERIES, Status.PASS, 1.0, facts={
        "introduced": {"console\tWARNING: x": 1}, "total": 3, "subjects": {"1": "mm: one"}}))
    policy.decide(record)
    assert record.verdict == ("the series is blamed: x86_64: 1 kernel splat line(s), first: WARNING: x "
                              "[introduced by patch 1/3 'mm: one']")


def test_a_broken_build_or_a_splat_heads_the_verdict_before_a_warning():
    from pipeline.model.results import Case

    warning = Case("per-patch", "warnings", Status.FAIL, 0, "patch 1/3 adds 1 warning(s) on x86_64: modpost: x",
                   arch="x86_64", patch=1, patches=3)
    splat = Case("check", "console free of splats", Status.FAIL, 0, "1 kernel splat line(s)", arch="x86_64")
    broken = Case("per-patch", "build", Status.FAIL, 0, "patch 3/3 breaks the build on x86_64: make exited 2",
                  arch="x86_64", patch=3, patches=3)
    assert policy.blame([warning, splat], []).startswith("x86_64: 1 kernel splat line(s)")
    assert policy.blame([warning, splat, broken], []).startswith("patch 3/3 breaks the build on x86_64")
