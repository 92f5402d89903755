"""A static HTML dashboard from the results store (Jinja2 templates in templates/).

index.html lists the runs with their verdicts and the flaky tests; each run
gets runs/<id>/index.html: verdict and provenance, base-vs-series comparison
with regressions first and a history strip per test, a patch x arch build
matrix, an arch x suite test matrix, and links to the logs, which are copied
next to the page so the site works from file:// and on GitHub Pages alike.
"""

from __future__ import annotations

import dataclasses
import functools
import http.server
import shutil
import time
from pathlib import Path

from pipeline.report import store, timeline
from pipeline.model.lane import Role
from pipeline.model.results import Kind, RunRecord, Status

TEMPLATES = Path(__file__).parent / "templates"
LOG_SUFFIXES = (".log", ".txt", ".xml", ".json")
KIND_ORDER = ["regression", "gone", "error", "flaky", "new", "fixed", "pre-existing", "skipped", "ok"]


def _env():
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)


def verdict_class(verdict: str, exit_code) -> str:
    if exit_code is None:
        return "running" if verdict.startswith("running") else "error"
    return {0: "ok", 1: "blamed", 2: "error", 3: "error", 130: "interrupted", 143: "interrupted"}.get(exit_code, "error")


def _copy_logs(run_dir: Path, dest: Path) -> list[tuple[str, str]]:
    """Text logs of the run (not kernels or initramfs) next to its page; their links."""
    links = []
    for path in sorted(run_dir.rglob("*")):
        if path.is_file() and (path.suffix in LOG_SUFFIXES or path.name in ("config",)) \
                and "userspace" not in path.parts and "fragments" not in path.parts:
            rel = path.relative_to(run_dir)
            (dest / "logs" / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest / "logs" / rel)
            links.append((str(rel), f"logs/{rel}"))
    return links


def _build_rows(record: RunRecord, arches: list[str], logs: set[str]) -> list[dict]:
    """One row per patch: its per-patch build on each arch (the last patch is the lane's build)."""
    per: dict[tuple[int, str], dict] = {}
    total = 0
    for case in record.cases:
        if case.stage == "per-patch" and case.test == "build" and case.patch:
            k, total = case.patch, case.patches
            log = f"{case.arch}/build.log" if k == total else f"{case.arch}/build-patch-{k}of{total}.log"
            per[(k, case.arch)] = {"status": case.status.value, "message": case.message,
                                   "href": f"logs/{log}" if log in logs else ""}
    total = total or 1
    for stage in record.stages:  # a lane without per-patch builds: its one build is the tip
        if stage.stage == "build" and stage.role is Role.SERIES and (total, stage.arch) not in per:
            log = f"{stage.arch}/build.log"
            per[(total, stage.arch)] = {"status": stage.status.value, "message": stage.message,
                                        "href": f"logs/{log}" if log in logs else ""}
    rows = []
    for k in range(1, total + 1):
        label = f"patch {k}/{total}" + (" (tip)" if k == total else "")
        rows.append({"label": label, "cells": [per.get((k, a), {"status": "SKIP", "message": "not built",
                                                                "href": ""}) for a in arches]})
    return rows


def _count(cases) -> tuple[str, str]:
    if not cases:
        return "-", "SKIP"
    counts: dict[str, int] = {}
    for c in cases:
        counts[c.status.value] = counts.get(c.status.value, 0) + 1
    text = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))
    return text, Status.worst(c.status for c in cases).value


def _test_rows(record: RunRecord, arches: list[str], logs: set[str]) -> tuple[list[str], list[dict]]:
    judged = sorted({v.suite for v in record.verdicts})
    groups = ["boot", "check", *judged]
    rows = []
    for arch in arches:
        cells = []
        for group in groups:
            series = [c for c in record.cases if c.arch == arch and c.group == group and c.role is Role.SERIES]
            base = [c for c in record.cases if c.arch == arch and c.group == group and c.role is Role.BASE]
            text, status = _count(series)
            cells.append({"series": text, "base": _count(base)[0], "status": status})
        console = f"{arch}/console.log"
        rows.append({"arch": arch, "cells": cells, "console": f"logs/{console}" if console in logs else ""})
    return groups, rows


def render_run(db, row, out: Path, flaky: set) -> str:
    run_dir = Path(row["path"])
    record = RunRecord.load(run_dir / "results.json")
    dest = out / "runs" / row["run_id"]
    dest.mkdir(parents=True, exist_ok=True)
    links = _copy_logs(run_dir, dest)
    logs = {name for name, _ in links}
    arches = list(record.arches)
    compared = []
    for v in record.verdicts:
        if v.kind in (Kind.OK, Kind.SKIPPED):
            continue
        compared.append({**dataclasses.asdict(v), "kind": v.kind.value,
                         "flaky": (v.suite, v.arch, v.test) in flaky or v.kind is Kind.FLAKY,
                         "history": store.history(db, v.suite, v.arch, v.test)})
    compared.sort(key=lambda v: KIND_ORDER.index(v["kind"]) if v["kind"] in KIND_ORDER else 99)
    suites, test_rows = _test_rows(record, arches, logs)
    problems = [c for c in record.cases if c.status == Status.FAIL or c.status.broken]
    page = _env().get_template("run.html").render(
        run=row, klass=verdict_class(row["verdict"], row["exit_code"]),
        provenance=sorted(record.provenance.items()),
        run_logs=[(n, h) for n, h in links if n in ("summary.txt", "junit.xml", "kcidb.json", "commands.log")],
        compared=compared, ok_count=sum(1 for v in record.verdicts if v.kind is Kind.OK),
        arches=arches, build_rows=_build_rows(record, arches, logs), suites=suites, test_rows=test_rows,
        problems=problems, timeline=timeline.svg(record), generated=time.strftime("%Y-%m-%d %H:%M"))
    (dest / "index.html").write_text(page)
    return f"runs/{row['run_id']}/index.html"


def build_site(db, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    flaky = store.flaky(db)
    rows = []
    for row in store.runs(db):
        href = ""
        if row["origin"] == "kseries" and (Path(row["path"]) / "results.json").exists():
            href = render_run(db, row, out, flaky)
        rows.append({**dict(row), "href": href or Path(row["path"]).as_uri(),
                     "klass": verdict_class(row["verdict"] or "", row["exit_code"])})
    flaky_rows = [{"suite": s, "arch": a, "test": n, "history": store.history(db, s, a, n)}
                  for s, a, n in sorted(flaky)]
    (out / "index.html").write_text(_env().get_template("index.html").render(
        runs=rows, flaky=flaky_rows, generated=time.strftime("%Y-%m-%d %H:%M")))
    return out / "index.html"


class Handler(http.server.SimpleHTTPRequestHandler):
    """Static files, with logs and kernel configs shown as text rather than downloaded."""
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".log": "text/plain; charset=utf-8", ".txt": "text/plain; charset=utf-8",
                      "": "text/plain; charset=utf-8"}

    def log_message(self, *args):
        pass


def handler(out: Path):
    return functools.partial(Handler, directory=str(out))


def serve(out: Path, port: int = 8000) -> None:
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler(out)) as server:
        print(f"serving {out} on http://127.0.0.1:{server.server_port}/ (Ctrl-C stops)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
