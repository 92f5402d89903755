"""The benchmark's report (ci/bench_report.py): ratios against their targets, per-stage seconds."""

import json

from ci import bench, bench_report


def scenario(tmp_path, label, seconds, stages, arches=("x86_64",)):
    run_dir = tmp_path / label.replace(" ", "-")
    run_dir.mkdir()
    (run_dir / "results.json").write_text(json.dumps({"arches": list(arches), "stages": stages}))
    return bench.Scenario(label, seconds, run_dir, 0)


def stage(name, seconds, role="series", reused="", facts=None, status="PASS"):
    return {"stage": name, "role": role, "seconds": seconds, "reused": reused, "facts": facts or {},
            "status": status}


def test_ratios_meet_or_miss_their_targets_and_stage_seconds_count_only_work_done(tmp_path):
    taken = "lane cache k, run r"
    warm = scenario(tmp_path, "warm rerun", 20, [stage("build", 56, reused=taken), stage("boot", 20, reused=taken),
                                                 stage("apply", 1.0)])
    v2 = scenario(tmp_path, "reworded v2", 25, [stage("build", 56, reused=taken), stage("apply", 1.2)])
    new = scenario(tmp_path, "new arena.c series", 100, [
        stage("steps", 0, facts={"built": 0}), stage("build", 40), stage("boot", 30), stage("boot-retry", 0,
                                                                                             status="SKIP"),
        stage("build", 0, role="base", reused=taken), stage("boot", 22, role="base", reused=taken)])
    text = bench_report.render([warm, v2, new], (90.0, 7), "x86_64")
    assert "| reworded v2 / warm rerun | 1.25 | <= 1.1 | **not met** | 25 s / 20 s |" in text
    assert "| pipeline / by hand (the new arena.c series) | 1.11 | <= 1.05 | **not met** |" in text
    assert "| builds per arch (new arena.c series) | 1.00 | <= 1 | met | 1 make run(s), 1 boot(s) on 1 arch(es) |" \
        in text
    assert "| build | 0.0 | 0.0 | 40.0 |" in text  # taken over: it cost nothing in that run
    assert "| base boot |" not in text  # cost nothing anywhere: no row
    assert new.builds() == 1 and new.boots() == 1 and warm.builds() == 0
    again = bench_report.render([warm, v2, new], (90.0, 7), "x86_64", previous=text.replace("1.25", "3.00"))
    before = again.split("## The bench before this one")[1]
    assert "| reworded v2 / warm rerun | 3.00 | <= 1.1 | **not met** | 25 s / 20 s |" in before
    assert "### Scenarios" in before and "| new arena.c series | 100 |" in before  # its tables, not just ratios
    assert "### Seconds per stage" in before and "| build | 0.0 | 0.0 | 40.0 |" in before
    assert "## The bench before this one" not in before  # one earlier run, not the whole history


def test_a_cold_run_on_several_arches_passes_each(tmp_path, monkeypatch):
    seen = []

    def run(argv, **kw):
        seen.append(argv)
        results = tmp_path / "results" / "cold-x86_64-arm64-sh4"
        (results / "r").mkdir(parents=True)
        (results / "r" / "results.json").write_text(json.dumps({"arches": [], "stages": []}))
        (results / "latest").symlink_to("r")
        return type("Done", (), {"returncode": 0})()

    monkeypatch.setattr(bench.subprocess, "run", run)
    monkeypatch.setattr(bench, "quiet", lambda: None)
    bench.ci("cold x86_64,arm64,sh4", tmp_path, "page_mapped", "x86_64,arm64,sh4")
    argv = seen[0]
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--arch"] == ["x86_64", "arm64", "sh4"]
