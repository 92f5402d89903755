"""kseries tasks: thin wrappers over pipeline/ (run `invoke --list`)."""

from invoke import Exit, task

from pipeline import cli, setup as setup_mod


def _exit(code: int) -> None:
    if code:
        raise Exit(code=code)


@task(help={"quiet": "print only what is missing or changed"})
def setup(c, quiet=False):
    """Install and start what kseries needs (Docker engine, debootstrap); idempotent."""
    _exit(cli.guarded(setup_mod.ensure, quiet=quiet))


@task(iterable=["arch"], help={
    "series": "series name (configs/series/NAME.yaml)",
    "arch": "architecture or alias; repeatable (default: the series' arches)",
    "results": "results root directory (default: results)",
})
def ci(c, series, arch=None, results="results"):
    """Build, boot and check a series on each architecture; write JUnit to results/latest."""
    _exit(cli.guarded(cli.ci, series, arch or None, results))


@task(help={"series": "series name (configs/series/NAME.yaml)"})
def series(c, series):
    """Show a series without building: patches, diffstat, base and sources."""
    _exit(cli.guarded(cli.show_series, series))


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
