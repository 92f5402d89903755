import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def invoke(*args, env=None, cwd=REPO, timeout=3600):
    """Run `invoke ...` as a user would; returns CompletedProcess with text output."""
    full = dict(os.environ)
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def run_invoke():
    return invoke


from pipeline.setup import docker_ok  # noqa: E402  (one probe for setup and tests)


@pytest.fixture
def need_docker():
    if not docker_ok():
        pytest.fail("the real tier needs a running Docker engine: run 'invoke setup' first")
