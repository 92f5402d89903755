"""The summary's verdict follows the run's exit code; JUnit maps statuses faithfully."""

from junitparser import JUnitXml

from pipeline import report
from pipeline.results import Case, RunRecord, StageRecord, Status


def record(exit_code, error=""):
    rec = RunRecord("r1", "s", "t", ["x86_64", "sh4"], "now", exit_code=exit_code, error=error)
    rec.stages = [
        StageRecord("build", "x86_64", Status.FAIL, 1, cases=[
            Case("build", "x86_64: bzImage", Status.FAIL, 1, "make exited 2", "mm/rmap.c:1: error: x", "x86_64")]),
        StageRecord("boot", "sh4", Status.ERROR, 1, error, cases=[
            Case("boot", "sh4: boot", Status.ERROR, 1, "QEMU failed to start", "", "sh4")]),
    ]
    return rec


def test_blame_wins_and_infrastructure_is_listed_apart():
    text = report.summary(record(1, "QEMU failed to start"))
    verdict = text[text.index("VERDICT"):]
    assert verdict.startswith("VERDICT: the series is blamed:")
    assert "x86_64: [build] x86_64: bzImage: make exited 2" in verdict
    assert "not blamed on the series" in verdict and "sh4: [boot]" in verdict


def test_infrastructure_only_is_error():
    rec = record(3, "Docker down")
    rec.stages = rec.stages[1:]
    assert "VERDICT: ERROR (infrastructure, not the series) - Docker down" in report.summary(rec)


def test_junit_statuses(tmp_path):
    report.junit(record(1), tmp_path / "junit.xml")
    results = {c.name: type(c.result[0]).__name__ for s in JUnitXml.fromfile(str(tmp_path / "junit.xml")) for c in s}
    assert results == {"x86_64: bzImage": "Failure", "sh4: boot": "Error"}


def test_junit_survives_escape_codes_in_console_excerpts(tmp_path):
    from junitparser import JUnitXml

    from pipeline import report
    from pipeline.results import Case, RunRecord, StageRecord, Status

    record = RunRecord("r", "s", "t", ["x86_64"], "now")
    record.stages.append(StageRecord("boot", "x86_64", Status.FAIL, 1, "m", cases=[
        Case("boot", "x86_64: boot", Status.FAIL, 1, "bad \x1b[31mred\x1b[0m", "console \x00\x07 tail", "x86_64")]))
    report.junit(record, tmp_path / "junit.xml")
    case = next(iter(next(iter(JUnitXml.fromfile(str(tmp_path / "junit.xml"))))))
    assert "red" in case.result[0].message and "tail" in case.result[0].text
