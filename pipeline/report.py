"""Stage 'report': JUnit XML (junitparser), a human summary, results/latest.

Both are rendered from the persisted RunRecord, never from live objects, so a
report can be regenerated from results.json alone.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

from . import kcidb
from .errors import EXIT_BLAMED, EXIT_INFRA, EXIT_USER
from .results import RunRecord, Status


XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def clean(text: str) -> str:
    """Console and build output may carry escape codes; XML 1.0 cannot hold them."""
    return XML_INVALID.sub("\ufffd", text)


def junit(record: RunRecord, path: Path) -> None:
    xml = JUnitXml(name=f"kseries {record.series}")
    suites: dict[str, TestSuite] = {}
    for stage in record.stages:
        for case in stage.cases:
            key = case.suite + (f".{case.arch}" if case.arch else "")
            suite = suites.get(key)
            if suite is None:
                suite = suites[key] = TestSuite(f"kseries.{record.series}.{key}")
                # every suite carries the provenance, so it survives merging and filtering
                for k, v in [("run", record.run_id), ("series", record.series), ("title", record.title),
                             *record.provenance.items()]:
                    suite.add_property(f"kseries.{k}", clean(str(v)))
            tc = TestCase(clean(case.name), classname=f"kseries.{record.series}.{key}", time=round(case.seconds, 3))
            if case.status == Status.FAIL:
                result = Failure(clean(case.message), type_="FAIL")
                result.text = clean(case.detail)
                tc.result = [result]
            elif case.status == Status.ERROR:
                result = Error(clean(case.message), type_="ERROR")
                result.text = clean(case.detail)
                tc.result = [result]
            elif case.status == Status.SKIP:
                tc.result = [Skipped(clean(case.message))]
            if case.status == Status.PASS and (case.message or case.detail):
                tc.system_out = clean("\n".join(x for x in (case.message, case.detail) if x))
            suite.add_testcase(tc)
    for suite in suites.values():
        xml.add_testsuite(suite)
    xml.write(str(path), pretty=True)


def summary(record: RunRecord) -> str:
    counts = {s: 0 for s in Status}
    for case in record.cases:
        counts[case.status] += 1
    lines = [f"kseries run {record.run_id}: {record.title} ({record.series})",
             f"arches: {', '.join(record.arches)}", "", "provenance:"]
    lines += [f"  {k}: {v}" for k, v in record.provenance.items()]
    lines += ["", "stages:"]
    for s in record.stages:
        where = f"{s.stage} {s.arch}".strip()
        lines.append(f"  {where:<18} {s.status.value:<5} {s.seconds:7.1f} s  {s.message}")
    lines += ["", "testcases:"]
    for c in record.cases:
        lines.append(f"  {c.status.value:<5} [{c.suite}] {c.name}" + (f" - {c.message}" if c.message else ""))
    lines += ["", "  " + ", ".join(f"{counts[s]} {s.value.lower()}" for s in Status)]
    lines += comparison(record)
    # the verdict follows the exit code the orchestrator decided, so the two never disagree
    failed = [c for c in record.cases if c.status == Status.FAIL]
    errors = [c for c in record.cases if c.status == Status.ERROR]
    lines.append("")
    if record.exit_code == EXIT_USER:
        lines.append(f"VERDICT: input error - {record.error}")
    elif record.exit_code == EXIT_BLAMED:
        regressions = [v for v in record.verdicts if v["kind"] in ("regression", "gone")]
        judged = {v["suite"] for v in record.verdicts}
        own = [c for c in failed if not c.suite.startswith("base-") and c.suite not in judged]
        lines.append(f"VERDICT: the series is blamed: {len(regressions)} regression(s) against the base"
                     + (f", {len(own)} failure(s) of its own build/boot/check" if own else ""))
        for v in regressions:
            first = (v["excerpt"].splitlines() or [""])[0][:200]
            lines.append(f"  REGRESSION {v['arch']}: [{v['suite']}] {v['test']}: base {v['base']} -> series "
                         f"{v['series']}: {first}")
        lines += [f"  {c.arch or '-'}: [{c.suite}] {c.name}: {c.message}" for c in own]
        if errors:
            lines.append("  (also infrastructure errors, not blamed on the series:)")
            lines += [f"  {c.arch or '-'}: [{c.suite}] {c.name}: {c.message}" for c in errors]
    elif record.exit_code == EXIT_INFRA:
        lines.append(f"VERDICT: ERROR (infrastructure, not the series)" + (f" - {record.error}" if record.error else ":"))
        lines += [f"  {c.arch or '-'}: [{c.suite}] {c.name}: {c.message}" for c in errors if c.message != record.error]
    elif record.verdicts:
        pre = sum(1 for v in record.verdicts if v["kind"] == "pre-existing")
        lines.append("VERDICT: no regressions" + (f" ({pre} pre-existing failure(s), also failing on the base)"
                                                  if pre else ""))
    else:
        lines.append("VERDICT: no failures")
    lines.append(f"total {record.seconds:.0f} s; results in {record.run_id}")
    return "\n".join(lines) + "\n"


def comparison(record: RunRecord) -> list[str]:
    """The series against the base, test by test: counts per kind, then everything not 'ok'."""
    if not record.verdicts:
        return []
    kinds: dict[str, int] = {}
    for v in record.verdicts:
        kinds[v["kind"]] = kinds.get(v["kind"], 0) + 1
    lines = ["", "against the base (test by test):",
             "  " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))]
    for v in record.verdicts:
        if v["kind"] not in ("ok", "skipped"):
            first = (v["excerpt"].splitlines() or [""])[0][:160]
            lines.append(f"  {v['kind']:<12} {v['arch']}: [{v['suite']}] {v['test']} "
                         f"(base {v['base']}, series {v['series']})" + (f": {first}" if first else ""))
    return lines


def write(record: RunRecord, run_dir: Path) -> None:
    junit(record, run_dir / "junit.xml")
    kcidb.write(record, run_dir)
    (run_dir / "summary.txt").write_text(summary(record))
    latest = run_dir.parent / "latest"
    tmp = run_dir.parent / ".latest.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(run_dir.name, tmp)
    os.replace(tmp, latest)


def merge(inputs: list[Path], output: Path) -> tuple[int, int]:
    """One JUnit file from the JUnit of several runs or CI jobs (a run dir, a results root
    with 'latest', or a .xml file each); returns (suites, testcases)."""
    from .errors import UserError

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
