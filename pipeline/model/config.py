"""configs/ loaded once into frozen, strict models.

Unknown keys and missing required keys are user errors naming the file and key, so a
typo in YAML never silently changes behaviour.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.infra.errors import UserError
from pipeline.model.strict import build, read_yaml, size_bytes  # noqa: F401 (config.size_bytes)

REPO = Path(__file__).resolve().parents[2]
CONFIGS = Path(os.environ.get("KSERIES_CONFIGS", REPO / "configs"))


@dataclass(frozen=True)
class Qemu:
    binary: str
    memory: str
    console: str
    machine: str = ""
    cpu: str = ""
    smp: int = 1
    append: tuple[str, ...] = ()
    serial: tuple[str, ...] = ("stdio",)  # one backend per serial port, in order
    extra_args: tuple[str, ...] = ()
    kvm_host: str = ""  # uname -m of hosts where KVM may serve this arch; a probe decides
    boot_timeout: int = 300


@dataclass(frozen=True)
class Kernel:
    make_vars: dict
    image_target: str
    image_path: str
    config_target: str
    fragments: tuple[str, ...] = ()
    # limits of one build container: a hostile or broken series loses its lane, not the machine
    build_memory: str = "6g"  # past it the OOM killer acts: an ERROR (raise it), not the series' fault
    build_timeout: int = 3 * 3600  # seconds
    build_disk: str = "16g"  # what one build may add to its O= directory


LIMITS = ("build_memory", "build_timeout", "build_disk")


def identity(arch: "Arch") -> dict:
    """The arch data that decides results: not the container limits (raising one never invalidates
    cached base results), and a fragment by its name (a derived one's path is in the cache)."""
    data = dataclasses.asdict(arch)
    for name in LIMITS:
        data["kernel"].pop(name)
    data["kernel"]["fragments"] = [Path(f).name for f in data["kernel"]["fragments"]]
    return data



@dataclass(frozen=True)
class Userspace:
    cc: str  # compiler for the static /init, prefixed by CROSS_COMPILE
    cflags: tuple[str, ...] = ()


@dataclass(frozen=True)
class SuiteUse:
    """How an arch uses a test suite: whether it applies (and why not), and arch variables for its build."""
    applies: bool
    reason: str = ""
    vars: dict = field(default_factory=dict)
    deny: tuple[str, ...] = ()  # tests not to run on this arch, added to the suite's deny list


@dataclass(frozen=True)
class Suite:
    """A test suite run inside the guest (configs/suites/<name>.yaml)."""
    name: str
    title: str
    parser: str  # how its console output becomes testcases (pipeline/parsers.py)
    build: str = ""  # script under ci/suites/, run by sh in the toolchain container
    run: tuple[str, ...] = ()  # argv inside the guest
    # guest: built by `build`, run by /init with `run`; kunit: built into the kernel and run by it at
    # boot, before init (its tests and their config come from the tree's catalogue: stages/tests.py)
    kind: str = "guest"
    # the tests come from the tree's catalogue, chosen for the series (stages/tests.py), not from `allow`
    catalogue: bool = False
    results: str = ""  # a file the suite writes in the guest; init prints it to the console
    # test selection: appended to `run` as [flag, "a,b,c"] when the list is not empty
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    allow_flag: str = ""
    deny_flag: str = ""
    fragments: tuple[str, ...] = ()  # kernel config the suite needs, on lanes where it runs
    # what the suite tests (path globs, fnmatch): a series without a YAML that changes one runs it
    covers: tuple[str, ...] = ()
    timeout: int = 300  # guest seconds the suite may take
    build_timeout: int = 1800
    # every selected test must really run: a SKIP means the lane's kernel config or
    # guest lacks something the test needs, an ERROR of the set-up (never a pass)
    must_run: bool = False
    path: Path = Path()

    def __post_init__(self):
        if self.kind not in ("guest", "kunit"):
            raise UserError(f"suite {self.name}: kind is '{self.kind}': use guest or kunit.")

    @property
    def script(self) -> Path:
        return REPO / "ci" / "suites" / self.build


@dataclass(frozen=True)
class Arch:
    name: str
    kernel: Kernel
    userspace: Userspace
    qemu: Qemu
    aliases: tuple[str, ...] = ()
    toolchain: str = "toolchain"
    suites: dict = field(default_factory=dict)  # name -> SuiteUse


@dataclass(frozen=True)
class OfflineBase:
    package: str
    suite: str
    mirror: str = "http://deb.debian.org/debian"
    reverse_patches: str = ""  # patches it already carries (a dir beside the series YAML), reverse-applied


@dataclass(frozen=True)
class Base:
    commit: str
    git_url: str
    offline: OfflineBase | None = None


@dataclass(frozen=True)
class Checkpatch:
    """scripts/checkpatch.pl policy: the lowest level that fails a patch, and what to pass it."""
    fail_on: str = "error"  # error | warning | check | never
    ignore: tuple[str, ...] = ()  # checkpatch types, e.g. FILE_PATH_CHANGES
    args: tuple[str, ...] = ()  # e.g. [--strict]

    def __post_init__(self):
        if self.fail_on not in ("error", "warning", "check", "never"):
            raise UserError(f"checkpatch.fail_on is '{self.fail_on}': use error, warning, check or never.")


@dataclass(frozen=True)
class SeriesConfig:
    """configs/series/<name>.yaml: what a series is tested on and with (its patches: model/series.py)."""

    name: str
    title: str
    message_id: str
    base: Base
    patches: str  # offline copy: directory of .patch files, relative to the YAML
    arches: tuple[str, ...]
    fragments: tuple[str, ...] = ()  # extra kconfig fragments for every arch
    tests: tuple[str, ...] = ("boot",)
    lore_url: str = "https://lore.kernel.org/all"
    checkpatch: Checkpatch = Checkpatch()
    derive: bool = True  # enable what changed files need when a lane's config does not build them (stages/derive.py)
    rerun_tests: bool = False  # the series' lanes build, boot and test afresh: no cached results (run/reuse.py)
    path: Path = Path()

    @property
    def patch_dir(self) -> Path:
        return (self.path.parent / self.patches).resolve()


@dataclass(frozen=True)
class Image:
    name: str
    packages: tuple[str, ...]
    unstable_packages: tuple[str, ...] = ()  # newer than trixie has (e.g. pahole 1.32)
    sysroots: dict = field(default_factory=dict)  # arch -> library packages for cross-linking
    digest: str = ""


def _names(kind: str, root: Path) -> list[str]:
    return sorted(p.stem for p in (root / kind).glob("*.yaml"))


def _same_name(path: Path, declared: str, name: str) -> None:
    if declared != name:
        raise UserError(f"{path} declares name '{declared}' but its file name says '{name}'. Make them agree.")


def _find(kind: str, name: str, root: Path, what: str, plural: str, fix: str) -> Path:
    """configs/<kind>/<name>.yaml, or a user error listing the known names and the fix."""
    path = root / kind / f"{name}.yaml"
    if not path.exists():
        raise UserError(f"Unknown {what} '{name}': there is no {path}. Known {plural}: "
                        f"{', '.join(_names(kind, root)) or 'none'}. {fix}")
    return path


def load_arch(name: str, root: Path | None = None) -> Arch:
    root = root or CONFIGS
    path = root / "arches" / f"{name}.yaml"
    data = read_yaml(path)
    if isinstance(data, dict) and isinstance(data.get("suites"), dict):
        data = dict(data)
        data["suites"] = {
            k: build(SuiteUse, v, f"{path}: suites.{k}") for k, v in data["suites"].items()
        }
    arch = build(Arch, data, str(path))
    _same_name(path, arch.name, name)
    return arch


def suite_names(root: Path | None = None) -> list[str]:
    return _names("suites", root or CONFIGS)


def arch_names(root: Path | None = None) -> list[str]:
    return _names("arches", root or CONFIGS)


def resolve_arch(name: str, root: Path | None = None) -> Arch:
    """Resolve an arch name or alias (sh -> sh4, aarch64 -> arm64, amd64 -> x86_64)."""
    root = root or CONFIGS
    arches = [load_arch(candidate, root) for candidate in arch_names(root)]
    wanted = name.strip().lower()
    for arch in arches:
        if wanted == arch.name or wanted in arch.aliases:
            return arch
    names = [a.name for a in arches]
    aliases = [f"{', '.join(a.aliases)} -> {a.name}" for a in arches if a.aliases]
    raise UserError(
        f"Unknown architecture '{name}'. Valid names: {', '.join(names)}"
        + (f" (aliases: {'; '.join(aliases)})" if aliases else "")
        + ". Pass one of them to --arch, or add configs/arches/<name>.yaml."
    )


def load_series(name: str, root: Path | None = None) -> SeriesConfig:
    root = root or CONFIGS
    path = _find("series", name, root, "series", "series",
                 "Pass one of them to --series, or write configs/series/<name>.yaml.")
    series = build(SeriesConfig, read_yaml(path), str(path))
    series = dataclasses.replace(series, path=path)
    from pipeline.model.lane import Role

    if series.name.startswith(Role.BASE.prefix) or not re.fullmatch(r"[\w.+-]+", series.name):
        raise UserError(
            f"{path}: the series name {series.name!r} is not one kseries can use: names beginning with "
            f"'{Role.BASE.prefix}' are the base's kept directories, and a name is letters, digits, '.', '_', "
            "'+' and '-'. Rename the series (its 'name' and its file).")
    if not series.patch_dir.is_dir():
        raise UserError(
            f"{path}: 'patches' points at {series.patch_dir}, which is not a directory. "
            "Point it at the directory holding the series' .patch files."
        )
    return series


# Tests every lane has without a suite file: the boot itself and the console scan.
BUILTIN_TESTS = ("boot", "console")


def load_suite(name: str, root: Path | None = None) -> Suite:
    root = root or CONFIGS
    path = _find("suites", name, root, "test suite", "suites",
                 f"The built-in tests are {', '.join(BUILTIN_TESTS)}. Fix the series' 'tests' list or the "
                 "arch's 'suites', or add the suite's YAML.")
    suite = dataclasses.replace(build(Suite, read_yaml(path), str(path)), path=path)
    _same_name(path, suite.name, name)
    from pipeline.stages.parsers import PARSERS

    if suite.parser not in PARSERS:
        raise UserError(f"{path}: unknown parser '{suite.parser}'. Known parsers: {', '.join(sorted(PARSERS))}.")
    if suite.kind == "guest" and (not suite.build or not suite.run):
        raise UserError(f"{path}: a guest suite needs 'build' (its script in ci/suites/) and 'run' (its argv "
                        "in the guest).")
    if suite.build and not suite.script.is_file():
        raise UserError(f"{path}: 'build' names {suite.script}, which does not exist. Point it at a script in ci/suites/.")
    return suite


def load_image(name: str, root: Path | None = None) -> Image:
    root = root or CONFIGS
    path = root / "images" / f"{name}.yaml"
    image = build(Image, read_yaml(path), str(path))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return dataclasses.replace(image, digest=digest)


def fragment_path(name: str, root: Path | None = None) -> Path:
    path = (root or CONFIGS) / "kconfig" / name
    if not path.is_file():
        raise UserError(f"Kernel config fragment {path} does not exist. Fix the arch's 'fragments' list.")
    return path


@dataclass(frozen=True)
class Defaults:
    arches: tuple[str, ...]
    git_url: str
    fragments: tuple[str, ...] = ()
    tests: tuple[str, ...] = ("boot", "console")
    lore_url: str = "https://lore.kernel.org/all"


def adhoc_series(name: str, title: str, base_commit: str, git_url: str = "", message_id: str = "",
                 root: Path | None = None) -> SeriesConfig:
    """A series named only by its mails (no YAML): configs/defaults.yaml supplies the rest."""
    path = (root or CONFIGS) / "defaults.yaml"
    d = build(Defaults, read_yaml(path), str(path))
    return SeriesConfig(name=name, title=title, message_id=message_id, base=Base(base_commit, git_url or d.git_url),
                  patches=".", arches=d.arches, fragments=d.fragments, tests=d.tests, lore_url=d.lore_url,
                  path=path)
