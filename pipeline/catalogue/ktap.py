"""KTAP (KUnit's and kselftest's output) read with the kernel's own parser,
tools/testing/kunit/kunit_parser.py, taken from the base tree (upstream code, never the series'
tree: a patch could change the parser, and it runs on the host). It is kept in
<cache>/ktap/<blob hash>/ and imported from there.

cases() turns its Test tree into (name, status, message, output) rows, one per test case and
subtest; a kselftest's own KTAP, which run_kselftest.sh prints with a "# " before each line, is
parsed again one level down, so its subtests are kept.
"""

from __future__ import annotations

import importlib.util
import io
import re
import sys
import threading
from pathlib import Path

from pipeline.model.results import Status

FILES = ("kunit_parser.py", "kunit_printer.py")
_lock = threading.Lock()
_loaded: dict[str, object] = {}


class Missing(Exception):
    pass


def load(cache: Path, tree) -> object:
    """The tree's kunit_parser module (tree: pipeline/catalogue/tree.Tree of the base commit)."""
    texts = {name: tree.read(f"tools/testing/kunit/{name}") for name in FILES}
    if any(t is None for t in texts.values()):
        raise Missing(f"the base tree has no tools/testing/kunit/{'/'.join(FILES)}: kseries reads KTAP with "
                      "the kernel's own parser")
    import hashlib

    key = hashlib.sha256("".join(texts.values()).encode()).hexdigest()[:16]
    with _lock:
        if key in _loaded:
            return _loaded[key]
        where = cache / "ktap" / key
        where.mkdir(parents=True, exist_ok=True)
        for name, text in texts.items():
            if not (where / name).is_file():
                (where / name).write_text(text)
        previous = sys.modules.get("kunit_printer")
        spec = importlib.util.spec_from_file_location("kunit_printer", where / "kunit_printer.py")
        printer = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(printer)
        sys.modules["kunit_printer"] = printer  # kunit_parser does `from kunit_printer import Printer`
        try:
            spec = importlib.util.spec_from_file_location(f"kunit_parser_{key}", where / "kunit_parser.py")
            parser = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = parser  # dataclasses look their module up while it loads
            spec.loader.exec_module(parser)
        finally:
            if previous is not None:
                sys.modules["kunit_printer"] = previous
            else:
                sys.modules.pop("kunit_printer", None)
        parser._kseries_printer = printer
        _loaded[key] = parser
        return parser


def parse(parser, lines: list[str]):
    """The Test tree of the KTAP in lines (the parser's own report goes nowhere)."""
    quiet = parser._kseries_printer.Printer(print=False, output=io.StringIO())
    return parser.parse_run_tests(lines, quiet)


def status_of(parser, test) -> Status:
    s = parser.TestStatus
    return {s.SUCCESS: Status.PASS, s.FAILURE: Status.FAIL, s.SKIPPED: Status.SKIP,
            s.TEST_CRASHED: Status.FAIL, s.NO_TESTS: Status.SKIP,
            s.FAILURE_TO_PARSE_TESTS: Status.ERROR}.get(test.status, Status.ERROR)


def cases(parser, top, nested: bool = False) -> list[tuple[tuple[str, ...], Status, str, str]]:
    """One row per leaf test case: (its path of names, status, message, log); nested: a test's log
    is itself KTAP behind "# " (run_kselftest.sh's output) and is parsed for its subtests."""
    out: list[tuple[tuple[str, ...], Status, str, str]] = []

    def walk(test, path: tuple[str, ...]) -> None:
        path = (*path, test.name)
        if test.subtests:
            for sub in test.subtests:
                walk(sub, path)
            return
        status = status_of(parser, test)
        log = "\n".join(test.log[-60:])
        message = ""
        if status == Status.FAIL:
            message = _failure(test.log) or ("crashed" if test.status == parser.TestStatus.TEST_CRASHED else "failed")
        elif status == Status.SKIP:
            message = test.skip_reason or "skipped"
        elif status == Status.ERROR:
            message = "the KTAP output could not be parsed"
        inner = _inner(test.log) if nested else []
        if inner:
            sub = parse(parser, inner)
            rows = []
            for child, lines in zip(sub.subtests, _segments(inner) + [[]] * len(sub.subtests)):
                if not child.name and child.status == parser.TestStatus.NO_TESTS and not child.subtests:
                    continue  # the parser's reading of a plan line after the tests ("1..3" last): no test
                if not child.log:  # TAP without subtest headers: its lines are those before its result
                    child.log = lines
                rows += [((*path, *names), st, msg, lg) for names, st, msg, lg in cases(parser, _wrap(child))]
            if rows:
                # the test's own verdict stands beside its subtests: a crash after them is not lost
                if status != Status.PASS and not any(st == status for _, st, _, _ in rows):
                    rows.append((path, status, message, log))
                out.extend(rows)
                return
        out.append((path, status, message, log))

    for test in top.subtests:
        walk(test, ())
    return out


RESULT = re.compile(r"^(not )?ok \d+")


def _segments(lines: list[str]) -> list[list[str]]:
    """A test's lines split at its subtests' result lines: each subtest's are what came after the
    one before (the subtest's own output, in a TAP without "# Subtest:" headers)."""
    out, current = [], []
    for line in lines:
        current.append(line)
        if RESULT.match(line):
            out.append(current)
            current = []
    return out


def _wrap(test):
    class Top:
        subtests = [test]
    return Top


def _inner(log: list[str]) -> list[str]:
    """A kselftest's own output: the "# " lines of its log, one level of "# " taken off."""
    return [line[2:] if line.startswith("# ") else line[1:] for line in log if line.startswith("#")]


def _failure(log: list[str]) -> str:
    """What failed: the first of the test's own "not ok" lines (a kselftest's KTAP of its cases),
    else the first line that says so (KUnit's "Expected ..." or "# ... FAIL" lines; never a
    passing "ok ... # XFAIL")."""
    texts = [line.strip().lstrip("#").strip() for line in log]
    failed = [text for text in texts if text.startswith("not ok ")]
    if failed:
        return failed[0][:300] + (f" (and {len(failed) - 1} more not ok)" if len(failed) > 1 else "")
    for text in texts:
        if text.startswith(("Expected", "ASSERTION FAILED", "EXPECTATION FAILED")) or (
                "FAIL" in text and not text.startswith("ok ")):
            return text[:300]
    return ""
