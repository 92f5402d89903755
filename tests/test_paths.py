"""Every command's path arguments, given a missing, unwritable, non-directory or special-file path,
through the real command line: exit 2, one paragraph naming the path and what is wrong with it, and
nothing created. (An output directory that is only missing is made: 'invoke ci --results new/'.)"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def invoke(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


def tree(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*")}


@pytest.fixture
def place(tmp_path):
    """A scratch tree: a regular file, a FIFO, a run directory, and a directory you cannot write to."""
    (tmp_path / "file.txt").write_text("not a directory\n")
    os.mkfifo(tmp_path / "fifo")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    yield tmp_path
    locked.chmod(0o755)


def unwritable(place: Path) -> str:
    """A directory nobody can make files in: /proc/1 for root (who ignores modes), else a 0555 one."""
    return "/proc/1" if os.geteuid() == 0 else str(place / "locked")


def cases(place: Path) -> list[tuple[list[str], str, str]]:
    """(argv, the path it names, what the message says about it)."""
    file, fifo, missing = str(place / "file.txt"), str(place / "fifo"), str(place / "missing")
    locked = unwritable(place)
    out = []
    # output directories: unwritable (also below it), a regular file, a path below one, a special file
    for argv in (["ci", "--series", "page_mapped", "--results"], ["dashboard", "--results", str(place),
                                                                   "--junit", file, "--output"]):
        out += [(argv + [locked], locked, "filesystem" if locked == "/proc/1" else "not writable"),
                (argv + [locked + "/new"], locked, "filesystem" if locked == "/proc/1" else "not writable"),
                (argv + [file], file, "is a regular file, not a directory"),
                (argv + [file + "/new"], file, "is a regular file, not a directory"),
                (argv + ["/dev/null"], "/dev/null", "is a character device, not a directory"),
                (argv + [fifo], fifo, "is a FIFO, not a directory")]
    # output files
    for argv in (["dashboard", "--results", str(place), "--junit", file, "--db"], ["report", "--merge", file,
                                                                                  "--output"]):
        out += [(argv + [locked + "/x.db"], locked, "filesystem" if locked == "/proc/1" else "not writable"),
                (argv + [str(place)], str(place), "is a directory, not a regular file"),
                (argv + [file + "/x"], file, "is a regular file, not a directory"),
                (argv + ["/dev/null"], "/dev/null", "is a character device, not a regular file"),
                (argv + [fifo], fifo, "is a FIFO, not a regular file")]
    # input directories
    for argv in (["dashboard", "--results"], ["summary", "--results"], ["report", "--email"],
                 ["ci", "--resume"]):
        out += [(argv + [missing], missing, "no such directory" if argv[1] != "--resume" else "not a kseries run"),
                (argv + [file], file, "not a directory" if argv[1] != "--resume" else "not a kseries run"),
                (argv + ["/dev/null"], "/dev/null", "not a directory" if argv[1] != "--resume" else "not a kseries run"),
                (argv + [fifo], fifo, "not a directory" if argv[1] != "--resume" else "not a kseries run")]
    out.append((["dashboard", "--results", str(place / "empty")], str(place / "empty"), "holds no kseries run"))
    out.append((["dashboard", "--results", locked], locked, f"--results {locked}: "))  # cannot be read, or no run
    # input files (a FIFO or /dev/zero would block or never end if read)
    for argv in (["series", "--mbox"], ["ci", "--series", "page_mapped", "--mbox"], ["plan", "--mbox"],
                 ["dashboard", "--results", str(place), "--junit"], ["report", "--merge"]):
        out += [(argv + [missing], missing, "no such file"),
                (argv + [file + "/x"], file + "/x", "no such file"),
                (argv + ["/dev/zero"], "/dev/zero", "is a character device, not a regular file"),
                (argv + [fifo], fifo, "is a FIFO, not a regular file")]
    for argv in (["series", "--git"], ["ci", "--series", "page_mapped", "--git"]):
        out += [(argv + [p, "--range", "a..b"], p, "is not a git repository") for p in (missing, file, "/dev/null",
                                                                                         fifo)]
    return out


def test_every_path_argument_is_checked_before_any_work(place):
    (place / "empty").mkdir()
    before = tree(place)
    results = []
    for argv, named, phrase in cases(place):
        proc = invoke(*argv)
        flat = " ".join(proc.stderr.split())
        results.append((argv, proc.returncode, flat))
        assert proc.returncode == 2, (argv, proc.returncode, flat, proc.stdout[-300:])
        assert flat.startswith("kseries: input error: ") and "Traceback" not in flat, (argv, flat)
        assert "\n\n" not in proc.stderr.strip() and named in flat and phrase in flat, (argv, named, phrase, flat)
        assert tree(place) == before, (argv, tree(place) - before)
    assert not Path("/proc/1/new").exists()
    assert len(results) >= 60


def test_a_missing_results_root_is_made_for_a_run_but_not_for_a_dashboard(tmp_path):
    proc = invoke("dashboard", "--results", str(tmp_path / "nonexistent-dir"))
    assert proc.returncode == 2 and "no such directory" in proc.stderr, proc.stderr
    assert not (tmp_path / "nonexistent-dir").exists()
    from pipeline.infra import paths

    assert paths.output_dir(str(tmp_path / "a" / "b"), "--results") == tmp_path / "a" / "b"
    assert not (tmp_path / "a").exists()  # checked, not made: Run.create makes it


def test_run_create_names_a_results_root_it_cannot_make(tmp_path):
    """Run.create itself, past the command line's check (a root that went away meanwhile)."""
    from pipeline.infra.errors import UserError
    from pipeline.model import config
    from pipeline.run import pipeline

    spec = config.load_series("page_mapped")
    got = pipeline.intake.obtain(pipeline.intake.Request(), spec, tmp_path / "mails")
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match=r"--results .*/file: the run directory .* cannot be made \(Not a directory\)"):
        pipeline.Run.create(spec, [config.resolve_arch("x86_64")], tmp_path / "file", got)
