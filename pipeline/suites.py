"""Test suites that run inside the guest: build them for a lane, read their results.

A suite is data (configs/suites/<name>.yaml) plus a build script (ci/suites/).
The script runs in the toolchain container with the tree at $SRC (read-only),
the lane's kernel build at $KBUILD, a kept output directory $OUT and the arch's
make variables and suite variables in its environment. Whatever it leaves in
$OUT/rootfs is added to the lane's initramfs. Exit 0 is success; exit 3 means
the build environment cannot build the suite (an ERROR, e.g. a compiler too
old for it); anything else is a FAIL of the tree.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from . import config, parsers
from .container import Mount
from .context import Context
from .errors import UserError
from .results import Case, Status

EXIT_ENVIRONMENT = 3
MARKER = re.compile(r"kseries-init: suite (?P<name>\S+) "
                    r"(?P<what>start|exit|signal|error|file-begin|file-end|file-missing)\b ?(?P<rest>.*)$")


@dataclass
class SuiteBuild:
    suite: config.Suite
    case: Case
    rootfs: Path | None


def selected(spec: config.Series, arch: config.Arch) -> tuple[list[config.Suite], list[tuple[config.Suite, str]]]:
    """The series' suites that run on this arch, and those that do not with the reason."""
    runs, skips = [], []
    for name in spec.tests:
        if name in config.BUILTIN_TESTS:
            continue
        suite = config.load_suite(name)
        use = arch.suites.get(name)
        if use is None:
            skips.append((suite, f"configs/arches/{arch.name}.yaml does not declare the suite '{name}'"))
        elif not use.applies:
            skips.append((suite, use.reason or f"not applicable on {arch.name}"))
        else:
            runs.append(suite)
    return runs, skips


def fragments(spec: config.Series, arch: config.Arch) -> list[str]:
    """Kernel config fragments the lane's suites need."""
    return [f for s in selected(spec, arch)[0] for f in s.fragments]


def out_dir(ctx: Context, series: str, arch: config.Arch, suite: config.Suite) -> Path:
    return ctx.cache / "build" / series / arch.name / "suites" / suite.name


def build(ctx: Context, image: str, src: Path, kbuild: Path, arch: config.Arch, suite: config.Suite,
          series: str, lane: Path) -> SuiteBuild:
    out = out_dir(ctx, series, arch, suite)
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "rootfs", ignore_errors=True)  # the script makes it afresh
    env = {**{k: str(v) for k, v in arch.kernel.make_vars.items()},
           **{k: str(v) for k, v in arch.suites[suite.name].vars.items()},
           "SRC": "/src", "KBUILD": "/kbuild", "OUT": "/out", "JOBS": str(ctx.jobs),
           "CCACHE_DIR": "/ccache", "CCACHE_MAXSIZE": "5G"}
    log = ctx.log(f"{lane.name}/suite-{suite.name}-build.log")
    name = f"{arch.name}: build {suite.name}"
    ctx.progress.say("userspace", lane.name, f"building {suite.title}")
    start = time.monotonic()
    outcome = ctx.docker.run(
        image, ["sh", "-eu", "/suite/" + suite.script.name], workdir="/out", log=log, timeout=suite.build_timeout,
        env=env, on_line=ctx.progress.make_line("userspace", lane.name, [0]),
        mounts=[Mount(src, "/src"), Mount(suite.script.parent, "/suite"), Mount(kbuild, "/kbuild", writable=True),
                Mount(out, "/out", writable=True), Mount(ctx.cache / "ccache", "/ccache", writable=True)],
    )
    seconds = time.monotonic() - start
    shutil.copy(log, lane / f"suite-{suite.name}-build.log")
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
    if outcome.timed_out:
        return SuiteBuild(suite, Case("userspace", name, Status.ERROR, seconds,
                                      f"the build did not finish within {suite.build_timeout} s", tail, arch.name), None)
    if outcome.exit_code == EXIT_ENVIRONMENT:
        return SuiteBuild(suite, Case("userspace", name, Status.ERROR, seconds,
                                      "the toolchain cannot build this suite (build script exit 3): "
                                      "infrastructure, not the series", tail, arch.name), None)
    if outcome.exit_code != 0:
        return SuiteBuild(suite, Case("userspace", name, Status.FAIL, seconds,
                                      f"the build script exited {outcome.exit_code}", tail, arch.name), None)
    if not (out / "rootfs").is_dir():
        return SuiteBuild(suite, Case("userspace", name, Status.ERROR, seconds,
                                      "the build script succeeded but left no $OUT/rootfs", tail, arch.name), None)
    files = sum(1 for p in (out / "rootfs").rglob("*") if p.is_file())
    return SuiteBuild(suite, Case("userspace", name, Status.PASS, seconds,
                                  f"built in {seconds:.0f} s, {files} file(s) for the initramfs", arch=arch.name),
                      out / "rootfs")


def argv(suite: config.Suite, arch: config.Arch) -> list[str]:
    """The suite's command line in the guest, with the arch's test selection."""
    use = arch.suites.get(suite.name)
    out = list(suite.run)
    for flag, names in ((suite.allow_flag, suite.allow), (suite.deny_flag, (*suite.deny, *(use.deny if use else ())))):
        if flag and names:
            out += [flag, ",".join(names)]
    return out


def manifest(suites: list[config.Suite], arch: config.Arch) -> str:
    """/kseries/run for the guest's init: one suite per line: name, results file or -, argv."""
    lines = []
    for s in suites:
        words = [s.name, s.results or "-", *argv(s, arch)]
        bad = [w for w in words if not w or any(c.isspace() for c in w)]
        if bad:
            raise UserError(f"{s.path}: the guest command line cannot carry {bad!r} (empty, or with spaces). "
                            "Use single words in 'run', 'allow', 'deny' and 'results'.")
        lines.append(" ".join(words) + "\n")
    return "".join(lines)


def split_console(lines: list[str]) -> dict[str, dict]:
    """suite name -> {'lines': [...], 'end': 'exit 0' | 'signal 11' | None, 'file': text | None}."""
    found: dict[str, dict] = {}
    current, target = None, "lines"
    for line in lines:
        m = MARKER.search(line)
        if m:
            name, what = m.group("name"), m.group("what")
            if what == "start":
                current, target = found.setdefault(name, {"lines": [], "end": None, "file": None}), "lines"
            elif name in found and what == "file-begin":
                current, target = found[name], "file_lines"
                current["file_lines"] = []
            elif name in found and what == "file-end":
                found[name]["file"] = "\n".join(found[name].pop("file_lines", []))
                current = None
            elif name in found and what != "file-missing":
                found[name]["end"] = f"{what} {m.group('rest').strip()}".strip()
                current = None
            continue
        if current is not None:
            current[target].append(line)
    return found


def results(suite: config.Suite, arch: str, console_lines: list[str]) -> list[Case]:
    """The suite's testcases from the console, plus a FAIL when it did not finish or exited non-zero unexplained."""
    part = split_console(console_lines).get(suite.name)
    prefix = f"{arch}: {suite.name}"
    if part is None:
        return [Case(suite.name, f"{prefix}: ran", Status.FAIL, 0,
                     "the suite never started: the guest stopped before init ran it", "", arch)]
    cases, seen = [], {}
    try:
        parsed = parsers.PARSERS[suite.parser](part["lines"], part["file"])
    except parsers.Unreadable as exc:
        tail = "\n".join(part["lines"][-40:])
        if part["end"] is None or part["end"].startswith("signal"):
            # it crashed or the kernel stopped under it: the kernel under test may be why
            how = f"was killed by {part['end']}" if part["end"] else "did not finish"
            return [Case(suite.name, f"{prefix}: finished", Status.FAIL, 0,
                         f"the suite {how} before writing its results ({exc})", tail, arch)]
        return [Case(suite.name, f"{prefix}: results", Status.ERROR, 0,
                     f"the suite's results could not be read: {exc}", tail, arch)]
    for name, status, message, output in parsed:
        seen[name] = seen.get(name, 0) + 1
        unique = name if seen[name] == 1 else f"{name}#{seen[name]}"
        if suite.must_run and status == Status.SKIP:
            status, message = Status.ERROR, (
                f"skipped ({message or 'no reason given'}), but {suite.name} requires every selected test to run: "
                "the lane's kernel config or guest lacks what it needs (fix the suite's fragments, "
                "or deny the test for this arch in its YAML)")
        cases.append(Case(suite.name, f"{prefix}: {unique}", status, 0, message, output, arch))
    tail = "\n".join(part["lines"][-40:])
    ran = {c.name for c in cases}
    for wanted in suite.allow:  # an allow-listed test that did not run is never silently dropped
        if not any(ch in wanted for ch in "*?[") and f"{prefix}: {wanted}" not in ran:
            cases.append(Case(suite.name, f"{prefix}: {wanted}", Status.FAIL, 0,
                              "selected but did not run: the suite does not have it (did its build drop it?)",
                              tail, arch))
    end = part["end"]
    if end is None:
        cases.append(Case(suite.name, f"{prefix}: finished", Status.FAIL, 0,
                          "the suite did not finish: the kernel stopped or the guest timed out while it ran",
                          tail, arch))
    elif end == "exit 127":
        cases.append(Case(suite.name, f"{prefix}: finished", Status.ERROR, 0,
                          "init could not execute the suite (packaging problem, not the series)", tail, arch))
    elif end != "exit 0" and not any(c.status == Status.FAIL for c in cases):
        cases.append(Case(suite.name, f"{prefix}: finished", Status.FAIL, 0,
                          f"the suite ended with {end} but reported no failing test", tail, arch))
    elif not cases:
        cases.append(Case(suite.name, f"{prefix}: finished", Status.ERROR, 0,
                          f"the suite exited 0 but printed no line the '{suite.parser}' parser knows", tail, arch))
    return cases
