"""Generating a kernel .config: the arch's base target, the fragments, merge_config.sh, olddefconfig.

What a generated .config holds is decided by the tree's Kconfig language files (every Kconfig*,
the config fragments under kernel/configs/ and arch/*/configs/, scripts/ - kconfig itself and
what Kconfig's $(shell,...) calls - and the top and arch Makefiles), the arch's target and make
variables, the fragments' text and the toolchain image (Kconfig asks the compiler what it
supports). Generated configs are kept in <cache>/configs/ under a key of exactly that, so a
per-patch step, a derive round or a series that changes no Kconfig file (nearly every series)
costs no config generation where one with the same inputs was made before.

Trust: a series' Kconfig runs in the container and may write what it likes into its .config,
but the entry is kept under its own Kconfig files: only a tree with exactly those files (the
same series, or one carrying the same Kconfig change) is ever given it.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

from pipeline.infra.containers import Container, Mount
from pipeline.infra.context import Context
from pipeline.infra.errors import InfraError
from pipeline.model import config

ARCH_MAKEFILE = re.compile(r"^arch/[^/]+/Makefile$")


def decides(path: str) -> bool:
    """Whether a file of the tree can change what a config generation writes."""
    name = path.rsplit("/", 1)[-1]
    return (name.startswith("Kconfig") or path == "Makefile" or bool(ARCH_MAKEFILE.match(path))
            or path.startswith(("scripts/", "kernel/configs/"))
            or (path.startswith("arch/") and "/configs/" in path))


def key(ctx: Context, src: Path, image: str, arch: config.Arch, frag_dir: Path, names: list[str]) -> str:
    listing = ctx.runner.git(src, "ls-tree", "-r", "HEAD").output.splitlines()
    kconfig = [line for line in listing if decides(line.split("\t", 1)[-1])]
    fragments = [(n, (frag_dir / n.removeprefix("/frag/")).read_bytes()) for n in names]
    data = repr((kconfig, image, arch.name, arch.kernel.config_target, sorted(arch.kernel.make_vars.items()),
                 fragments))
    return hashlib.sha256(data.encode()).hexdigest()[:20]


def generate(ctx: Context, image: str, src: Path, arch: config.Arch, frag_dir: Path, names: list[str],
             cfg_dir: Path, log: Path) -> dict[str, str]:
    """cfg_dir/.config: generated, or taken from the store when its inputs were generated before."""
    from pipeline.stages.build import make_argv, parse_config

    store = ctx.cache / "configs" / f"{key(ctx, src, image, arch, frag_dir, names)}.config"
    log.parent.mkdir(parents=True, exist_ok=True)
    if store.is_file():
        cfg_dir.mkdir(parents=True, exist_ok=True)  # a new series' kept config dir may not exist yet
        shutil.copyfile(store, cfg_dir / ".config")
        with open(log, "a") as out:
            out.write(f"# the same Kconfig files, fragments and toolchain were generated before: {store}\n")
        return parse_config((cfg_dir / ".config").read_text())
    script = " && ".join([
        " ".join(make_argv(arch, "/cfg", arch.kernel.config_target)) + " >/dev/null",
        # merge_config.sh writes temporary files into its cwd: run it in /cfg
        "cd /cfg",
        "/src/scripts/kconfig/merge_config.sh -m -O /cfg /cfg/.config " + " ".join(names),
        "cd /src",
        " ".join(make_argv(arch, "/cfg", "olddefconfig")),
    ])
    outcome = ctx.docker.run(
        Container(image, ["sh", "-c", script], workdir="/src",
                  mounts=[Mount(src, "/src"), Mount(frag_dir, "/frag"), Mount(cfg_dir, "/cfg", writable=True)]),
        log=log, timeout=900)
    if outcome.timed_out or outcome.exit_code != 0:
        raise InfraError(
            f"Generating the {arch.name} kernel config failed (exit {outcome.exit_code}); see {log}."
        )
    store.parent.mkdir(parents=True, exist_ok=True)
    tmp = store.with_suffix(".tmp")
    shutil.copyfile(cfg_dir / ".config", tmp)
    tmp.replace(store)
    return parse_config((cfg_dir / ".config").read_text())
