"""kseries tasks: thin wrappers over pipeline/ (run `invoke --list`)."""

from invoke import Exit, task

from pipeline import cli, setup as setup_mod


def _exit(code: int) -> None:
    if code:
        raise Exit(code=code)


@task(help={"quiet": "print only what is missing or changed",
            "image_cache": "directory of saved images: load from it instead of building, save what was built"})
def setup(c, quiet=False, image_cache=""):
    """Install and start what kseries needs (Docker engine, debootstrap); idempotent."""
    _exit(cli.guarded(setup_mod.ensure, quiet=quiet, image_cache=image_cache))


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
    from pipeline.intake import Request

    return Request(msgid or "", lore_url or "", mbox or "", git or "", range or "", patchwork or "",
                   patchwork_url or "")


@task(iterable=["arch"], help={
    "series": "series name (configs/series/NAME.yaml): base, arches and tests; the patches too unless a source flag is given",
    "arch": "architecture or alias; repeatable (default: the series' arches)",
    "results": "results root directory (default: results)",
    **SOURCE_HELP,
})
def ci(c, series=None, arch=None, results="results", msgid=None, lore_url=None, mbox=None, git=None,
       range=None, patchwork=None, patchwork_url=None):
    """Build, boot and check a series on each architecture; write JUnit to results/latest."""
    request = _request(msgid, lore_url, mbox, git, range, patchwork, patchwork_url)
    _exit(cli.guarded(cli.ci, series, arch or None, results, request))


@task(help={"series": "series name (configs/series/NAME.yaml)", **SOURCE_HELP})
def series(c, series=None, msgid=None, lore_url=None, mbox=None, git=None, range=None, patchwork=None,
           patchwork_url=None):
    """Show a series without building: patches, trailers, diffstat, base and sources."""
    request = _request(msgid, lore_url, mbox, git, range, patchwork, patchwork_url)
    _exit(cli.guarded(cli.show_series, series, request))


@task(help={"fast": "unit tests only (skip the real Docker/QEMU tier)", "k": "pytest -k expression"})
def test(c, fast=False, k=""):
    """Run the test suite (unit tests plus the real tier: git, Docker, make, QEMU)."""
    args = ["-m", "not real"] if fast else []
    if k:
        args += ["-k", k]
    c.run("python3 -m pytest -v -rs " + " ".join(f"'{a}'" for a in args), pty=False)


@task(help={"arch": "architecture (default x86_64)", "series": "series name"})
def bench(c, arch="x86_64", series="page_mapped"):
    """Measure kernel build times: from scratch (empty O= and ccache) and with nothing changed."""
    c.run(f"python3 -m ci.bench --arch {arch} --series {series}", pty=False)


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


@task(iterable=["merge"], help={
    "merge": "a run directory, results root or JUnit file to merge; repeatable",
    "output": "merged JUnit file (default: merged-junit.xml)",
})
def report(c, merge=None, output="merged-junit.xml"):
    """Merge the JUnit XML of several runs or CI jobs into one file."""
    _exit(cli.guarded(cli.merge_reports, merge or [], output))


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


@task(help={"results": "results root (default: results)", "markdown": "write Markdown (for a CI job summary)"})
def summary(c, results="results", markdown=False):
    """Print the verdict of every run under a results root (Markdown with --markdown)."""
    _exit(cli.guarded(cli.summary, results, markdown))
