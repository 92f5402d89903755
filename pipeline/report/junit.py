"""junit.xml (junitparser): one testsuite per (lane, group, arch), provenance on each; and merging.

Rendered from the persisted RunRecord alone. A testsuite is named
kseries.<series>.<group>.<arch>, the base's groups carrying the lane's prefix
(base-nolibc), so a dashboard shows base and series side by side.
"""

from __future__ import annotations

import re
from pathlib import Path

from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

from pipeline.model.results import RunRecord, Status


XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def clean(text: str) -> str:
    """Console and build output may carry escape codes; XML 1.0 cannot hold them."""
    return XML_INVALID.sub("\ufffd", text)


def write(record: RunRecord, path: Path) -> None:
    xml = JUnitXml(name=f"kseries {record.series}")
    suites: dict[str, TestSuite] = {}
    introduced = {(v.arch, v.suite, v.test): v.introduced for v in record.verdicts if v.blamed and v.introduced}
    for stage in record.stages:
        for case in stage.cases:
            key = case.role.tag(case.group) + (f".{case.arch}" if case.arch else "")
            suite = suites.get(key)
            if suite is None:
                suite = suites[key] = TestSuite(f"kseries.{record.series}.{key}")
                # every suite carries the provenance, so it survives merging and filtering
                for k, v in [("run", record.run_id), ("series", record.series), ("title", record.title),
                             *record.provenance.items()]:
                    suite.add_property(f"kseries.{k}", clean(str(v)))
            tc = TestCase(clean(case.name), classname=f"kseries.{record.series}.{key}", time=round(case.seconds, 3))
            by = introduced.get((case.arch, case.suite, case.test)) if case.role.value == "series" else None
            if case.status == Status.FAIL:
                result = Failure(clean(case.message + (f" [introduced by {by}]" if by else "")), type_="FAIL")
                result.text = clean(case.detail)
                tc.result = [result]
            elif case.status.broken:
                result = Error(clean(case.message), type_=case.status.value)
                result.text = clean(case.detail)
                tc.result = [result]
            elif case.status == Status.SKIP:
                tc.result = [Skipped(clean(case.message))]
            if case.status == Status.PASS and (case.message or case.detail):
                tc.system_out = clean("\n".join(x for x in (case.message, case.detail) if x))
            suite.append(tc)  # add_testcase counts the whole suite again each time: once, below
    for suite in suites.values():
        suite.update_statistics()
        xml.add_testsuite(suite)
    xml.write(str(path), pretty=True)


def merge(inputs: list[Path], output: Path) -> tuple[int, int]:
    """One JUnit file from the JUnit of several runs or CI jobs (a run dir, a results root
    with 'latest', or a .xml file each); returns (suites, testcases)."""
    from pipeline.infra.errors import UserError

    merged = JUnitXml(name="kseries merged")
    for item in inputs:
        path = item / "junit.xml" if (item / "junit.xml").exists() else item / "latest" / "junit.xml" \
            if item.is_dir() else item
        if not path.is_file():
            raise UserError(f"{item} holds no junit.xml (nor latest/junit.xml). Pass run directories, "
                            "results roots or JUnit files to --merge.")
        try:
            xml = JUnitXml.fromfile(str(path))
        except Exception as exc:  # noqa: BLE001 - parser errors of any kind
            raise UserError(f"{path} is not JUnit XML ({type(exc).__name__}: {exc}).") from exc
        for suite in ([xml] if xml._tag == "testsuite" else xml):
            merged.add_testsuite(suite)
    merged.update_statistics()
    output.parent.mkdir(parents=True, exist_ok=True)
    merged.write(str(output), pretty=True)
    return len(list(merged)), merged.tests
