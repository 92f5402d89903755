"""The results store: SQLite, one row per run, build, test and base-vs-series verdict.

Runs are ingested from their persisted results.json (ingesting again replaces
the run's rows), and any JUnit file can be ingested too, so results of other
tools show up beside kseries' own. History queries answer: a test's last N
outcomes, tests with mixed outcomes on the same base (flaky), durations over time.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from pipeline.infra.errors import UserError
from pipeline.model.results import RunRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
  run_id TEXT PRIMARY KEY, series TEXT, title TEXT, base_commit TEXT, tip TEXT, arches TEXT,
  started TEXT, seconds REAL, exit_code INTEGER, verdict TEXT, origin TEXT, path TEXT);
CREATE TABLE IF NOT EXISTS builds (
  run_id TEXT, lane TEXT, arch TEXT, status TEXT, seconds REAL, message TEXT);
CREATE TABLE IF NOT EXISTS tests (
  run_id TEXT, lane TEXT, arch TEXT, suite TEXT, test TEXT, name TEXT, status TEXT, seconds REAL,
  message TEXT, flaky INTEGER, base_commit TEXT, started TEXT, code TEXT, patch INTEGER);
CREATE TABLE IF NOT EXISTS verdicts (
  run_id TEXT, arch TEXT, suite TEXT, test TEXT, base TEXT, series TEXT, kind TEXT, excerpt TEXT);
CREATE INDEX IF NOT EXISTS tests_by_test ON tests (suite, arch, test);
"""
TABLES = ("runs", "builds", "tests", "verdicts")


@dataclass
class Outcome:
    run_id: str
    started: str
    status: str
    seconds: float


def open_db(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        db = sqlite3.connect(path)
        db.executescript(SCHEMA)
    except sqlite3.DatabaseError as exc:
        raise UserError(f"{path} is not a kseries results store ({exc}). Point --db at another file, "
                        "or move this one away and ingest the runs again.") from exc
    db.row_factory = sqlite3.Row
    return db


def _forget(db: sqlite3.Connection, run_id: str) -> None:
    for table in TABLES:
        db.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))


def verdict(record: RunRecord) -> str:
    """The run's verdict; a run still in progress (no exit code yet) says so and where it is."""
    if record.exit_code is not None:
        return record.verdict
    last = record.stages[-1].where if record.stages else "starting"
    return f"running: {len(record.stages)} stage(s) done, last {last}"


def ingest_run(db: sqlite3.Connection, run_dir: Path) -> str:
    record = RunRecord.load(run_dir / "results.json")
    base = record.provenance.get("base-commit", "")
    with db:
        _forget(db, record.run_id)
        db.execute("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", (
            record.run_id, record.series, record.title, base, record.provenance.get("tip", ""),
            " ".join(record.arches), record.started, record.seconds, record.exit_code, verdict(record),
            "kseries", str(run_dir.resolve())))
        for stage in record.stages:
            lane = stage.role.value
            if stage.stage == "build":
                db.execute("INSERT INTO builds VALUES (?,?,?,?,?,?)",
                           (record.run_id, lane, stage.arch, stage.status.value, stage.seconds, stage.message))
            for c in stage.cases:
                code = base if lane == "base" else record.provenance.get("tip", "")  # the code under test
                db.execute("INSERT INTO tests VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", (
                    record.run_id, lane, c.arch, c.group, c.test, c.name, c.status.value,
                    c.seconds, c.message, int(c.flaky), base, record.started, code, c.patch))
        for v in record.verdicts:
            db.execute("INSERT INTO verdicts VALUES (?,?,?,?,?,?,?,?)", (
                record.run_id, v.arch, v.suite, v.test, v.base, v.series, v.kind.value, v.excerpt))
    return record.run_id


def ingest_junit(db: sqlite3.Connection, path: Path) -> str:
    """Any JUnit file (another tool's too): one run, its testsuites as suites."""
    from junitparser import Error, Failure, JUnitXml, Skipped

    try:
        xml = JUnitXml.fromfile(str(path))
    except Exception as exc:  # noqa: BLE001 - junitparser raises lxml/ElementTree errors
        raise UserError(f"{path} is not a JUnit XML file ({type(exc).__name__}: {exc}). Pass a JUnit report.") from exc
    suites = [xml] if xml._tag == "testsuite" else list(xml)
    run_id = "junit-" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    stamp = next((s.timestamp for s in suites if getattr(s, "timestamp", None)), "") or ""
    with db:
        _forget(db, run_id)
        counts = {"FAIL": 0, "ERROR": 0}
        for suite in suites:
            for case in suite:
                result = case.result[0] if case.result else None
                status = ("FAIL" if isinstance(result, Failure) else "ERROR" if isinstance(result, Error)
                          else "SKIP" if isinstance(result, Skipped) else "PASS")
                counts[status] = counts.get(status, 0) + 1
                db.execute("INSERT INTO tests VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", (
                    run_id, "series", "", suite.name or "junit", case.name, case.name, status, case.time or 0,
                    (result.message or "") if result is not None else "", 0, "", stamp, "", 0))
        verdict_text = f"{counts['FAIL']} failure(s), {counts['ERROR']} error(s)" if counts["FAIL"] + counts["ERROR"] \
            else "no failures"
        db.execute("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", (
            run_id, xml.name or path.stem, f"JUnit {path.name}", "", "", "", stamp, 0,
            1 if counts["FAIL"] else 0, verdict_text, "junit", str(path.resolve())))
    return run_id


def run_dirs(results: Path) -> list[Path]:
    """The run directories under a results root (results/latest is a link, not a run)."""
    if not results.is_dir():
        return []
    return sorted(p for p in results.iterdir() if not p.is_symlink() and (p / "results.json").exists())


def ingest_tree(db: sqlite3.Connection, results: Path) -> list[str]:
    """Every run this version can read; a run of another results schema is named and left out."""
    done = []
    for run_dir in run_dirs(results):
        try:
            done.append(ingest_run(db, run_dir))
        except UserError as exc:
            print(f"kseries: left out {run_dir.name}: {exc.message}")
    return done


# ---- history ---------------------------------------------------------------
def runs(db: sqlite3.Connection) -> list[sqlite3.Row]:
    return db.execute("SELECT * FROM runs ORDER BY started DESC, run_id DESC").fetchall()


def history(db: sqlite3.Connection, suite: str, arch: str, test: str, lane: str = "series",
            limit: int = 10) -> list[Outcome]:
    rows = db.execute(
        "SELECT t.run_id, t.started, t.status, t.seconds FROM tests t WHERE suite=? AND arch=? AND test=? "
        "AND lane=? ORDER BY t.started DESC, t.run_id DESC LIMIT ?", (suite, arch, test, lane, limit)).fetchall()
    return [Outcome(*r) for r in rows]


def flaky(db: sqlite3.Connection) -> set[tuple[str, str, str]]:
    """(suite, arch, test) that passed and failed on the same code (the same base, or the same
    series tip on it), or that needed a retry within a run."""
    rows = db.execute(
        "SELECT suite, arch, test FROM tests WHERE status IN ('PASS','FAIL') AND code != '' "
        "GROUP BY suite, arch, test, code HAVING COUNT(DISTINCT status) > 1 "
        "UNION SELECT suite, arch, test FROM tests WHERE flaky = 1").fetchall()
    return {tuple(r) for r in rows}


def durations(db: sqlite3.Connection, suite: str, arch: str, test: str) -> list[tuple[str, float]]:
    return [(r[0], r[1]) for r in db.execute(
        "SELECT started, seconds FROM tests WHERE suite=? AND arch=? AND test=? AND lane='series' "
        "ORDER BY started", (suite, arch, test)).fetchall()]
