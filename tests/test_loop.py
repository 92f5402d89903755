"""The run loop and its one error policy, on the real graph with fake stage bodies (fast).

An exception in any stage is that stage's result (MISS for a bug, ERROR for the machine);
its dependents are SKIP with the reason; results.json, junit.xml and summary.txt are
written and the exit code is defined. An interrupted run resumes: finished stages with
the same inputs are reused, the rest run.
"""

import dataclasses
import io
import shutil

import pytest
from junitparser import JUnitXml

from pipeline.infra.errors import InfraError
from pipeline.infra.progress import Progress
from pipeline.model import config
from pipeline.model.lane import Role
from pipeline.model.results import Case, RunRecord, Status
from pipeline.model.series import load_patch_dir
from pipeline.run import graph, loop
from pipeline.run.pipeline import Run
from pipeline.stages.interface import Outcome

SPEC = config.load_series("page_mapped")
ARCHES = [config.resolve_arch("x86_64"), config.resolve_arch("sh4")]


class Fakes:
    """Stage bodies that record their calls; one of them can be made to raise."""

    def __init__(self, monkeypatch, raise_in=None, exc=None):
        self.calls, self.raise_in, self.exc = [], raise_in, exc
        nodes = tuple(dataclasses.replace(n, run=self.body(n.name), key=(lambda w: "same") if n.key else None)
                      for n in graph.GRAPH)
        monkeypatch.setattr(loop, "GRAPH", nodes)

    def body(self, name):
        def run(work):
            where = (name, work.lane.name if work.lane else "", work.suite.name if work.suite else "")
            self.calls.append(where)
            if self.raise_in and all(a == b for a, b in zip(self.raise_in, where) if a is not None):
                raise self.exc
            return Outcome(Status.PASS, "fine", [Case(name, "works", Status.PASS)], artifacts={"made": "yes", "commit": "0123abcd"})
        return run


def new_run(tmp_path) -> Run:
    kept = tmp_path / "r1" / "series" / "patches"
    shutil.copytree(SPEC.patch_dir, kept)
    series = load_patch_dir(kept, SPEC.title, "offline")
    record = RunRecord("r1", SPEC.name, SPEC.title, [a.name for a in ARCHES], "now")
    return Run(SPEC, ARCHES, tmp_path / "r1", record, series.patches, Progress(io.StringIO()))


def dependents(name: str) -> set[str]:
    """The stages a MISS of `name` blocks: those whose need of it does not accept MISS, and
    (a blocked stage blocks everything after it) whatever needs one of those."""
    blocked, grew = set(), True
    while grew:
        grew = False
        for node in graph.GRAPH:
            if node.name in blocked:
                continue
            if any((n.stage == name and Status.MISS not in n.ok) or n.stage in blocked for n in node.needs):
                blocked.add(node.name)
                grew = True
    return blocked


@pytest.mark.parametrize("stage", [n.name for n in graph.GRAPH])
def test_an_exception_in_any_stage_is_that_stage_s_result(stage, tmp_path, monkeypatch, capsys):
    lane = None if graph.node(stage).scope in ("shared", "final") else ("base-x86_64" if stage in ("reuse", "checkout")
                                                            else "x86_64")
    Fakes(monkeypatch, (stage, lane, None), KeyError("injected"))
    run = new_run(tmp_path)
    code = run.run()
    assert code == 3
    record = RunRecord.load(run.run_dir / "results.json")
    broken = [s for s in record.stages if s.stage == stage and s.status == Status.MISS]
    assert broken and all(s.fault == "harness" for s in broken)
    assert "kseries itself failed in stage " + stage in broken[0].message and "KeyError" in broken[0].message
    assert "Traceback" in (run.run_dir / "logs" / "errors.log").read_text()
    lane_of = {(s.arch, s.role) for s in broken}
    for s in record.stages:  # everything after it in the same lane (or everywhere, for a shared stage)
        if s.stage in dependents(stage) and (stage in ("source", "apply") or (s.arch, s.role) in lane_of):
            assert s.status == Status.SKIP and s.blocked and s.message, (s.stage, s.status, s.message)
    xml = JUnitXml.fromfile(str(run.run_dir / "junit.xml"))
    assert any(c.result and c.result[0].type == "MISS" for suite in xml for c in suite)
    summary = (run.run_dir / "summary.txt").read_text()
    assert "VERDICT: ERROR (kseries itself failed, not the series)" in summary
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err


def test_an_infrastructure_error_is_error_not_miss(tmp_path, monkeypatch):
    Fakes(monkeypatch, ("boot", "sh4", None), InfraError("QEMU died"))
    run = new_run(tmp_path)
    assert run.run() == 3
    boot = run.record.find("boot", "sh4", Role.SERIES)
    assert boot.status == Status.ERROR and boot.fault == "infra" and boot.message == "QEMU died"
    assert run.record.find("check", "sh4", Role.SERIES).message == "the sh4 kernel did not run (boot ERROR)"
    assert run.record.find("boot", "x86_64", Role.SERIES).status == Status.PASS  # other lanes still ran
    assert "VERDICT: ERROR (infrastructure, not the series) - QEMU died" in (run.run_dir / "summary.txt").read_text()


def test_interrupted_run_resumes_without_redoing_finished_lanes(tmp_path, monkeypatch):
    fakes = Fakes(monkeypatch, ("build", "sh4", None), KeyboardInterrupt())
    run = new_run(tmp_path)
    assert run.run() == 130
    first = RunRecord.load(run.run_dir / "results.json")
    assert first.interrupted and first.exit_code == 130 and "--resume" in first.verdict
    assert first.find("build", "sh4", Role.SERIES).fault == "interrupted"
    assert first.find("boot", "sh4", Role.SERIES).message.startswith("not run: the run was interrupted")
    done_before = {c for c in fakes.calls}

    fakes = Fakes(monkeypatch)
    again = Run.resume(run.run_dir, Progress(io.StringIO()))
    assert again.run() == 0
    rerun = set(fakes.calls)
    always = ("source", "apply", "derive", "reuse", "checkout", "steps", "per-patch")  # cheap: no key, always run
    assert [c for c in rerun if c[1] in ("x86_64", "base-x86_64") and c[0] not in always] == []
    assert ("build", "sh4", "") in rerun and ("boot", "sh4", "") in rerun
    second = RunRecord.load(run.run_dir / "results.json")
    assert second.find("boot", "x86_64", Role.SERIES).reused == "an earlier attempt of this run"
    assert second.find("build", "sh4", Role.SERIES).reused == ""
    assert not second.interrupted and second.exit_code == 0
    assert done_before  # the first attempt did run stages


def test_a_changed_input_is_not_reused(tmp_path, monkeypatch):
    Fakes(monkeypatch)
    run = new_run(tmp_path)
    assert run.run() == 0
    nodes = tuple(dataclasses.replace(n, key=(lambda w: "changed") if n.name == "userspace" else n.key)
                  for n in loop.GRAPH)
    monkeypatch.setattr(loop, "GRAPH", nodes)
    again = Run.resume(run.run_dir, Progress(io.StringIO()))
    assert again.run() == 0
    rec = again.record
    assert rec.find("build", "x86_64", Role.SERIES).reused
    assert not rec.find("userspace", "x86_64", Role.SERIES).reused  # its key changed
    assert not rec.find("boot", "x86_64", Role.SERIES).reused  # and so did everything after it


def test_sigterm_is_a_clean_interruption_with_its_own_exit_code(tmp_path, monkeypatch):
    from pipeline.infra.errors import Terminated

    Fakes(monkeypatch, ("boot", "x86_64", None), Terminated())
    run = new_run(tmp_path)
    assert run.run() == 143
    record = RunRecord.load(run.run_dir / "results.json")
    assert record.interrupted == "SIGTERM" and "interrupted by SIGTERM" in record.verdict
    assert "SIGTERM" in record.find("boot", "x86_64", Role.SERIES).message
    assert (run.run_dir / "junit.xml").exists() and (run.run_dir / "summary.txt").exists()


def test_a_half_written_step_record_is_redone_not_trusted(tmp_path):
    from pipeline.stages.per_patch import _record

    good, half = tmp_path / "good.json", tmp_path / "half.json"
    good.write_text('{"index": 1, "total": 2, "subject": "x", "status": "PASS", "seconds": 1, "message": ""}')
    half.write_text('{"index": 1, "total": 2, "sub')
    assert _record(good)["status"] == "PASS" and _record(half) is None and _record(tmp_path / "none") is None


def test_a_truncated_base_cache_entry_is_rebuilt_not_trusted(tmp_path):
    from pipeline.run import reuse

    path = reuse.cache_path(tmp_path, "k1")
    path.parent.mkdir(parents=True)
    path.write_text('{"run_id": "r", "stages": [{"stage": "build", "ar')
    assert reuse.load(tmp_path, "k1") is None


def test_each_arch_s_verdict_is_said_when_its_lanes_are_done(tmp_path, monkeypatch):
    Fakes(monkeypatch)
    run = new_run(tmp_path)
    assert run.run() == 0
    said = run.ctx.progress.stream.getvalue().splitlines()
    early = [i for i, line in enumerate(said) if "] verdict " in line]
    assert [said[i].split()[2] for i in early] == ["x86_64", "sh4"], said
    assert all("(this arch; the run's verdict follows)" in said[i] for i in early)
    sh4_suites = [i for i, line in enumerate(said) if line.split()[1:2] == ["suite"] and line.split()[3] == "sh4"]
    assert sh4_suites and early[0] < min(sh4_suites)  # one guest thread: x86_64's verdict before sh4 is tested


def test_what_a_reaped_make_wrote_is_scrubbed_before_anything_builds(tmp_path):
    """A killed run left its make running; the next run kills it and removes what it wrote since it
    started (objects and kbuild records, any of them maybe cut short) in each O= it could write."""
    import os
    import time
    from types import SimpleNamespace

    from pipeline.infra.owners import Reaped

    out, other = tmp_path / "out", tmp_path / "not-an-O="
    (out / "fs").mkdir(parents=True)
    other.mkdir()
    (out / ".config").write_text("CONFIG_MMU=y\n")
    old = out / "fs" / "namespace.o"
    old.write_text("complete")
    os.utime(old, (1000, 1000))
    started = time.time()
    cut = out / "fs" / ".namespace.o.cmd"
    cut.write_text("savedcmd_fs/namespace.o := gcc $(wildcard")
    (other / "kept.o").write_text("x")
    run = new_run(tmp_path)
    run.ctx._docker = SimpleNamespace(reaped=[Reaped("kseries-make", (str(out), str(other)), started)])
    run.reap()
    assert not cut.exists() and old.exists()
    assert (other / "kept.o").exists()  # no .config: not a build directory, left alone
    assert "stopped 1 container(s) a killed kseries run left running: kseries-make" in \
        run.ctx.progress.stream.getvalue()


def test_the_tip_is_built_booted_and_tested_before_the_intermediate_steps_are_built(tmp_path, monkeypatch):
    fakes = Fakes(monkeypatch)
    assert new_run(tmp_path).run() == 0
    for arch in ("x86_64", "sh4"):
        order = [name for name, lane, _ in fakes.calls if lane == arch]
        assert order.index("build") < order.index("boot") < order.index("steps") < order.index("per-patch")
        assert max(i for i, name in enumerate(order) if name == "suite") < order.index("steps")
        assert order.index("steps") < order.index("bisect")


def test_checkpatch_and_symbols_run_beside_the_lanes_and_the_run_ends_after_them(tmp_path, monkeypatch):
    import threading

    fakes = Fakes(monkeypatch)
    built = threading.Event()
    plain = fakes.body("build")

    def build(work):
        built.set()
        return plain(work)

    def checkpatch(work):  # still running when the first lane builds: only so if it runs beside them
        seen = built.wait(10)
        fakes.calls.append(("checkpatch ended", "", "saw a build" if seen else "saw none"))
        return Outcome(Status.PASS, "fine", [Case("checkpatch", "works", Status.PASS)])

    monkeypatch.setattr(loop, "GRAPH", tuple(
        dataclasses.replace(n, run=build if n.name == "build" else checkpatch if n.name == "checkpatch" else n.run)
        for n in loop.GRAPH))
    assert new_run(tmp_path).run() == 0
    names = [name for name, _, _ in fakes.calls]
    assert ("checkpatch ended", "", "saw a build") in fakes.calls
    assert names.index("checkpatch ended") < names.index("coverage")  # the final stages wait for it
