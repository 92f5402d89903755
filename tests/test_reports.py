"""Reports: JUnit against the common schema, merged JUnit, KCIDB v5 (kcidb-io), the
SQLite store's history, and the HTML dashboard in a real headless Chromium."""

import http.server
import json
import shutil
import threading
from pathlib import Path

import pytest

from pipeline.model.lane import Role
from pipeline.model.results import Case, Kind, RunRecord, StageResult, Status, Verdict
from pipeline.report import dashboard, junit, kcidb, store
from pipeline.report import write as write_reports

SCHEMA = Path(__file__).parent / "schemas" / "junit.xsd"
BASE = "f226d8af79551d7b2b6a8f5b1c0a9e8d7c6b5a49"
P, F, S = Status.PASS, Status.FAIL, Status.SKIP
SER, BAS = Role.SERIES, Role.BASE


def make_run(root: Path, run_id: str, started: str, mmap: Status, flaky_test: Status, exit_code: int,
             tip: str = "97cfdcdb5f3c") -> Path:
    """A run as the pipeline persists it: two arches, base and series lanes, per-patch builds."""
    run_dir = root / run_id
    (run_dir / "x86_64").mkdir(parents=True)
    (run_dir / "series" / "patches").mkdir(parents=True)
    (run_dir / "series" / "patches" / "0001.patch").write_text("From: a\nSubject: [PATCH] x\n\ndiff --git a/x b/x\n")
    (run_dir / "x86_64" / "console.log").write_text("Linux version 7.2\nkseries-init: reached userspace\n")
    (run_dir / "x86_64" / "build.log").write_text("  CC      mm/rmap.o\n")
    rec = RunRecord(run_id, "page_mapped", "mm: remove page_mapped()", ["x86_64", "sh4"], started,
                    provenance={"base-commit": BASE, "tip": tip, "patches": "offline copy"})
    rec.stages.append(StageResult("apply", "", SER, P, 1.0, cases=[Case("apply", "mm: x", P, 1.0, patch=1, patches=1)]))
    for arch in ("x86_64", "sh4"):
        rec.stages.append(StageResult("build", arch, BAS, P, 10, "built", cases=[
            Case("build", "bzImage", P, 10, arch=arch, role=BAS)]))
        rec.stages.append(StageResult("build", arch, SER, P, 12, "built in 12 s", cases=[
            Case("build", "bzImage", P, 12, arch=arch)]))
        rec.stages.append(StageResult("per-patch", arch, SER, P, 0, cases=[
            Case("per-patch", "build", P, 12, "built", arch=arch, patch=1, patches=1)]))
        rec.stages.append(StageResult("boot", arch, SER, P, 30, cases=[Case("boot", "boot to init (TCG)", P, 30, arch=arch)]))
        series_mmap = mmap if arch == "x86_64" else P
        cases = [Case("suite", "syscall.mmap_bad", series_mmap, 0.1, "" if series_mmap == P else "mmap returned 0", "",
                      arch, suite="nolibc"),
                 Case("suite", "syscall.getpid", flaky_test if arch == "x86_64" else P, 0.1, arch=arch, suite="nolibc")]
        rec.stages.append(StageResult("suite", arch, SER, Status.worst(c.status for c in cases), 0, suite="nolibc",
                                      cases=cases))
        rec.stages.append(StageResult("suite", arch, BAS, P, 0, suite="nolibc", cases=[
            Case("suite", "syscall.mmap_bad", P, 0.1, arch=arch, role=BAS, suite="nolibc"),
            Case("suite", "syscall.getpid", P, 0.1, arch=arch, role=BAS, suite="nolibc")]))
        for c in cases:
            kind = Kind.OK if c.status == P else Kind.REGRESSION
            rec.verdicts.append(Verdict(arch, "nolibc", c.test, "PASS", c.status.value, kind, c.message))
    rec.exit_code = exit_code
    rec.verdict = "no regressions" if exit_code == 0 else "the series is blamed: 1 regression(s) against the base"
    rec.seconds = 100
    rec.save(run_dir / "results.json")
    write_reports(rec, run_dir)
    return run_dir


@pytest.fixture
def three_runs(tmp_path):
    root = tmp_path / "results"
    make_run(root, "20261101-100000-page_mapped", "2026-11-01T10:00:00+0000", P, P, 0)
    make_run(root, "20261102-100000-page_mapped", "2026-11-02T10:00:00+0000", P, F, 1)
    regressed = make_run(root, "20261103-100000-regress", "2026-11-03T10:00:00+0000", F, P, 1, tip="0badc0de")
    return root, regressed


def test_junit_validates_against_the_common_schema_and_merges(three_runs, tmp_path):
    import xmlschema
    from junitparser import JUnitXml

    root, regressed = three_runs
    schema = xmlschema.XMLSchema(str(SCHEMA))
    schema.validate(str(regressed / "junit.xml"))
    out = tmp_path / "merged.xml"
    suites, tests = junit.merge([root / "20261101-100000-page_mapped", regressed / "junit.xml"], out)
    schema.validate(str(out))
    merged = JUnitXml.fromfile(str(out))
    assert tests == 2 * len(RunRecord.load(regressed / "results.json").cases) and merged.tests == tests
    assert merged.failures == 1  # the regression, once
    props = {p.name: p.value for s in merged for p in s.properties()}
    assert props["kseries.base-commit"] == BASE and props["kseries.series"] == "page_mapped"


def test_kcidb_export_validates_with_kcidb_io(three_runs):
    import kcidb_io

    _, regressed = three_runs
    data = json.loads((regressed / "kcidb.json").read_text())
    kcidb_io.schema.LATEST.validate(data)
    assert kcidb_io.schema.LATEST.is_compatible_exactly(data)
    assert {c["id"].rsplit(":", 1)[1] for c in data["checkouts"]} == {"base", "series"}
    series = next(c for c in data["checkouts"] if c["id"].endswith(":series"))
    assert len(series["patchset_hash"]) == 64 and series["git_commit_hash"] == BASE
    failed = [t for t in data["tests"] if t["status"] == "FAIL"]
    assert [t["path"] for t in failed] == ["nolibc.syscall_mmap_bad"]
    assert failed[0]["build_id"].endswith(":series:x86_64") and "mmap returned 0" in failed[0]["log_excerpt"]
    assert {b["architecture"] for b in data["builds"] if "architecture" in b} == {"x86_64", "sh4"}


def test_store_history_and_flaky(three_runs, tmp_path):
    root, _ = three_runs
    db = store.open_db(tmp_path / "k.db")
    assert len(store.ingest_tree(db, root)) == 3
    assert len(store.ingest_tree(db, root)) == 3  # again: replaced, not doubled
    assert len(store.runs(db)) == 3
    hist = store.history(db, "nolibc", "x86_64", "syscall.mmap_bad")
    assert [h.status for h in hist] == ["FAIL", "PASS", "PASS"]  # newest first
    assert ("nolibc", "x86_64", "syscall.getpid") in store.flaky(db)
    assert ("nolibc", "sh4", "syscall.getpid") not in store.flaky(db)
    # a failure of another series on the same base is that series' regression, not flakiness
    assert ("nolibc", "x86_64", "syscall.mmap_bad") not in store.flaky(db)
    assert len(store.durations(db, "boot", "sh4", "boot to init (TCG)")) == 3
    other = tmp_path / "other.xml"
    other.write_text('<testsuites><testsuite name="ltp" tests="2"><testcase name="mmap01"/>'
                     '<testcase name="mmap02"><failure message="TFAIL"/></testcase></testsuite></testsuites>')
    run_id = store.ingest_junit(db, other)
    assert db.execute("SELECT verdict FROM runs WHERE run_id=?", (run_id,)).fetchone()[0] == "1 failure(s), 0 error(s)"


def test_dashboard_in_a_real_browser(three_runs, tmp_path):
    """Headless Chromium (Debian's) driven by Playwright against the site served on loopback."""
    from playwright.sync_api import sync_playwright

    root, _ = three_runs
    chromium = shutil.which("chromium")  # Debian's; else Playwright's own (playwright install chromium)
    db = store.open_db(tmp_path / "k.db")
    store.ingest_tree(db, root)
    site = tmp_path / "site"
    dashboard.build_site(db, site)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), dashboard.handler(site))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"]) if chromium \
                else pw.chromium.launch()
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.goto(f"http://127.0.0.1:{server.server_port}/index.html")
            rows = page.locator("#runs tr.run")
            assert rows.count() == 3
            assert "blamed" in rows.nth(0).locator("td.verdict").get_attribute("class")
            assert page.locator("#flaky").inner_text().count("flaky") == 1  # getpid: PASS, FAIL, PASS
            with page.expect_navigation():
                rows.nth(0).locator("a").click()
            assert page.title() == "20261103-100000-regress"
            first = page.locator("#compared tr.verdict-row").first
            assert "regression" in first.inner_text() and "syscall.mmap_bad" in first.inner_text()
            red = first.evaluate("e => getComputedStyle(e).backgroundColor")
            assert red == "rgb(248, 201, 201)", red
            strip = first.locator(".strip span")
            assert [strip.nth(i).get_attribute("class") for i in range(strip.count())] == ["FAIL", "PASS", "PASS"]
            assert page.locator("#tests tr").count() == 3  # header + x86_64 + sh4
            assert "x86_64" in page.locator("#tests").inner_text() and "sh4" in page.locator("#tests").inner_text()
            page.screenshot(path=str(tmp_path / "dashboard-run.png"), full_page=True)
            with page.expect_navigation():
                page.locator("#tests a", has_text="console").first.click()
            assert page.url.endswith("/logs/x86_64/console.log")
            assert "kseries-init: reached userspace" in page.content()
            browser.close()
    finally:
        server.shutdown()
    assert (tmp_path / "dashboard-run.png").stat().st_size > 10_000


def test_a_run_in_progress_is_shown_as_running_not_green(tmp_path):
    root = tmp_path / "results"
    run_dir = make_run(root, "20261104-100000-page_mapped", "2026-11-04T10:00:00+0000", P, P, 0)
    rec = RunRecord.load(run_dir / "results.json")
    rec.exit_code, rec.verdict = None, ""
    rec.save(run_dir / "results.json")
    db = store.open_db(tmp_path / "k.db")
    store.ingest_tree(db, root)
    row = store.runs(db)[0]
    assert row["verdict"] == "running: 13 stage(s) done, last base-suite nolibc sh4"
    assert dashboard.verdict_class(row["verdict"], row["exit_code"]) == "running"


def test_kcidb_links_logs_under_the_published_url(three_runs, monkeypatch):
    _, regressed = three_runs
    monkeypatch.setenv("KSERIES_LOGS_URL", "https://ci.example.org/runs/")
    data = kcidb.export(RunRecord.load(regressed / "results.json"), regressed)
    logs = [b["log_url"] for b in data["builds"] if "log_url" in b]
    assert logs == ["https://ci.example.org/runs/20261103-100000-regress/x86_64/build.log"]
    assert kcidb.write(RunRecord.load(regressed / "results.json"), regressed).name == "kcidb.json"
