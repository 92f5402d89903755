"""configs/tests.yaml loaded into a frozen model: how the tests chosen from the tree's catalogue run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.infra.errors import UserError
from pipeline.model.config import CONFIGS
from pipeline.model.strict import build, read_yaml


@dataclass(frozen=True)
class TestPolicy:
    """configs/tests.yaml: how tests chosen from the tree's catalogue run (stages/tests.py)."""
    ranked: int = 3  # tests of a whole kselftest target (or a directory of KUnit tests) chosen by relevance
    kselftest_timeout: int = 300  # guest seconds one kselftest test may take (run_kselftest.sh -o)
    kselftest_budget: int = 1200  # guest seconds of kselftests per lane; what does not fit is named
    kselftest_cost: int = 60  # guest seconds a kselftest test is assumed to take until one was measured
    kunit_max: int = 12  # KUnit test files per lane at most (each is a config option)
    deny: dict = field(default_factory=dict)  # test name or glob -> why it is not run (named, never hidden)
    path: Path = Path()


def load(root: Path | None = None) -> TestPolicy:
    path = (root or CONFIGS) / "tests.yaml"
    policy = dataclasses.replace(build(TestPolicy, read_yaml(path), str(path)), path=path)
    bad = [k for k, v in policy.deny.items() if not isinstance(k, str) or not isinstance(v, str) or not v]
    if bad:
        raise UserError(f"{path}: deny maps a test (or glob) to the reason it is denied; {bad[0]!r} has none. "
                        "Write `target:test: why`.")
    return policy
