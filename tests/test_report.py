"""The summary's verdict follows the run's exit code; JUnit maps statuses faithfully."""

from junitparser import JUnitXml

from pipeline.model.lane import Role
from pipeline.model.results import Case, RunRecord, StageResult, Status
from pipeline.report import junit, summary
from pipeline.run import policy

S = Role.SERIES


def record(error=""):
    rec = RunRecord("r1", "s", "t", ["x86_64", "sh4"], "now")
    rec.stages = [
        StageResult("build", "x86_64", S, Status.FAIL, 1, cases=[
            Case("build", "bzImage", Status.FAIL, 1, "make exited 2", "mm/rmap.c:1: error: x", "x86_64")]),
        StageResult("boot", "sh4", S, Status.ERROR, 1, error or "QEMU failed to start", fault="infra", cases=[
            Case("boot", "boot", Status.ERROR, 1, error or "QEMU failed to start", "", "sh4")]),
    ]
    return rec


def test_blame_wins_and_infrastructure_is_listed_apart():
    rec = record()
    policy.decide(rec)
    assert rec.exit_code == 1
    text = summary.render(rec)
    verdict = text[text.index("VERDICT"):]
    assert verdict.startswith("VERDICT: the series is blamed:")
    assert "x86_64: [build] x86_64: bzImage: make exited 2" in verdict
    assert "not blamed on the series" in verdict and "sh4: [boot]" in verdict


def test_infrastructure_only_is_error():
    rec = record("Docker down")
    rec.stages = rec.stages[1:]
    policy.decide(rec)
    assert rec.exit_code == 3
    assert "VERDICT: ERROR (infrastructure, not the series) - Docker down" in summary.render(rec)


def test_a_bug_in_kseries_is_miss_and_named_so():
    rec = RunRecord("r1", "s", "t", ["x86_64"], "now")
    rec.stages = [StageResult("boot", "x86_64", S, Status.MISS, 0, "kseries itself failed in stage boot: X",
                              fault="harness", cases=[Case("boot", "boot", Status.MISS, 0, "kseries itself failed",
                                                           arch="x86_64")])]
    policy.decide(rec)
    assert rec.exit_code == 3 and rec.verdict.startswith("ERROR (kseries itself failed, not the series)")


def test_junit_statuses(tmp_path):
    rec = record()
    rec.stages.append(StageResult("build", "x86_64", Role.BASE, Status.PASS, 1, cases=[
        Case("build", "bzImage", Status.PASS, 1, arch="x86_64", role=Role.BASE)]))
    junit.write(rec, tmp_path / "junit.xml")
    xml = JUnitXml.fromfile(str(tmp_path / "junit.xml"))
    results = {(s.name, c.name): (type(c.result[0]).__name__ if c.result else "PASS") for s in xml for c in s}
    assert results == {("kseries.s.build.x86_64", "x86_64: bzImage"): "Failure",
                       ("kseries.s.boot.sh4", "sh4: boot"): "Error",
                       ("kseries.s.base-build.x86_64", "x86_64: bzImage"): "PASS"}


def test_junit_survives_escape_codes_in_console_excerpts(tmp_path):
    rec = RunRecord("r", "s", "t", ["x86_64"], "now")
    rec.stages.append(StageResult("boot", "x86_64", S, Status.FAIL, 1, "m", cases=[
        Case("boot", "boot", Status.FAIL, 1, "bad \x1b[31mred\x1b[0m", "console \x00\x07 tail", "x86_64")]))
    junit.write(rec, tmp_path / "junit.xml")
    case = next(iter(next(iter(JUnitXml.fromfile(str(tmp_path / "junit.xml"))))))
    assert "red" in case.result[0].message and "tail" in case.result[0].text


def test_github_annotations_error_on_blame_and_warn_on_errors():
    from pipeline.cli import annotations
    from pipeline.model.results import Kind, Verdict

    rec = record()
    rec.verdicts = [Verdict("x86_64", "nolibc", "syscall.mmap", "PASS", "FAIL", Kind.REGRESSION)]
    lines = annotations(rec)
    assert lines[0] == "::error title=regression x86_64 nolibc::syscall.mmap: base PASS -> series FAIL"
    assert lines[1].startswith("::error title=build x86_64::x86_64: bzImage: make exited 2")
    assert lines[2].startswith("::warning title=ERROR boot::sh4: boot: QEMU failed to start")
