"""The real tier for config derivation: the real tree's Kconfig and the real config generation
(merge_config.sh and olddefconfig in the toolchain container).

lib/math/rational.c is built under CONFIG_RATIONAL, which has no prompt: only options that select
it set it. Cold this reads the tree's Kconfig (about 2 s) and generates the x86_64 config three
times (the lane's, the derived round, and the build's with the derived fragment), about 40 s each
on 2 cores.
"""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline.infra.context import Context, cache_root
from pipeline.infra.progress import Progress
from pipeline.infra.runner import Runner
from pipeline.model import config
from pipeline.model.lane import Lane, Role
from pipeline.stages import build, derive, genconfig, source

pytestmark = pytest.mark.real


@pytest.fixture
def base_tree(tmp_path, need_docker):
    """A throwaway worktree of the seed series' base commit (the real Linux 7.2 tree)."""
    ctx = Context(tmp_path / "run", cache_root(), Runner(tmp_path / "commands.log"), Progress())
    base = source.ensure_base(ctx, config.load_series("page_mapped"))
    tree = tmp_path / "tree"
    subprocess.run(["git", "-C", str(base.repo), "worktree", "add", "--detach", str(tree), base.commit],
                   check=True, capture_output=True)
    yield ctx, tree
    subprocess.run(["git", "-C", str(base.repo), "worktree", "remove", "--force", str(tree)], capture_output=True)


def test_rational_c_is_compiled_in_on_x86_64_through_an_option_that_selects_rational(base_tree, tmp_path):
    ctx, tree = base_tree
    arch = config.resolve_arch("x86_64")
    spec = config.adhoc_series("t", "t", "abc")
    image = ctx.image(arch.toolchain)
    work = SimpleNamespace(ctx=ctx, lane=Lane(arch, Role.SERIES, ctx.run_dir), spec=spec)
    found = derive.derive(work, tree, arch, image, ["lib/math/rational.c"], "x86")

    assert found["gates"] == {"lib/math/rational.c": ["RATIONAL"]}
    assert found["unmet"] == {}, found
    route = found["routes"]["CONFIG_RATIONAL"]
    assert route["kind"] == "select" and route["by"] in found["enabled"], found
    assert route["reason"].startswith(f"CONFIG_RATIONAL has no prompt: enabled {route['by']}, which selects it "
                                      f"(the smallest of {route['able']} option(s) the lane can meet"), route
    assert route["able"] >= 2 and route["of"] >= 10, route  # several of the tree's selectors serve on x86_64

    # the build's own config: the arch's fragments and the derived one, as the build stage stages them
    fragment = tmp_path / f"{build.DERIVED}x86_64-test.config"
    fragment.write_text(found["fragment"])
    derived = replace(arch, kernel=replace(arch.kernel, fragments=(*arch.kernel.fragments, str(fragment))))
    frag_dir, cfg_dir = tmp_path / "frag", tmp_path / "cfg"
    frag_dir.mkdir()
    names = build.stage_fragments(build.fragments_for(derived, spec), frag_dir)
    values = genconfig.generate(ctx, image, tree, derived, frag_dir, names, cfg_dir, tmp_path / "config.log")
    assert values.get("CONFIG_RATIONAL") == "y", found
    assert values.get(route["by"]) == "y"
