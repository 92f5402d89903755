"""kseries tasks: thin wrappers over pipeline/ (run `invoke --list`)."""

import shlex

from invoke import Exit, task

from pipeline import cli
from pipeline.infra import host as setup_mod


def _exit(code: int) -> None:
    if code:
        raise Exit(code=code)


@task(help={"quiet": "print only what is missing or changed",
            "image_cache": "directory of saved images: load from it instead of building, save what was built",
            "test": "also install what the test suite needs (cpio, chromium)"})
def setup(c, quiet=False, image_cache="", test=False):
    """Install and start what kseries needs (Docker engine, debootstrap, images); idempotent."""
    _exit(cli.guarded(setup_mod.ensure, quiet=quiet, image_cache=image_cache, test=test))


SOURCE_HELP = {
    "msgid": "take the patches from this lore thread (message-id of any mail in it)",
    "lore_url": "lore / public-inbox base URL for --msgid (default: the series' or lore.kernel.org/all)",
    "mbox": "take the patches from an mbox, .mbox.gz, maildir or directory of .patch files",
    "git": "take the patches from this git repository's --range",
    "range": "BASE..TIP with --git: the commits after BASE up to TIP are the series",
    "patchwork": "take the patches from this patchwork series id (with --patchwork-url)",
    "patchwork_url": "patchwork instance, e.g. https://patchwork.kernel.org",
}


def _request(msgid, lore_url, mbox, git, range, patchwork, patchwork_url):
    from pipeline.intake.sources import Request

    return Request(msgid or "", lore_url or "", mbox or "", git or "", range or "", patchwork or "",
                   patchwork_url or "")


@task(iterable=["arch"], optional=["resume"], help={
    "series": "series name (configs/series/NAME.yaml): base, arches and tests; the patches too unless a source flag is given",
    "arch": "architecture or alias; repeatable (default: the series' arches)",
    "results": "results root directory (default: results)",
    "resume": "complete an interrupted or partly failed run (RUN_DIR, or alone: the latest run [of --series]), "
              "rerunning only stages that did not finish or whose inputs changed",
    "verbose": "end with every testcase (else: the stages, what did not pass, the verdict)",
    "derive": "enable in a derived config fragment what the changed files need to be compiled "
              "(default; --no-derive: the configs as the YAML has them)",
    "rerun_tests": "build, boot and test the series' lanes afresh even when their tree, config, images and "
                   "suites were tested before (default: take those results over); a flakiness check",
    **SOURCE_HELP,
})
def ci(c, series=None, arch=None, results="results", resume=None, verbose=False, derive=True, rerun_tests=False,
       msgid=None, lore_url=None, mbox=None, git=None, range=None, patchwork=None, patchwork_url=None):
    """Build, boot and check a series on each architecture; write JUnit to results/latest."""
    request = _request(msgid, lore_url, mbox, git, range, patchwork, patchwork_url)
    _exit(cli.guarded(cli.ci, series, arch or None, results, request, resume or "", verbose, derive,
                      rerun_tests))


@task(help={"series": "series name (configs/series/NAME.yaml)", **SOURCE_HELP})
def series(c, series=None, msgid=None, lore_url=None, mbox=None, git=None, range=None, patchwork=None,
           patchwork_url=None):
    """Show a series without building: patches, trailers, diffstat, base and sources."""
    request = _request(msgid, lore_url, mbox, git, range, patchwork, patchwork_url)
    _exit(cli.guarded(cli.show_series, series, request))


@task(help={"fast": "unit tests only (skip the real Docker/QEMU tier)", "k": "pytest -k expression"})
def test(c, fast=False, k=""):
    """Run the test suite (unit tests plus the real tier: git, Docker, make, QEMU)."""
    _exit(cli.guarded(setup_mod.ensure_test_tools, quiet=True))
    args = ["-m", "not real"] if fast else []
    if k:
        args += ["-k", k]
    c.run("python3 -m pytest -v -rs " + " ".join(f"'{a}'" for a in args), pty=False)


@task(help={"arch": "architecture (default x86_64)", "cold": "also a run from an empty cache (long: a full build)",
            "before": "with --cold: first the same cold run as kseries COMMIT ran it, back to back (before/after)",
            "cold_arches": "the cold runs' arches, comma-separated (default: --arch), e.g. x86_64,arm64,sh4"})
def bench(c, arch="x86_64", cold=False, before="", cold_arches=""):
    """Time to verdict as ratios (warm rerun, reworded v2, a new series, by hand): writes docs/PERFORMANCE.md."""
    c.run(f"python3 -m ci.bench --arch {arch}" + (" --cold" if cold else "")
          + (f" --before {shlex.quote(before)}" if before else "")
          + (f" --cold-arches {shlex.quote(cold_arches)}" if cold_arches else ""), pty=False)


@task
def reliability(c):
    """docs/RELIABILITY.md from the faults and hostile patches the real tier tried (run `invoke test` first)."""
    c.run("python3 -m ci.reliability", pty=False)


@task(iterable=["junit"], help={
    "results": "results root whose runs are ingested (default: results)",
    "db": "SQLite results store (default: RESULTS/kseries.db)",
    "output": "where the site is written (default: RESULTS/dashboard)",
    "junit": "also ingest this JUnit file (another tool's results); repeatable",
    "serve": "serve the site on localhost after building it",
    "port": "port for --serve (default 8000)",
})
def dashboard(c, results="results", db="", output="", junit=None, serve=False, port=8000):
    """Build the static HTML dashboard from the results store (ingests the runs first)."""
    _exit(cli.guarded(cli.dashboard, results, db, output, junit or [], serve, port))


@task(iterable=["merge"], optional=["email"], help={
    "merge": "a run directory, results root or JUnit file to merge; repeatable",
    "output": "merged JUnit file (default: merged-junit.xml); with --email, the mail file (default: RUN_DIR/reply.eml)",
    "email": "write the run's report as a reply mail to the series' thread (RUN_DIR, or alone: results/latest)",
    "send": "with --email: deliver it over SMTP (KSERIES_SMTP_HOST, _PORT, _TLS, _USER, _PASSWORD)",
    "logs_url": "where the run directories are published (e.g. the dashboard), for links in the mail",
    "results": "results root for --email alone (default: results)",
    "patchwork": "post one check per patch and arch to this patchwork instance (token: KSERIES_PATCHWORK_TOKEN)",
    "run": "the run directory for --patchwork (default: RESULTS/latest)",
})
def report(c, merge=None, output="", email=None, send=False, logs_url="", results="results", patchwork="",
           run=""):
    """Merge the JUnit of several runs (--merge), write/send a run's reply mail (--email), or post
    its patchwork checks (--patchwork URL)."""
    if patchwork:
        _exit(cli.guarded(cli.patchwork_checks, patchwork, run or True, results, logs_url))
    elif email:
        _exit(cli.guarded(cli.reply_mail, email, results, output, send, logs_url))
    else:
        _exit(cli.guarded(cli.merge_reports, merge or [], output or "merged-junit.xml"))


@task(iterable=["arch"], help={
    "series": "series name (configs/series/NAME.yaml)",
    "arch": "architecture or alias; repeatable (default: the series' arches)",
    **SOURCE_HELP,
})
def plan(c, series=None, arch=None, msgid=None, lore_url=None, mbox=None, git=None, range=None,
         patchwork=None, patchwork_url=None):
    """Resolve a series and print its arch matrix as JSON (and to $GITHUB_OUTPUT when set)."""
    request = _request(msgid, lore_url, mbox, git, range, patchwork, patchwork_url)
    _exit(cli.guarded(cli.plan, series, arch or None, request))


@task(help={"results": "results root (default: results)", "markdown": "write Markdown (for a CI job summary)",
            "annotate": "also print GitHub Actions ::error/::warning lines for what failed"})
def summary(c, results="results", markdown=False, annotate=False):
    """Print the verdict of every run under a results root (Markdown with --markdown)."""
    _exit(cli.guarded(cli.summary, results, markdown, annotate))
