"""ccache stores no untrusted build can poison for another.

The shared store (<cache>/ccache) is written only by trusted builds - the base's
lanes, whose code comes from the upstream tree, not from a mailing list. A
series' builds (its steps, tip and suites: code from the mails) write to a
store of their own (<cache>/ccache-series/<series>) and read the shared one
through ccache's read-only remote storage, mounted read-only besides: whatever a
hostile patch's build plants lands where only that series' builds will look.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.infra.containers import Mount

SHARED = "ccache"
OWN = "ccache-series"


def store(cache: Path, builds: str, trusted: bool) -> Path:
    """The store a build writes to."""
    return cache / SHARED if trusted else cache / OWN / builds


def mounts(cache: Path, builds: str, trusted: bool) -> tuple[list[Mount], dict[str, str]]:
    """The ccache mounts and environment of one build container."""
    shared = cache / SHARED
    shared.mkdir(parents=True, exist_ok=True)
    env = {"CCACHE_DIR": "/ccache", "CCACHE_MAXSIZE": "5G"}
    if trusted:
        return [Mount(shared, "/ccache", writable=True)], env
    own = store(cache, builds, trusted)
    return ([Mount(own, "/ccache", writable=True), Mount(shared, "/ccache-shared")],
            {**env, "CCACHE_MAXSIZE": "2G", "CCACHE_REMOTE_STORAGE": "file:/ccache-shared|read-only"})
