"""Bad input gives the promised exit code and one clear paragraph, never a traceback."""

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def assert_clean_error(proc, code, *needles):
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    flowed = " ".join(proc.stderr.split())  # the message is wrapped to the terminal: where depends on paths
    for needle in needles:
        assert needle in flowed, proc.stderr


def test_unknown_series(run_invoke, tmp_path):
    proc = run_invoke("ci", "--series", "nope", "--results", str(tmp_path))
    assert_clean_error(proc, 2, "Unknown series 'nope'", "page_mapped", "--series")
    assert not any(tmp_path.iterdir())  # validated before any work


def test_unknown_arch(run_invoke, tmp_path):
    proc = run_invoke("ci", "--series", "page_mapped", "--arch", "mips", "--results", str(tmp_path))
    assert_clean_error(proc, 2, "Unknown architecture 'mips'", "x86_64", "--arch")


def test_malformed_series_yaml(run_invoke, tmp_path):
    configs = tmp_path / "configs"
    shutil.copytree(REPO / "configs", configs)
    (configs / "series" / "page_mapped.yaml").write_text("name: page_mapped\narches: [x86_64\n")
    proc = run_invoke("series", "--series", "page_mapped", env={"KSERIES_CONFIGS": str(configs)})
    assert_clean_error(proc, 2, "is not valid YAML", "page_mapped.yaml")


def test_series_shows_patches_and_diffstat(run_invoke):
    proc = run_invoke("series", "--series", "page_mapped")
    assert proc.returncode == 0, proc.stderr
    assert "[PATCH 3/3] mm: remove page_mapped()" in proc.stdout
    assert "\n 5 files changed, 7 insertions(+), 17 deletions(-)" in proc.stdout
    assert "linux-source-7.2" in proc.stdout


@pytest.mark.real
def test_docker_unreachable_is_an_infrastructure_error(run_invoke, tmp_path, reliability):
    with reliability("the Docker engine's socket gone before a run (DOCKER_HOST at a missing socket)") as row:
        proc = run_invoke("ci", "--series", "page_mapped", "--arch", "x86_64", "--results", str(tmp_path),
                          env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"}, timeout=900)
        assert proc.returncode == 3, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stdout + proc.stderr
        assert "Docker engine at unix:///nonexistent/docker.sock is unreachable" in proc.stdout
        assert "invoke setup" in proc.stdout
        # what finished stays on disk: a results directory with a summary naming the ERROR
        summary = (tmp_path / "latest" / "summary.txt").read_text()
        assert "VERDICT: ERROR" in summary
        row["did"] = "the first stage needing the engine ERROR: 'The Docker engine at ... is unreachable ... Run " \
                     "invoke setup'; the stages before it (intake, apply, checkpatch) kept"
        row["exit"], row["kept"] = 3, "results.json, junit.xml, summary.txt"
        row["resume"] = "with the engine back, --resume completes it (as after dockerd stopped mid-build)"
