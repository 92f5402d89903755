"""The real tier: a hostile patch whose build tries to reach the network and to write outside its
own O= directory and compiler cache. It reaches nothing, writes nowhere it should not, plants
nothing another series compiles from, and nothing outside this series' own directories changes."""

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from pipeline.infra.context import Context, cache_root
from pipeline.infra.progress import Progress
from pipeline.infra.runner import Runner
from pipeline.model import config
from pipeline.stages import source
from test_real_pipeline import run_test_series

pytestmark = pytest.mark.real
NAME = "hostile"
PROBES = {  # what the build tries, each leaving its exit status in the O= directory
    "net": "getent hosts deb.debian.org || python3 -c 'import socket; socket.create_connection((\"1.1.1.1\", 80), 5)'",
    "src": "touch /src/kseries-hostile",
    "shared-ccache": "touch /ccache-shared/kseries-hostile",
    "own-ccache": "touch /ccache/kseries-planted",
    "tmp": "touch /tmp/kseries-hostile",
    "root": "touch /kseries-hostile",
}


# the series' own directories, and what kseries itself (not the build) writes for any run: git objects
# and worktree records of its apply, the spare worktree and O= copy it makes for the next new series
# (after the run, by the process whose state and commands are in later/), the marks of what a run used
# (used/: the cache's pruning goes by them), the removed-symbol searches (symbols/, by tree),
# locks, step, lane and config-derivation records, generated configs (keyed by the Kconfig files that
# made them: stages/genconfig.py), the mail cache, the KVM probe (not the shared suite builds: like the
# shared ccache, only the base's builds write them)
OWN = (f"build/{NAME}", f"trees/{NAME}", f"build/{NAME}+steps", f"trees/{NAME}+steps-x86_64", "trees/.spare", "build/.spare",
       "later", "used", "symbols", f"ccache-series/{NAME}", "git", "locks", "steps", "lanes",
       "derived", "configs", "mail", "kvm-probe.json", "tmp")


def hostile_patch(repo: Path, commit: str) -> str:
    """A real patch to init/Makefile whose $(shell ...) lines run the probes while make reads it."""
    import difflib

    path = "init/Makefile"
    old = subprocess.run(["git", "-C", str(repo), "show", f"{commit}:{path}"], capture_output=True, text=True,
                         check=True).stdout.splitlines(keepends=True)
    probes = [f"kseries_probe_{name} := $(shell ({cmd}) >/dev/null 2>&1; echo $$? > /out/kseries-probe-{name})\n"
              for name, cmd in PROBES.items()]
    diff = "".join(difflib.unified_diff(old, old + probes, f"a/{path}", f"b/{path}"))
    return (f"From: Mallory <mallory@example.org>\nSubject: [PATCH] init: probe the build machine\n\n"
            f"Tries what a hostile patch would.\n\nSigned-off-by: Mallory <mallory@example.org>\n---\ndiff --git a/{path} b/{path}\n{diff}")


def fingerprint(root: Path, skip: tuple[str, ...]) -> dict[str, tuple]:
    """(size, mtime) of every file under root, but for the paths skipped (this series' own)."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        if any(rel == s or rel.startswith(s + "/") for s in skip):
            dirs[:] = []
            continue
        for f in files:
            p = Path(dirpath) / f
            try:
                st = p.lstat()
            except FileNotFoundError:
                continue
            out[os.path.join(rel, f)] = (st.st_size, st.st_mtime_ns)
    return out


def test_a_hostile_build_reaches_nothing_and_changes_nothing_outside_its_own(tmp_path, reliability):
    with reliability("a patched init/Makefile that tries the network, writes into the source tree, the "
                     "shared compiler cache, / and the host's /tmp, and plants an object in its ccache", kind="hostile") as row:
        cache = cache_root()
        base = source.ensure_base(Context(tmp_path / "run", cache, Runner(tmp_path / "c.log"), Progress()),
                                  config.load_series("page_mapped"))
        mails = [hostile_patch(base.repo, base.commit)]  # alone: its build is the base's plus init/
        before = fingerprint(cache, OWN)
        host_tmp = Path("/tmp/kseries-hostile")
        host_tmp.unlink(missing_ok=True)
        proc, results = run_test_series(tmp_path, NAME, mails, extra=("--rerun-tests",))  # its build runs
        assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr
        out = cache / "build" / NAME / "x86_64" / "out"
        probe = {name: (out / f"kseries-probe-{name}").read_text().strip() for name in PROBES}
        assert probe["net"] != "0", "the build reached the network"
        assert probe["src"] != "0" and probe["shared-ccache"] != "0" and probe["root"] != "0", probe
        assert probe["own-ccache"] == "0" and probe["tmp"] == "0", probe  # its own store, its container's /tmp
        assert not host_tmp.exists() and not (cache / "trees" / NAME / "kseries-hostile").exists()
        assert not (cache / "ccache" / "kseries-hostile").exists()
        assert (cache / "ccache-series" / NAME / "kseries-planted").exists()  # planted where only it looks
        after = fingerprint(cache, OWN)
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        # the shared ccache only grows by objects of the base's trusted builds: none ran (the base was cached)
        assert changed == [], changed[:20]
        digest = hashlib.sha256(repr(sorted(before.items())).encode()).hexdigest()[:12]
        print(f"{len(before)} files outside the hostile series' own directories, unchanged ({digest})")

        row["did"] = (f"probes' exit codes: {probe}: no network, no write outside its O=, its own ccache "
                      "store and its container's /tmp; the plant sits where only this series looks")
        row["exit"] = proc.returncode
        row["kept"] = f"{len(before)} files of the cache outside the series' own directories unchanged ({digest})"
        row["resume"] = "not applicable"

ENDLESS = {  # a Makefile line that makes the build misbehave; the limit it meets; how the lane ends
    "fork": ("forks without end (6,000 background processes)",
             "$(shell for i in $$(seq 1 6000); do sleep 30 & done; true)", "build_timeout: 600", "FAIL",
             "forks without end"),
    "disk": ("fills the disk (fallocate 8 GiB in its O= directory)",
             "$(shell fallocate -l 8G /out/kseries-fill)", "build_disk: 1g", "FAIL", "fills the disk"),
    "forever": ("runs forever (sleep in a $(shell) of init/Makefile)",
                "$(shell sleep 100000)", "build_timeout: 120", "ERROR", "did not finish within build_timeout"),
}


def misbehaving_patch(repo: Path, commit: str, line: str) -> str:
    import difflib

    path = "init/Makefile"
    old = subprocess.run(["git", "-C", str(repo), "show", f"{commit}:{path}"], capture_output=True, text=True,
                         check=True).stdout.splitlines(keepends=True)
    diff = "".join(difflib.unified_diff(old, old + [f"kseries_endless := {line}\n"], f"a/{path}", f"b/{path}"))
    return (f"From: Mallory <mallory@example.org>\nSubject: [PATCH] init: misbehave\n\n"
            f"Does what a hostile patch would.\n\nSigned-off-by: Mallory <mallory@example.org>\n---\ndiff --git a/{path} b/{path}\n{diff}")


@pytest.mark.parametrize("kind", list(ENDLESS))
def test_a_build_that_forks_fills_or_runs_forever_loses_its_lane_only(tmp_path, kind, reliability):
    what, line, limit, status, says = ENDLESS[kind]
    with reliability(f"a patched Makefile that {what}", kind="hostile") as row:
        cache = cache_root()
        base = source.ensure_base(Context(tmp_path / "run", cache, Runner(tmp_path / "c.log"), Progress()),
                                  config.load_series("page_mapped"))
        mails = [misbehaving_patch(base.repo, base.commit, line)]
        before = fingerprint(cache, OWN)
        edit = (lambda text: text.replace("  config_target: tinyconfig\n",
                                          f"  config_target: tinyconfig\n  {limit}\n")) if limit else None
        proc, results = run_test_series(tmp_path, NAME, mails, arch_edit=edit)
        fill = cache / "build" / NAME / "x86_64" / "out" / "kseries-fill"
        fill.unlink(missing_ok=True)
        assert proc.returncode == (1 if status == "FAIL" else 3), proc.stdout[-3000:] + proc.stderr[-2000:]
        record = json.loads((results / "latest" / "results.json").read_text())
        build = next(s for s in record["stages"] if s["stage"] == "build" and s["role"] == "series")
        assert build["status"] == status and says in build["message"], build["message"]
        left = subprocess.run(["docker", "ps", "--format", "{{.Image}}"], capture_output=True, text=True).stdout
        assert "kseries/" not in left, "a container outlived its build"
        assert subprocess.run(["pgrep", "-f", "^sleep (30|100000)$"], capture_output=True).returncode == 1
        after = fingerprint(cache, OWN)
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        assert changed == [], changed[:20]
        row["did"] = f"build {status} after {build['seconds']:.0f} s: {build['message'][:160]}"
        row["exit"] = proc.returncode
        row["kept"] = (f"the run's reports; {len(before)} files of the cache outside the series' own "
                       "directories unchanged (size and mtime), no container or process left")
        row["resume"] = "not applicable (the series is at fault)" if status == "FAIL" else \
            "would redo the build and time out again: the fix is the patch"
