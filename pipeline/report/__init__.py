"""Every report is rendered from the persisted RunRecord (results.json), never from live objects."""

from __future__ import annotations

import os
from pathlib import Path


def write(record, run_dir: Path) -> None:
    """junit.xml, kcidb.json, summary.txt and each lane's reproducer.sh and metadata.json for a run,
    and results/latest pointing at it."""
    from pipeline.report import junit, kcidb, lane_files, summary

    lane_files.write(record, run_dir)
    junit.write(record, run_dir / "junit.xml")
    kcidb.write(record, run_dir)
    (run_dir / "summary.txt").write_text(summary.render(record))
    latest = run_dir.parent / "latest"
    tmp = run_dir.parent / ".latest.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(run_dir.name, tmp)
    os.replace(tmp, latest)
