"""Stage 'boot': the kernel and initramfs under QEMU, in a container.

KVM serves only where the arch data allows it on this host and a quick real
boot proves it works (nested KVM can open /dev/kvm yet hang guests); the
probe's answer is cached per host kernel, QEMU image and arch. Else TCG.
"""

from __future__ import annotations

import json
import os
import platform
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.model import config
from pipeline.infra.containers import Container, Mount
from pipeline.infra.context import Context
from pipeline.model.lane import Role
from pipeline.model.results import Case, Status
from pipeline.stages.interface import Outcome, Work

PROBE_SECONDS = 45
PROBE_MAX_AGE = 24 * 3600


@dataclass
class Booted:
    ok: bool
    case: Case
    console: Path
    facts: dict = field(default_factory=dict)


def console_rules() -> dict:
    return config.read_yaml(config.CONFIGS / "console.yaml")


def proves_userspace(line: str, rules: dict) -> bool:
    """Did /init print this line? Any of its lines will do: the serial console interleaves
    kernel messages with init's output, so the `reached` line alone can arrive garbled."""
    return rules["reached"] in line or rules["userspace"] in line


def qemu_argv(arch: config.Arch, kernel: str, initrd: str, accel: str) -> list[str]:
    """The QEMU command line, rendered from the arch data alone."""
    q = arch.qemu
    argv = [q.binary, "-accel", accel]
    if q.machine:
        argv += ["-M", q.machine]
    if q.cpu:
        argv += ["-cpu", q.cpu]
    argv += ["-m", q.memory, "-smp", str(q.smp), "-display", "none", "-monitor", "none", "-no-reboot"]
    for backend in q.serial:
        argv += ["-serial", backend]
    argv += ["-kernel", kernel, "-initrd", initrd, "-append", " ".join([f"console={q.console}", *q.append])]
    return argv + list(q.extra_args)


def _boot(ctx: Context, image: str, arch: config.Arch, lane: Path, kernel: Path, initrd: Path,
          accel: str, log: Path, timeout: float) -> tuple[object, float | None]:
    rules = console_rules()
    reached_at: list[float] = []
    start = time.monotonic()

    def on_line(line: str) -> None:
        if not reached_at and proves_userspace(line, rules):
            reached_at.append(time.monotonic() - start)

    devices, groups = [], []
    if accel == "kvm":
        devices = ["/dev/kvm"]
        groups = [os.stat("/dev/kvm").st_gid]
    argv = qemu_argv(arch, f"/lane/{kernel.name}", f"/lane/{initrd.name}", accel)
    outcome = ctx.docker.run(
        Container(image, argv, mounts=[Mount(lane, "/lane")], memory="4g", devices=devices, groups=groups,
                  cpus=float(max(1, min(ctx.jobs, arch.qemu.smp)))),
        log=log, timeout=timeout, on_line=on_line,
        stop_on=lambda line: rules["done"] in line or "Kernel panic" in line,
    )
    return outcome, (reached_at[0] if reached_at else None)


def kvm_usable(path: str = "/dev/kvm") -> bool:
    """Can the non-root boot user open /dev/kvm (others rw, or group rw via --group-add)?"""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    return bool(st.st_mode & 0o006 == 0o006 or (st.st_gid != 0 and st.st_mode & 0o060 == 0o060))


def _last_line(ctx: Context, arch: config.Arch) -> str:
    lines = ctx.log(f"{arch.name}/kvm-probe.log").read_text(errors="replace").strip().splitlines()
    return lines[-1][:200] if lines else "no output"


def choose_accel(ctx: Context, image: str, arch: config.Arch, lane: Path, kernel: Path, initrd: Path) -> tuple[str, str]:
    """('kvm' or 'tcg', why)."""
    host = platform.machine()
    if arch.qemu.kvm_host != host:
        return "tcg", f"KVM cannot serve {arch.name} guests on a {host} host"
    if not kvm_usable():
        return "tcg", ("/dev/kvm is missing or not usable by the unprivileged boot user "
                       "(needs mode 0666, or group rw for a non-root group; 'invoke setup' does this as root)")
    probes_file = ctx.cache / "kvm-probe.json"
    probes = json.loads(probes_file.read_text()) if probes_file.exists() else {}
    key = f"{platform.release()}|{image}|{arch.name}"
    seen = probes.get(key)
    if not seen or time.time() - seen["when"] > PROBE_MAX_AGE:
        ctx.progress.say("boot", arch.name, f"probing KVM with a real boot (up to {PROBE_SECONDS} s)")
        outcome, reached = _boot(ctx, image, arch, lane, kernel, initrd, "kvm",
                                 ctx.log(f"{arch.name}/kvm-probe.log"), PROBE_SECONDS)
        seen = {"when": time.time(), "ok": reached is not None,
                "detail": f"reached init in {reached:.1f} s" if reached is not None
                else f"guest did not reach init within {PROBE_SECONDS} s" if outcome.timed_out
                else f"QEMU exited {outcome.exit_code} before init: {_last_line(ctx, arch)}"}
        probes[key] = seen
        probes_file.parent.mkdir(parents=True, exist_ok=True)
        probes_file.write_text(json.dumps(probes, indent=1))
    if seen["ok"]:
        return "kvm", f"KVM probe: {seen['detail']}"
    return "tcg", f"KVM probe failed ({seen['detail']}); using TCG"


def run(ctx: Context, arch: config.Arch, lane: Path, kernel: Path, initrd: Path, extra_seconds: int = 0,
        name: str = "console") -> Booted:
    """Boot, then let init run the suites: the guest gets the arch's boot timeout plus extra_seconds."""
    image = ctx.image("qemu")
    accel, why = choose_accel(ctx, image, arch, lane, kernel, initrd)
    ctx.progress.say("boot", lane.name, f"booting under {accel.upper()} ({why})")
    log = ctx.log(f"{lane.name}/{name}.log")
    log.unlink(missing_ok=True)
    timeout = arch.qemu.boot_timeout + extra_seconds
    outcome, reached = _boot(ctx, image, arch, lane, kernel, initrd, accel, log, timeout)
    stalled = None
    if reached is None and outcome.timed_out:  # a stalled machine rarely stalls twice: one more attempt
        stalled = round(outcome.seconds, 1)
        ctx.progress.say("boot", lane.name, f"no init within {timeout} s: booting once more")
        log.replace(log.with_name(f"{name}-stalled.log"))
        outcome, reached = _boot(ctx, image, arch, lane, kernel, initrd, accel, log, timeout)
    console = lane / f"{name}.log"
    console.write_text(log.read_text(errors="replace"))
    lines = console.read_text().splitlines()
    facts = {"accel": accel, "accel_reason": why, "qemu_seconds": round(outcome.seconds, 1),
             "timed_out": outcome.timed_out, "timeout": timeout,
             "seconds_to_init": round(reached, 1) if reached is not None else None,
             "qemu": qemu_argv(arch, kernel.name, initrd.name, accel), "stalled_attempt_seconds": stalled}
    name = f"boot to init ({accel.upper()})"
    tail = "\n".join(lines[-60:])
    if reached is not None:
        msg = f"reached userspace init in {reached:.1f} s under {accel.upper()}"
        if stalled is not None:
            msg += f" (a first attempt stalled without reaching init and was stopped after {stalled:.0f} s)"
        return Booted(True, Case("boot", name, Status.PASS, outcome.seconds, msg, arch=arch.name), console, facts)
    started = any(re.search(r"Linux version|Booting Linux|Decompressing", ln) for ln in lines)
    if not started and outcome.exit_code not in (0, None):
        msg = f"QEMU failed to start (exit {outcome.exit_code}): infrastructure, not the kernel"
        return Booted(False, Case("boot", name, Status.ERROR, outcome.seconds, msg, tail, arch=arch.name), console, facts)
    if outcome.timed_out:
        msg = f"the kernel did not reach userspace init within {timeout} s, in two attempts"
    else:
        msg = "the kernel stopped before reaching userspace init"
    return Booted(False, Case("boot", name, Status.FAIL, outcome.seconds, msg, tail, arch=arch.name), console, facts)


def _boot_lane(work: Work, name: str) -> Outcome:
    from pipeline.stages import userspace

    guest_seconds = sum(s.timeout for s in userspace.built_suites(work))
    work.image("qemu")
    booted = run(work.ctx, work.arch, work.lane.dir, Path(work.need("build").artifacts["kernel"]),
                 Path(work.need("initramfs").artifacts["initramfs"]), extra_seconds=guest_seconds, name=name)
    stuck = stuck_before_init(work, booted)
    if stuck:
        booted.case.status, booted.case.message = stuck
    return Outcome(booted.case.status, booted.case.message, [booted.case], booted.facts,
                   {"console": str(booted.console)})


def stuck_before_init(work: Work, booted: Booted) -> tuple[Status, str] | None:
    """A kernel that never reached init within the limit, twice: the series' fault only when the
    base's kernel did reach init on this machine with the same limits; else the machine's."""
    if booted.ok or not booted.facts.get("timed_out"):
        return None
    said = booted.case.message
    if work.lane.is_base:
        return Status.ERROR, f"{said}: the base's kernel, so the machine or the limits, not the series"
    base = work.other("boot", Role.BASE)
    if base is not None and base.status == Status.PASS:
        took = base.facts.get("seconds_to_init")
        return Status.FAIL, f"{said}, while the base's kernel reached init" + (f" in {took} s" if took else "")
    return Status.ERROR, (f"{said}, and the base's kernel did not reach init either (or was not booted): "
                          "the machine or the limits, not the series")


def stage(work: Work) -> Outcome:
    """The lane's kernel and initramfs under QEMU; /init runs the suites."""
    return _boot_lane(work, "console")


def retry(work: Work) -> Outcome:
    """The guest once more when a suite test failed, to tell flaky tests from real failures."""
    from pipeline.stages import suites

    first = work.need("boot")
    if first.status != Status.PASS:
        return Outcome(Status.SKIP, "the first boot did not reach init")
    failed = suites.failed(work, _lines(Path(first.artifacts["console"])))
    if not failed:
        return Outcome(Status.SKIP, "no suite test failed on the first run")
    if work.lane.is_base:
        return Outcome(Status.SKIP, f"{len(failed)} test(s) failed on the base: for the series that makes them "
                       "pre-existing, flaky or not, so the base's guest is not run again")
    base = work.other("boot", Role.BASE)  # the guest thread boots an arch's base lane before its series'
    console = _kept(work, base.artifacts.get("console", "")) if base is not None else None
    if console is not None and base.status in (Status.PASS, Status.FAIL):
        new = failed - suites.failed(work, _lines(console))
        if not new:
            return Outcome(Status.SKIP, f"the {len(failed)} failed test(s) fail on the base too (pre-existing): "
                           "running the guest again cannot change the answer")
        failed = new
    work.ctx.progress.say("boot", work.lane.name, f"{len(failed)} test(s) failed: running the guest once more "
                          "to tell flaky tests from real failures")
    return _boot_lane(work, "console-retry")


def _kept(work: Work, path: str) -> Path | None:
    """The base lane's console: where its result says, or (a base lane taken from the lane cache,
    whose run directory may be gone) the copy in this run's base lane directory."""
    for candidate in (Path(path), work.lane.run_dir / Role.BASE.tag(work.lane.arch.name) / Path(path).name):
        if path and candidate.is_file():
            return candidate
    return None


def _lines(console: Path) -> list[str]:
    return console.read_text(errors="replace").splitlines()


def key(work: Work) -> str:
    """The guest's inputs besides the kernel and initramfs: QEMU data and image, and the time
    the suites may take (the guest's limit is the boot timeout plus theirs)."""
    from pipeline.stages import userspace

    return repr((work.arch.qemu, work.image("qemu"), [s.timeout for s in userspace.built_suites(work)]))
