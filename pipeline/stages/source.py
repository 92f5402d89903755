"""Stage 'source': the base tree at the series' base commit, in a cached git repo.

Upstream first: the base commit is fetched from the series' git URL. When that
is unreachable and the series YAML names an offline stand-in, Debian's kernel
source package is downloaded (in a container), imported into the cached repo
once, and - when the package already carries the series - the series is
reverse-applied to recreate the base. Forward application is then checked to
give back the package's tree exactly. Provenance records which source stood in
for what.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.model import config
from pipeline.infra.containers import Container, Mount
from pipeline.infra import locks, prune
from pipeline.infra.context import Context
from pipeline.infra.errors import InfraError, UserError
from pipeline.model.lane import base_tree
from pipeline.model.series import load_patch_dir
from pipeline.model.results import Status
from pipeline.stages.interface import Outcome, Work


@dataclass
class BaseTree:
    repo: Path
    commit: str  # local commit holding the base
    provenance: dict


def repo_path(ctx: Context) -> Path:
    repo = ctx.cache / "git" / "linux.git"
    if not (repo / "HEAD").exists():
        repo.mkdir(parents=True, exist_ok=True)
        ctx.runner.git(repo, "init", "--bare", "-q")
    return repo


def _ref(ctx: Context, repo: Path, ref: str) -> str | None:
    done = ctx.runner.git(repo, "rev-parse", "-q", "--verify", f"{ref}^{{commit}}", check=False)
    return done.output.strip() if done.returncode == 0 else None


def ensure_base(ctx: Context, spec: config.SeriesConfig) -> BaseTree:
    """The base commit in the shared git store: there already, fetched, or an offline stand-in
    imported. Concurrent runs take turns (a fetch or an import is not safe twice at once)."""
    with locks.hold(ctx.cache, "git-store", lambda text: ctx.progress.say("source", "", text), ctx.run_dir.name):
        return _ensure_base(ctx, spec)


def _ensure_base(ctx: Context, spec: config.SeriesConfig) -> BaseTree:
    repo = repo_path(ctx)
    log = ctx.log("source.log")
    want = spec.base.commit
    if _ref(ctx, repo, want):
        return BaseTree(repo, want, {"base": f"upstream commit {want} ({spec.base.git_url})"})
    standin_ref = f"refs/kseries/standin/{want}"
    if (commit := _ref(ctx, repo, standin_ref)):
        prov = _read_note(ctx, repo, commit)
        return BaseTree(repo, commit, prov)
    ctx.progress.say("source", "", f"fetching base {want[:12]} from {spec.base.git_url}")
    fetched = ctx.runner.git(
        repo, "fetch", "--depth=1", spec.base.git_url, want, log=log, check=False, timeout=1800
    )
    if fetched.returncode == 0 and _ref(ctx, repo, want):
        return BaseTree(repo, want, {"base": f"upstream commit {want} ({spec.base.git_url})"})
    reason = (fetched.output.strip().splitlines() or ["no output"])[-1]
    if not spec.base.offline:
        raise InfraError(
            f"The base commit {want} could not be fetched from {spec.base.git_url} ({reason}) "
            f"and {spec.path} names no offline stand-in. Restore network access or add a "
            "'base: offline:' entry to the series YAML."
        )
    ctx.progress.say("source", "", f"upstream unreachable ({reason}); using the offline stand-in")
    return _offline_base(ctx, repo, spec, standin_ref, reason)


def _read_note(ctx: Context, repo: Path, commit: str) -> dict:
    body = ctx.runner.git(repo, "log", "-1", "--format=%b", commit).output
    prov = {}
    for line in body.splitlines():
        if ": " in line and line.startswith("kseries-"):
            key, value = line.split(": ", 1)
            prov[key.removeprefix("kseries-")] = value
    return prov


def _offline_base(ctx, repo, spec, standin_ref, reason) -> BaseTree:
    off = spec.base.offline
    deb = fetch_package(ctx, off)
    version = deb.name.split("_")[1].replace("%3a", ":")
    pkg_ref = f"refs/kseries/debian/{off.package}/{version.replace(':', '_')}"
    pkg_commit = _ref(ctx, repo, pkg_ref) or import_package(ctx, repo, deb, off.package, version, pkg_ref)
    provenance = {
        "base": f"stand-in for {spec.base.commit}: Debian {off.package} {version}"
        + (f" with the patches in {off.reverse_patches} reverse-applied" if off.reverse_patches else ""),
        "base-upstream-error": reason,
        "package": f"{off.package} {version} ({off.mirror} {off.suite})",
        "package-commit": pkg_commit,
    }
    if not off.reverse_patches:
        commit = pkg_commit
    else:
        carried = load_patch_dir((spec.path.parent / off.reverse_patches).resolve(), spec.title, "offline")
        pkg_tree = ctx.runner.git(repo, "rev-parse", f"{pkg_commit}^{{tree}}").output.strip()
        base_tree = apply_to_tree(ctx, repo, pkg_tree, [p.path for p in reversed(carried.patches)], reverse=True)
        back = apply_to_tree(ctx, repo, base_tree, [p.path for p in carried.patches])
        if back != pkg_tree:
            raise UserError(
                f"Applying the series forward onto the reconstructed base does not give back "
                f"{off.package} {version} (tree {back[:12]} != {pkg_tree[:12]}): the offline "
                f"patches in {off.reverse_patches} differ from what the package carries. Fix the patches."
            )
        provenance["verified"] = "forward application reproduces the package tree exactly"
        message = f"kseries base stand-in for {spec.base.commit}\n\n" + "".join(
            f"kseries-{k}: {v}\n" for k, v in provenance.items()
        )
        commit = ctx.runner.git(repo, "commit-tree", base_tree, "-p", pkg_commit, "-m", message).output.strip()
    ctx.runner.git(repo, "update-ref", standin_ref, commit)
    return BaseTree(repo, commit, provenance)


def apply_to_tree(ctx: Context, repo: Path, tree: str, patches: list[Path], reverse: bool = False) -> str:
    """Apply patches to a tree object without a checkout (a private index); return the new tree."""
    with tempfile.TemporaryDirectory(prefix="kseries-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        ctx.runner.git(repo, "read-tree", tree, env=env)
        for patch in patches:
            args = ["apply", "--cached"] + (["-R"] if reverse else []) + [str(patch)]
            done = ctx.runner.git(repo, *args, env=env, check=False, log=ctx.log("source.log"))
            if done.returncode:
                raise UserError(
                    f"The patch {patch} does not {'reverse-' if reverse else ''}apply to the "
                    f"offline base tree: {done.output.strip()[:300]}. The offline package does "
                    "not carry these patches as the YAML says; fix 'reverse_patches' or the patches."
                )
        return ctx.runner.git(repo, "write-tree", env=env).output.strip()


def last_error(log: Path) -> str:
    """The line of a container's log that says what went wrong (the last error, else the last line)."""
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()] if log.exists() else []
    errors = [ln for ln in lines if re.search(r"(?i)error|no space|denied|failed|cannot", ln)]
    return (errors or lines or ["no output"])[-1][:300]


def fetch_package(ctx: Context, off: config.OfflineBase) -> Path:
    """Download Debian's source package once (cached); trusted step, network allowed."""
    downloads = ctx.cache / "downloads"
    found = sorted(downloads.glob(f"{off.package}_*.deb"))
    if found:
        return found[-1]
    downloads.mkdir(parents=True, exist_ok=True)
    ctx.progress.say("source", "", f"downloading {off.package} from Debian {off.suite}")
    image = ctx.images.base(ctx.log("images.log"))
    uid, gid = os.getuid(), os.getgid()
    # Valid-Until off: mirrors of a rolling suite can lag the clock by days
    apt = (
        "-o Dir::Etc::SourceList=/tmp/k.list -o Dir::Etc::SourceParts=/nonexistent "
        "-o Acquire::Check-Valid-Until=false"
    )
    script = (
        "set -e; "
        f"echo {shlex.quote(f'deb {off.mirror} {off.suite} main')} > /tmp/k.list; "
        f"apt-get -q {apt} update; "
        f"cd /out && apt-get -q {apt} download {shlex.quote(off.package)}; "
        f"chown {uid}:{gid} /out/*.deb"
    )
    out = ctx.docker.run(Container(image, ["sh", "-c", script], mounts=[Mount(downloads, "/out", writable=True)],
                                   network=True, root=True), log=ctx.log("source.log"), timeout=1800)
    found = sorted(downloads.glob(f"{off.package}_*.deb"))
    if out.exit_code != 0 or not found:
        raise InfraError(
            f"Downloading the Debian package {off.package} ({off.suite}, {off.mirror}) failed "
            f"({last_error(ctx.log('source.log'))}); see {ctx.log('source.log')}. Check that Debian's archive is reachable, or "
            f"place the .deb in {downloads} yourself."
        )
    return found[-1]


def import_package(ctx: Context, repo: Path, deb: Path, package: str, version: str, ref: str) -> str:
    """Unpack the package's kernel tarball and commit it to the cached repo, once."""
    ctx.progress.say("source", "", f"importing {package} {version} into {repo}")
    start = time.monotonic()
    work = ctx.cache / "tmp" / f"import-{package}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    image = ctx.image("toolchain")
    script = (
        "set -e; dpkg-deb --fsys-tarfile /dl/deb | tar -xO --wildcards './usr/src/*.tar.xz' "
        "| tar -xJ -C /out"
    )
    out = ctx.docker.run(Container(image, ["sh", "-c", script],
                                   mounts=[Mount(deb, "/dl/deb"), Mount(work, "/out", writable=True)]),
                         log=ctx.log("source.log"), timeout=1800)
    tops = [p for p in work.iterdir() if p.is_dir()] if work.exists() else []
    if out.exit_code != 0 or len(tops) != 1:
        raise InfraError(f"Unpacking {deb} failed ({last_error(ctx.log('source.log'))}); see "
                         f"{ctx.log('source.log')}. Delete the .deb and rerun.")
    tree_dir = tops[0]
    with tempfile.TemporaryDirectory(prefix="kseries-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        # -f: Debian's top-level .gitignore ignores everything ('/*')
        ctx.runner.git(repo, f"--work-tree={tree_dir}", "add", "-A", "-f", ".", env=env, timeout=1800)
        tree = ctx.runner.git(repo, "write-tree", env=env).output.strip()
    commit = ctx.runner.git(
        repo, "commit-tree", tree, "-m", f"Debian {package} {version}\n\nImported by kseries from {deb.name}."
    ).output.strip()
    ctx.runner.git(repo, "update-ref", ref, commit)
    shutil.rmtree(work, ignore_errors=True)
    ctx.progress.say("source", "", f"imported {package} {version} in {time.monotonic() - start:.0f} s")
    return commit


def stage(work: Work) -> Outcome:
    base = ensure_base(work.ctx, work.spec)
    prune.touch(work.ctx.cache, base_tree(base.commit))  # its worktree is in use
    work.provenance.update({"base-commit": work.spec.base.commit, **base.provenance})
    return Outcome(Status.PASS, f"base {base.commit[:12]}", facts={"patches": len(work.patches)},
                   artifacts={"repo": str(base.repo), "commit": base.commit})
