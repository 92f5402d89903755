"""Entry points behind tasks.py: each returns an exit code; user and
infrastructure errors become one paragraph on stderr, never a traceback -
not even for a bug in kseries itself (its traceback goes to a file)."""

from __future__ import annotations

import dataclasses
import subprocess

import sys
import tempfile
import textwrap
import traceback
from pathlib import Path

from pipeline.infra import paths
from pipeline.infra.errors import DISK_ERRORS, EXIT_INFRA, EXIT_INTERRUPTED, KseriesError, UserError, disk_message
from pipeline.intake import sources as intake
from pipeline.run import pipeline


def guarded(fn, *args, **kw) -> int:
    try:
        return fn(*args, **kw)
    except KseriesError as exc:
        say(f"kseries: {exc.kind}: {exc.message}")
        return exc.exit_code
    except KeyboardInterrupt:
        say("kseries: interrupted before the run started; nothing was kept.")
        return EXIT_INTERRUPTED
    except OSError as exc:
        if exc.errno not in DISK_ERRORS:
            return crashed(exc)
        say(f"kseries: infrastructure error: {disk_message(exc)}")
        return EXIT_INFRA
    except Exception as exc:  # noqa: BLE001
        return crashed(exc)


def crashed(exc: BaseException) -> int:
    """A bug in kseries: one paragraph, the traceback to a file."""
    crash = Path(tempfile.mkstemp(prefix="kseries-crash-", suffix=".log")[1])
    crash.write_text(traceback.format_exc())
    say(f"kseries: internal error: {type(exc).__name__}: {exc}. This is a bug in kseries, not in your "
        f"input or the series; the traceback is in {crash}. Please report it with that file.")
    return EXIT_INFRA


def say(text: str) -> None:
    print(textwrap.fill(text, width=100, break_on_hyphens=False, break_long_words=False), file=sys.stderr)  # a path stays whole


def ci(series: str | None, arches: list[str] | None, results: str = "results",
       request: intake.Request | None = None, resume: str | bool = "", verbose: bool = False,
       derive: bool = True, rerun_tests: bool = False) -> int:
    if resume:
        if arches or (request and request.given):
            raise UserError("--resume completes an earlier run with its own patches and arches: pass no "
                            "--arch and no patch source with it (only --series, or the run directory).")
        root = Path(results).resolve()
        run_dir = Path(resume).resolve() if isinstance(resume, str) else pipeline.latest_run(root, series)
        if not (run_dir / "results.json").is_file():
            raise UserError(f"--resume {resume}: {run_dir} is not a kseries run directory (no results.json). "
                            "Pass a directory under results/, or --resume alone for the latest run.")
        paths.output_dir(str(run_dir), "--resume", "A run is completed in its own directory: make it writable.")
        run = pipeline.Run.resume(run_dir)
        run.ctx.progress.say("run", "", f"resuming {run_dir.name}: finished stages are reused")
    else:
        paths.output_dir(results, "--results", RESULTS_FIX)
        spec, arch_list, got = pipeline.plan(series, arches, request)
        spec = dataclasses.replace(spec, derive=spec.derive and derive, rerun_tests=rerun_tests)
        run = pipeline.Run.create(spec, arch_list, Path(results).resolve(), got)
    code = run.run()
    from pipeline.report import summary as summary_text

    print()
    print((run.run_dir / "summary.txt").read_text() if verbose else summary_text.terminal(run.record, run.run_dir),
          end="")
    print(f"JUnit: {run.run_dir / 'junit.xml'}  (results/latest -> {run.run_dir.name})")
    return code


RESULTS_FIX = "Pass --results a directory you can write to (it is made if missing), e.g. --results results."


def chosen_tests(spec, got) -> list[str]:
    """The tests the tree holds for the series' changed files, from the cached base (if it is)."""
    from pipeline.infra.context import cache_root
    from pipeline.stages import tests

    repo = cache_root() / "git" / "linux.git"
    commit = ""
    for candidate in (spec.base.commit, got.base_commit):
        for ref in (candidate, f"refs/kseries/standin/{candidate}"):
            if candidate and not commit and repo.is_dir() and subprocess.run(
                    ["git", "-C", str(repo), "cat-file", "-e", f"{ref}^{{commit}}"], capture_output=True).returncode == 0:
                commit = ref
    patches = got.parsed.series.patches
    paths = tests.changed(patches)
    return tests.preview(spec, [Path(p.path).read_text(errors="replace") for p in patches], paths, repo, commit,
                         cache_root())


def show_series(series: str | None, request: intake.Request | None = None) -> int:
    """The series as kseries would test it: patches, trailers, diffstat, base and sources."""
    spec, _, got = pipeline.plan(series, None, request, need_base=False)
    try:
        chosen = chosen_tests(spec, got)
    finally:
        got.discard()
    print(intake.describe(got), end="")
    print()
    print(f"series: {spec.name}   arches: {', '.join(spec.arches)}   tests: {', '.join(spec.tests)}")
    for what, why in (got.chosen or {}).items():
        print(f"  {what}: {why}")
    off = spec.base.offline
    print(f"base: git {spec.base.git_url} at {spec.base.commit[:12] or '(unknown: no base-commit: trailer)'}" + (
        f", else Debian {off.package} ({off.suite})"
        + (f" with the patches in {off.reverse_patches} reverse-applied" if off.reverse_patches else "")
        if off else ""))
    if not (request and request.given):
        print(f"patches: lore {spec.lore_url}/{spec.message_id}/t.mbox.gz, else the offline copy {spec.patch_dir}")
    print("\n".join(chosen))
    return 0


def dashboard(results: str, db_path: str, output: str, junit: list[str], serve: bool, port: int) -> int:
    """Ingest every run under results (and any JUnit files) into the store, then build the site."""
    from pipeline.report import dashboard as site, store

    root = paths.input_dir(results, "--results", "Pass the results root that 'invoke ci --results' wrote.")
    for path in junit:
        paths.input_file(path, "--junit", "Pass a JUnit XML report.")
    if not _runs(root, results) and not junit:
        raise UserError(f"--results {results} holds no kseries run (no */results.json), so the dashboard "
                        "would be empty. Pass the results root that 'invoke ci --results' wrote, or a "
                        "JUnit file with --junit.")
    paths.output_file(db_path or str(root / "kseries.db"), "--db" if db_path else "--results")
    paths.output_dir(output or str(root / "dashboard"), "--output" if output else "--results")
    db = store.open_db(Path(db_path) if db_path else root / "kseries.db")
    ingested = store.ingest_tree(db, root)
    for path in junit:
        ingested.append(store.ingest_junit(db, Path(path)))
    out = Path(output) if output else root / "dashboard"
    index = site.build_site(db, out)
    print(f"{len(ingested)} run(s) ingested into {db_path or root / 'kseries.db'}")
    print(f"dashboard: {index.resolve()}")
    if serve:
        site.serve(out, port)
    return 0


def merge_reports(inputs: list[str], output: str) -> int:
    import glob

    from pipeline.report import junit as report

    found = [Path(p) for pattern in inputs for p in (sorted(glob.glob(pattern)) or [pattern])]
    if not found:
        raise UserError("--merge needs at least one run directory, results root or JUnit file.")
    for path in found:
        paths.input_file(str(path), "--merge", "Pass run directories, results roots or JUnit files.", dirs=True)
    paths.output_file(output, "--output")
    suites, tests = report.merge(found, Path(output))
    print(f"{output}: {suites} testsuite(s), {tests} testcase(s) from {len(paths)} file(s)")
    return 0


def plan(series: str | None, arches: list[str] | None, request: intake.Request | None = None) -> int:
    """The arch matrix of a series, for CI: {"series": ..., "arch": [...]} on stdout and,
    under GitHub Actions, as the step outputs 'matrix' and 'series'."""
    import json
    import os

    spec, arch_list, got = pipeline.plan(series, arches, request)
    got.discard()
    matrix = {"arch": [a.name for a in arch_list]}
    print(json.dumps({"series": spec.name, "title": spec.title, "patches": len(got.parsed.series.patches),
                      **matrix}))
    if os.environ.get("GITHUB_OUTPUT"):
        with open(os.environ["GITHUB_OUTPUT"], "a") as out:
            out.write(f"matrix={json.dumps(matrix)}\nseries={spec.name}\n")
    return 0


def summary(results: str, markdown: bool, annotate: bool = False) -> int:
    """Each run's verdict (the exit codes of the runs themselves carry pass/fail). annotate: also
    GitHub Actions workflow commands - ::error for what blames the series, ::warning for errors."""
    from pipeline.model.results import RunRecord
    from pipeline.report import store

    runs = _runs(paths.input_dir(results, "--results", "Pass the results root that 'invoke ci --results' wrote, "
                                 "or the downloaded artifacts."), results)
    if not runs:
        raise UserError(f"{results} holds no kseries run (no */results.json). Pass the results root "
                        "that 'invoke ci --results' wrote, or the downloaded artifacts.")
    if markdown:
        print("| run | arches | verdict |\n|---|---|---|")
    for run_dir in runs:
        try:
            record = RunRecord.load(run_dir / "results.json")
        except UserError as exc:
            print(f"{run_dir.name}: left out: {exc.message}")
            continue
        text = store.verdict(record)  # a run in progress says so
        if annotate:
            print("\n".join(annotations(record)))
        if markdown:
            mark = {0: "✅", 1: "❌", 2: "⚠️", 3: "⚠️"}.get(record.exit_code, "⚠️")
            print(f"| {record.run_id} | {', '.join(record.arches)} | {mark} {text} |")
        else:
            print(f"{record.run_id} [{', '.join(record.arches)}]: {text}")
    return 0


def annotations(record) -> list[str]:
    """GitHub workflow commands for a run: regressions and own failures as errors, ERROR/MISS as warnings."""
    from pipeline.run.policy import own_failures

    def esc(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")[:900]

    out = [f"::error title=regression {v.arch} {v.suite}::{esc(v.test + ': base ' + v.base + ' -> series ' + v.series)}"
           for v in record.verdicts if v.blamed]
    out += [f"::error title={c.role.tag(c.group)} {c.arch}::{esc(c.name + ': ' + c.message)}" for c in own_failures(record)]
    out += [f"::warning title={c.status.value} {c.role.tag(c.group)}::{esc(c.name + ': ' + c.message)}"
            for c in record.cases if c.status.broken]
    return out


def _runs(root: Path, results: str) -> list[Path]:
    """The run directories under a results root; one that cannot be listed is the user's to fix."""
    from pipeline.report import store

    try:
        return store.run_dirs(root)
    except OSError as exc:
        raise UserError(f"--results {results}: {exc.filename or root} cannot be read ({exc.strerror}). Pass the "
                        "results root that 'invoke ci --results' wrote.") from exc


def _run_dir(run: str | bool, results: str, flag: str) -> tuple[Path, object]:
    from pipeline.model.results import RunRecord

    run_dir = Path(run) if isinstance(run, str) else (Path(results) / "latest").resolve()
    if isinstance(run, str):
        paths.input_dir(run, flag, "Pass a run directory (results/<time>-<series>).")
    if not (run_dir / "results.json").is_file():
        raise UserError(f"{flag} {run if isinstance(run, str) else ''}: {run_dir} is not a kseries run directory "
                        "(no results.json). Pass a run directory, or --results ROOT whose 'latest' is one.")
    return run_dir, RunRecord.load(run_dir / "results.json")


def patchwork_checks(url: str, run: str | bool, results: str, logs_url: str) -> int:
    from pipeline.report import patchwork

    run_dir, record = _run_dir(run, results, "--run")
    target = f"{logs_url.rstrip('/')}/{record.run_id}/summary.txt" if logs_url else ""
    for line in patchwork.post(record, run_dir, url, target):
        print(line)
    return 0


def reply_mail(run: str | bool, results: str, output: str, send: bool, logs_url: str) -> int:
    """The run's report as a reply to its thread: written to a file, and sent with --send."""
    from pipeline.report import reply

    run_dir, record = _run_dir(run, results, "--email")
    path = paths.output_file(output or str(run_dir / "reply.eml"), "--output" if output else "--email")
    msg = reply.compose(record, run_dir, logs_url=logs_url)
    path.write_bytes(msg.as_bytes())
    print(msg.as_string())
    print(f"written to {path}")
    if send:
        print(reply.send(msg))
    return 0
