"""Turn one suite's console output into testcases; one function per output format.

A parser gets the lines printed between the suite's start and exit markers,
and the text of the suite's results file if it has one, and returns (name,
status, message, output) tuples; the caller adds arch and suite. A parser raises
Unreadable when the output cannot be trusted (an ERROR, not a test failure).
"""

from __future__ import annotations

import json
import re

from pipeline.model.results import Status

NOLIBC_GROUP = re.compile(r"^Running test '(?P<group>[\w-]+)'")
NOLIBC_LINE = re.compile(
    r"^(?P<num>\d+) (?P<name>[\w.-]+)(?P<detail>.*?)\s*\[(?P<status>OK|FAIL|SKIPPED)\]\s*$"
)
NOLIBC_STATUS = {"OK": Status.PASS, "FAIL": Status.FAIL, "SKIPPED": Status.SKIP}


class Unreadable(Exception):
    pass


def nolibc(lines: list[str], results: str | None = None, **_) -> list[tuple[str, Status, str, str]]:
    """tools/testing/selftests/nolibc/nolibc-test: "N name detail   [OK|FAIL|SKIPPED]" per test."""
    group, out = "", []
    for line in lines:
        line = line.rstrip("\r")
        m = NOLIBC_GROUP.match(line)
        if m:
            group = m.group("group")
            continue
        m = NOLIBC_LINE.match(line)
        if m:
            status = NOLIBC_STATUS[m.group("status")]
            detail = " ".join(m.group("detail").split())
            message = detail if status != Status.PASS else ""
            if status == Status.SKIP and not message:
                message = "nolibc-test skipped it (a feature or condition it needs is missing)"
            out.append((f"{group}.{m.group('name')}" if group else m.group("name"), status, message, line))
    return out


TEST_PROGS_LINE = re.compile(
    r"^#(?P<num>\d+)(?:/(?P<sub>\d+))?\s+(?P<name>[^\s:]+):(?P<status>OK|SKIP|FAIL)\b(?P<rest>.*)$")
TEST_PROGS_STATUS = {"OK": Status.PASS, "SKIP": Status.SKIP, "FAIL": Status.FAIL}


def test_progs_json(lines: list[str], results: str | None = None, **_) -> list[tuple[str, Status, str, str]]:
    """BPF selftests' test_progs: one "#N[/M] test[/subtest]:OK|SKIP|FAIL" line per test and
    subtest on stdout; the -J file holds the summary counts and the logs of failed
    tests. The counts must agree with the lines, so a mangled console is an error."""
    if results is None or not results.strip():
        raise Unreadable("test_progs wrote no JSON results (-J)")
    try:
        summary = json.loads(results)
    except json.JSONDecodeError as exc:
        raise Unreadable(f"the test_progs JSON is malformed ({exc}); the console may have mangled it") from exc
    logs = {}
    for test in summary.get("results", []):
        logs[test["name"]] = test.get("message", "")
        for sub in test.get("subtests", []):
            logs[f"{test['name']}/{sub['name']}"] = sub.get("message", "")
    out, seen = [], set()
    for line in lines:
        m = TEST_PROGS_LINE.match(line.strip())
        if not m or line.strip() in seen:  # failed tests are printed twice (again under "All error logs")
            continue
        seen.add(line.strip())
        status = TEST_PROGS_STATUS[m.group("status")]
        name = m.group("name")
        log = logs.get(name, "")
        message = ""
        if status == Status.FAIL:
            logged = log.strip().splitlines()
            failing = [x for x in logged if ":FAIL:" in x]  # the failed assertion, not the last check
            message = (failing or logged or ["failed (no log)"])[0 if failing else -1][:300]
        elif "not built" in m.group("rest"):
            # its BPF objects did not compile: never a silent skip
            status = Status.ERROR
            message = "not built: its BPF programs did not compile with this toolchain and kernel config"
        elif status == Status.SKIP:
            message = "test_progs skipped it (a feature the test needs is missing)"
        out.append((name, status, message, log or line.strip()))
    tops = [(name, st) for name, st, *_ in out if "/" not in name]
    # test_progs counts a test that ran and skipped as a success; one not built as neither
    ran_ok = sum(1 for _, st in tops if st in (Status.PASS, Status.SKIP))
    failed = sum(1 for _, st in tops if st == Status.FAIL)
    if (ran_ok, failed) != (summary.get("success"), summary.get("failed")) or not tops:
        raise Unreadable(
            f"the console shows {ran_ok} run / {failed} failed of {len(tops)} tests but test_progs' JSON "
            f"says {summary.get('success')} / {summary.get('failed')}: the console output is incomplete"
        )
    return out


def ktap_kunit(lines: list[str], results: str | None = None, ktap=None, **_) -> list[tuple[str, Status, str, str]]:
    """KUnit's KTAP as the kernel printed it at boot, read by the base tree's kunit_parser (ktap);
    one row per test case, "suite.case" (parameterised cases: "suite.case.param")."""
    from pipeline.catalogue import ktap as reading

    if ktap is None:
        raise Unreadable("no KTAP parser: the base tree's tools/testing/kunit/kunit_parser.py was not loaded")
    top = reading.parse(ktap, lines)
    if top.status == ktap.TestStatus.FAILURE_TO_PARSE_TESTS:
        raise Unreadable("no KTAP output on the console")
    return [(".".join(names), status, message, log) for names, status, message, log in reading.cases(ktap, top)]


SELFTEST_NAME = re.compile(r"^selftests:\s*(?P<target>\S+):\s*(?P<test>.+)$")


def ktap_kselftest(lines: list[str], results: str | None = None, ktap=None, **_) -> list[tuple[str, Status, str, str]]:
    """run_kselftest.sh's TAP: one test per "ok N selftests: TARGET: TEST", named "TARGET:TEST", and the
    test's own KTAP (its "# " lines) read one level down for its subtests ("TARGET:TEST.subtest")."""
    from pipeline.catalogue import ktap as reading

    if ktap is None:
        raise Unreadable("no KTAP parser: the base tree's tools/testing/kunit/kunit_parser.py was not loaded")
    top = reading.parse(ktap, lines)
    if top.status == ktap.TestStatus.FAILURE_TO_PARSE_TESTS or not top.subtests:
        raise Unreadable("run_kselftest.sh printed no TAP results")
    out = []
    for names, status, message, output in reading.cases(ktap, top, nested=True):
        m = SELFTEST_NAME.match(names[0])
        label = f"{m.group('target')}:{m.group('test').strip()}" if m else names[0]
        out.append((".".join((label, *names[1:])), status, message, output))
    return out


PARSERS = {"nolibc": nolibc, "test_progs_json": test_progs_json, "ktap_kunit": ktap_kunit,
           "ktap_kselftest": ktap_kselftest}
