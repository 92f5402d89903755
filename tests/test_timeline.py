"""Where a run's time went: each stage's start and thread are kept, the dashboard draws them on a
time axis with lock waits and reused stages, and summary.txt says the same in numbers."""

import dataclasses
import time

from pipeline.model.lane import Role
from pipeline.model.results import RunRecord, StageResult, Status
from pipeline.report import timeline
from pipeline.run import loop
from pipeline.stages.interface import Outcome
from test_loop import Fakes, new_run


def test_every_stage_of_a_run_has_its_start_and_thread(tmp_path, monkeypatch):
    fakes = Fakes(monkeypatch)
    plain = fakes.body("build")

    def slow_build(work):
        time.sleep(0.3)
        return plain(work)

    monkeypatch.setattr(loop, "GRAPH", tuple(dataclasses.replace(n, run=slow_build) if n.name == "build" else n
                                             for n in loop.GRAPH))
    run = new_run(tmp_path)
    assert run.run() == 0
    record = RunRecord.load(run.run_dir / "results.json")
    assert all(s.started >= 0 for s in record.stages)
    threads = {s.stage: s.thread for s in record.stages}
    assert threads["build"] == "lanes" and threads["boot"] == "guest" and threads["checkpatch"] == "beside"
    builds = sorted((s for s in record.stages if s.stage == "build"), key=lambda s: s.started)
    assert builds[1].started >= builds[0].started + 0.3  # one lane's build after the other's
    summary = (run.run_dir / "summary.txt").read_text()
    assert "timeline (seconds into the run;" in summary and "base-x86_64" in summary


def stage(name, arch, role, started, seconds, **kw):
    return StageResult(name, arch, role, kw.pop("status", Status.PASS), seconds, started=started, thread="lanes", **kw)


def test_the_picture_shows_waits_reuse_and_failures():
    record = RunRecord("r", "s", "t", ["x86_64"], "now")
    record.stages = [stage("apply", "", Role.SERIES, 0, 2),
                     stage("build", "x86_64", Role.BASE, 2, 300, facts={"lock_wait": 120}),
                     stage("boot", "x86_64", Role.BASE, 302, 0.1, reused="lane cache abc"),
                     stage("build", "x86_64", Role.SERIES, 302, 50, status=Status.FAIL, message="make exited 2"),
                     StageResult("old", "x86_64", Role.SERIES, Status.PASS, 5)]  # from before starts were kept
    picture = timeline.svg(record)
    assert picture.startswith("<svg") and picture.count("<rect") == 5  # apply, the wait, two builds, the reused tick
    assert "waited 120 s for a lock" in picture and 'fill="none"' in picture and "#c0392b" in picture
    assert "make exited 2" in picture
    said = "\n".join(timeline.lines(record))
    assert "352 s in all" in said
    assert "base-x86_64          +2..+302 s, 300 s of stages, 120 s waiting for locks, 1 reused" in said
    assert "x86_64               +302..+352 s, 50 s of stages: build 50 s" in said
    assert "old" not in said


def test_the_timeline_chromium_lays_out_matches_results_json(tmp_path, monkeypatch):
    """The run page rendered by headless Chromium: every bar where results.json puts its stage."""
    from pipeline.report import dashboard, store
    from test_real_pipeline import timeline_in_a_browser

    Fakes(monkeypatch)
    run = new_run(tmp_path)
    assert run.run() == 0
    db = store.open_db(tmp_path / "k.db")
    store.ingest_tree(db, tmp_path)
    dashboard.build_site(db, tmp_path / "site")
    timeline_in_a_browser(tmp_path / "site" / "runs" / "r1" / "index.html", run.run_dir / "results.json")
