"""The real tier: real git on the real kernel tree, make in a real container, real QEMU.

Cold (fresh machine) this downloads Debian's linux-source-7.2 once and builds
lean BTF x86_64 kernels and test_progs for the base and the series (~25 min
on 2 cores); warm it reuses the caches.
"""

import dataclasses
import json
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from junitparser import JUnitXml

from ci import seedlike
from pipeline.stages import boot, source
from pipeline.model import config
from pipeline.model.series import load_patch_dir
from pipeline.infra.context import Context, cache_root
from pipeline.stages.initramfs import newc
from pipeline.infra.progress import Progress
from pipeline.infra.runner import Runner

pytestmark = pytest.mark.real
REPO = Path(__file__).resolve().parent.parent


def cases_by_suite(junit_path: Path) -> dict[str, list]:
    out: dict[str, list] = {}
    for suite in JUnitXml.fromfile(str(junit_path)):
        key = suite.name.split(".")[2]
        for case in suite:
            status = "PASS" if not case.result else type(case.result[0]).__name__
            out.setdefault(key, []).append((case.name, status, case))
    return out


@pytest.fixture(scope="module")
def ci_runs(tmp_path_factory, need_docker_module):
    from conftest import invoke

    results = tmp_path_factory.mktemp("results")
    first = invoke("ci", "--series", "page_mapped", "--arch", "x86_64", "--results", str(results))
    first_dir = (results / "latest").resolve()
    second = invoke("ci", "--series", "page_mapped", "--arch", "amd64", "--results", str(results))
    second_dir = (results / "latest").resolve()
    return first, first_dir, second, second_dir


@pytest.fixture(scope="module")
def need_docker_module():
    from conftest import docker_ok

    if not docker_ok():
        pytest.fail("the real tier needs a running Docker engine: run 'invoke setup' first")


def test_ci_x86_64_builds_boots_and_checks(ci_runs):
    first, run_dir, _, _ = ci_runs
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    suites = cases_by_suite(run_dir / "junit.xml")
    assert [s for _, s, _ in suites["apply"]] == ["PASS"] * 3
    assert [n for n, _, _ in suites["apply"]][2] == "patch 3/3: mm: remove page_mapped()"
    assert [(n, s) for n, s, _ in suites["build"]] == [("x86_64: bzImage", "PASS")]
    assert suites["boot"][0][1] == "PASS" and suites["boot"][0][0].startswith("x86_64: boot to init (")
    assert ("x86_64: console free of splats", "PASS") in [(n, s) for n, s, _ in suites["check"]]
    assert ("x86_64: build nolibc", "PASS") in [(n, s) for n, s, _ in suites["userspace"]]
    nolibc = {n: s for n, s, _ in suites["nolibc"]}
    assert len(nolibc) > 200 and nolibc["x86_64: nolibc: syscall.mmap_munmap_good"] == "PASS"
    assert [n for n, s in nolibc.items() if s not in ("PASS", "Skipped")] == []
    base = {n.split(": ")[-1]: s for n, s, _ in suites["base-nolibc"]}
    assert base["syscall.mmap_munmap_good"] == "PASS"  # the same suite ran on the base
    assert [(n, s) for n, s, _ in suites["symbols"]] == [
        ("patch 3/3: removes function page_mapped (include/linux/mm.h)", "PASS")]
    assert [s for _, s, _ in suites["checkpatch"]] == ["PASS"] * 3
    assert [(n, s) for n, s, _ in suites["per-patch"]] == [
        (f"x86_64: patch {k}/3: {what}", "PASS") for k in (1, 2, 3) for what in ("build", "warnings")]
    arena = {n.split(": ", 2)[2]: s for n, s, _ in suites["bpf_arena"]}
    for test in ("arena_htab", "arena_list", "arena_atomics", "arena_spin_lock", "arena_strsearch",
                 "verifier_arena", "verifier_arena_large"):
        assert arena.get(test) == "PASS", (test, arena.get(test))  # ran, not skipped
    assert [n for n, s in arena.items() if s != "PASS"] == []
    assert any("/" in n for n in arena)  # subtests are testcases too
    base_arena = {n.split(": ", 2)[2]: s for n, s, _ in suites["base-bpf_arena"]}
    assert base_arena.keys() == arena.keys()
    assert ("x86_64: build bpf_arena", "PASS") in [(n, s) for n, s, _ in suites["userspace"]]
    summary = (run_dir / "summary.txt").read_text()
    assert "VERDICT: no regressions" in summary and "build x86_64" in summary
    record = json.loads((run_dir / "results.json").read_text())
    userspace = next(s for s in record["stages"] if s["stage"] == "userspace" and s["role"] == "series")
    built = {c["test"]: c["message"] for c in userspace["cases"]}
    if not userspace["reused"]:  # built in this run: the base's build serves when the BTF is the same
        from pipeline.stages import elf

        base_out = next(s for s in record["stages"] if s["stage"] == "build" and s["role"] == "base")
        series_out = next(s for s in record["stages"] if s["stage"] == "build" and s["role"] == "series")
        same = {elf.section_digest(Path(s["artifacts"]["out_dir"]) / "vmlinux", ".BTF")
                for s in (base_out, series_out) if "out_dir" in s["artifacts"]}
        if len(same) == 1:  # the series' code changes leave its types alone (with some configs they do not)
            assert "reused the base's build" in built["build bpf_arena"], built
        elif len(same) == 2:
            assert built["build bpf_arena"].startswith("built in"), built
    kinds = {v["kind"] for v in record["verdicts"]}
    assert "regression" not in kinds and "ok" in kinds
    record = json.loads((run_dir / "results.json").read_text())
    assert "linux-source-7.2" in record["provenance"].get("package", "") or "upstream" in record["provenance"]["base"]
    console = (run_dir / "x86_64" / "console.log").read_text()
    assert "kseries-init: reached userspace" in console or "kseries-init: done" in console
    assert "Linux version 7.2" in console
    assert (run_dir / "x86_64" / "bzImage").stat().st_size > 500_000
    assert "CONFIG_BPF_SYSCALL=y" in (run_dir / "x86_64" / "config").read_text()
    import kcidb_io
    import xmlschema

    kcidb = json.loads((run_dir / "kcidb.json").read_text())
    kcidb_io.schema.LATEST.validate(kcidb)
    assert any(t["path"] == "bpf_arena.arena_htab" and t["status"] == "PASS" for t in kcidb["tests"])
    xmlschema.XMLSchema(str(REPO / "tests" / "schemas" / "junit.xsd")).validate(str(run_dir / "junit.xml"))


def test_dashboard_from_the_real_runs(ci_runs, tmp_path):
    from conftest import invoke

    _, run_dir, _, _ = ci_runs
    proc = invoke("dashboard", "--results", str(run_dir.parent), "--output", str(tmp_path / "site"),
                  "--db", str(tmp_path / "k.db"))
    assert proc.returncode == 0, proc.stderr
    index = (tmp_path / "site" / "index.html").read_text()
    assert index.count('class="run"') == 2 and "no regressions" in index
    page = (tmp_path / "site" / "runs" / run_dir.name / "index.html").read_text()
    assert "x86_64" in page and "bpf_arena" in page and 'href="logs/x86_64/console.log"' in page
    assert (tmp_path / "site" / "runs" / run_dir.name / "logs" / "x86_64" / "console.log").exists()
    timeline_in_a_browser(tmp_path / "site" / "runs" / run_dir.name / "index.html", run_dir / "results.json")


def timeline_in_a_browser(page_path, results):
    """The run page's timeline as Chromium lays it out: a bar per stage that ran, at its start and
    as long as it took by results.json, in its lane's row; a lock wait before its stage."""
    from playwright.sync_api import sync_playwright

    record = json.loads(results.read_text())
    ran = {}
    for s in record["stages"]:
        where = " ".join(p for p in ((("base-" if s["role"] == "base" else "") + s["stage"]), s["suite"], s["arch"]) if p)
        ran[where] = s
    chromium = shutil.which("chromium")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"]) if chromium else pw.chromium.launch()
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.goto(page_path.as_uri())
        svg = page.locator("svg.timeline")
        scale, label = float(svg.get_attribute("data-scale")), float(svg.get_attribute("data-label"))
        left = svg.bounding_box()["x"]
        bars = page.locator("svg.timeline rect[data-where]")
        assert bars.count() == len([s for s in record["stages"] if s.get("started", -1) >= 0])
        rows = {}
        for i in range(bars.count()):
            bar = bars.nth(i)
            s = ran[bar.get_attribute("data-where")]
            box = bar.bounding_box()
            wait = float(s["facts"].get("lock_wait", 0) or 0)
            assert abs(box["x"] - left - label - (s["started"] + (0 if s["reused"] else wait)) * scale) < 1.5, s
            if not s["reused"]:
                assert abs(box["width"] - max((s["seconds"] - wait) * scale, 1.0)) < 1.5, s
            rows.setdefault(("base-" if s["role"] == "base" else "") + s["arch"], set()).add(round(box["y"] + box["height"] / 2))
        assert all(len(ys) == 1 for ys in rows.values()) and len({y for ys in rows.values() for y in ys}) == len(rows)
        waits = page.locator("svg.timeline rect[data-wait]")
        assert waits.count() == len([s for s in record["stages"] if float(s["facts"].get("lock_wait", 0) or 0) >= 1
                                     and not s["reused"]])
        browser.close()


def test_second_run_does_not_rebuild(ci_runs):
    """Nothing changed: the rerun takes both lanes' results over from the first run (run/reuse.py)
    and starts no make and no QEMU; its run directory still has the kernel, config and console."""
    _, _, second, run_dir = ci_runs
    assert second.returncode == 0, second.stdout[-3000:]
    record = json.loads((run_dir / "results.json").read_text())
    by = {(s["stage"], s["role"], s["suite"]): s for s in record["stages"]}
    assert "reusing the base results cached under" in second.stdout
    for stage in ("build", "boot", "suite"):
        for role in ("base", "series"):
            found = [s for (n, r, _), s in by.items() if n == stage and r == role]
            assert found and all(s["reused"].startswith("lane cache") for s in found), found
    assert "-page_mapped-x86_64" in by[("build", "series", "")]["reused"].split(", run ")[1]  # whose results
    containers = [line for line in (run_dir / "commands.log").read_text().splitlines() if "docker run" in line]
    assert not [c for c in containers if " make " in c or "qemu-system" in c], containers
    for name in ("bzImage", "config", "console.log", "build.log"):
        assert (run_dir / "x86_64" / name).is_file(), name


def test_boot_panic_is_a_boot_fail_with_console_excerpt(ci_runs, tmp_path):
    _, run_dir, _, _ = ci_runs
    lane = tmp_path / "lane"
    lane.mkdir()
    shutil.copy(run_dir / "x86_64" / "bzImage", lane / "bzImage")
    initrd = lane / "initramfs.cpio"  # an /init that is not a program: the kernel panics
    initrd.write_bytes(newc([("dev", stat.S_IFDIR | 0o755, b""),
                             ("dev/console", stat.S_IFCHR | 0o600, b"", (5, 1)),
                             ("init", stat.S_IFREG | 0o755, b"not an ELF\n")]))
    ctx = Context(tmp_path / "run", cache_root(), Runner(tmp_path / "commands.log"), Progress())
    booted = boot.run(ctx, config.resolve_arch("x86_64"), lane, lane / "bzImage", initrd)
    assert booted.case.status.value == "FAIL"
    assert "before reaching userspace init" in booted.case.message
    assert "Kernel panic" in booted.case.detail


def test_offline_series_matches_cover_letter_and_debian_tree(ci_runs):
    spec = config.load_series("page_mapped")
    ctx = Context(Path("/tmp/kseries-test-run"), cache_root(), Runner(), Progress())
    series = load_patch_dir(spec.patch_dir, spec.title, "offline")
    base = source.ensure_base(ctx, spec)
    if "package-commit" not in base.provenance:
        pytest.skip("upstream served the base; there is no Debian stand-in to compare with")
    pkg = base.provenance["package-commit"]
    tip = source.apply_to_tree(ctx, base.repo, f"{base.commit}^{{tree}}", [p.path for p in series.patches])
    pkg_tree = subprocess.run(["git", "-C", str(base.repo), "rev-parse", f"{pkg}^{{tree}}"],
                              capture_output=True, text=True, check=True).stdout.strip()
    assert tip == pkg_tree  # forward application gives back exactly the Debian tree
    stat_out = subprocess.run(["git", "-C", str(base.repo), "diff", "--stat", base.commit, pkg],
                              capture_output=True, text=True, check=True).stdout
    assert stat_out.splitlines()[-1].strip() == "5 files changed, 7 insertions(+), 17 deletions(-)"
    def uses(commit):
        out = subprocess.run(["git", "-C", str(base.repo), "grep", "-c", "-w", "page_mapped", commit],
                             capture_output=True, text=True).stdout
        return {line.split(":")[1]: int(line.split(":")[2]) for line in out.splitlines()}

    assert uses(base.commit) == {"arch/sh/mm/cache-sh4.c": 1, "include/linux/mm.h": 1,
                                 "kernel/bpf/arena.c": 1, "mm/memory.c": 1, "mm/rmap.c": 4}
    assert uses(pkg) == {}


SEED_PATCHES = sorted((REPO / "configs" / "series" / "page_mapped").glob("*.patch"))


def renumber(text: str, label: str) -> str:
    """A seed patch mail as patch `label` ("k/n") of another series."""
    old = text[text.index("[PATCH"):].split("]")[0] + "]"
    return text.replace(old, f"[PATCH {label}]", 1)


def run_test_series(tmp_path: Path, name: str, mails: list[str], arch: str = "x86_64", arch_edit=None,
                    series_edit=None, extra: tuple = ()):
    """`invoke ci` on a test-only series (ci/seedlike.py: the seed's YAML with these patch mails and
    a thread of its own) in a copy of configs/ (arch_edit: a change
    to the arch's YAML text, such as a lowered limit; series_edit: one to the series' YAML
    text; extra: more `invoke ci` arguments). A second call with the same tmp_path runs again."""
    from conftest import invoke

    configs = tmp_path / "configs"
    results = tmp_path / "results"
    if not configs.exists():
        seedlike.write(configs, name, mails)
        if arch_edit:
            path = configs / "arches" / f"{arch}.yaml"
            path.write_text(arch_edit(path.read_text()))
        if series_edit:
            path = configs / "series" / f"{name}.yaml"
            path.write_text(series_edit(path.read_text()))
    proc = invoke("ci", "--series", name, "--arch", arch, "--results", str(results), *extra,
                  env=seedlike.env(configs))
    return proc, results


def test_conflicting_series_is_blamed_at_the_right_patch(tmp_path):
    text = renumber(SEED_PATCHES[2].read_text(), "2/2")
    # the context no longer matches the base's rmap.c comment
    text = text.replace(" * long as we observe", " * long as we really observe")
    proc, results = run_test_series(tmp_path, "broken", [renumber(SEED_PATCHES[0].read_text(), "1/2"), text])
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr
    suites = cases_by_suite(results / "latest" / "junit.xml")
    assert [s for _, s, _ in suites["apply"]] == ["PASS", "Failure"]
    failure = suites["apply"][1][2].result[0]
    assert "patch 2/2 'mm: remove page_mapped()'" in failure.message and "mm/rmap.c" in failure.message
    assert suites["build"][0][1] == "Skipped"
    assert "VERDICT: the series is blamed" in proc.stdout


def test_removal_applied_before_its_callers_names_them(ci_runs, tmp_path):
    """The static check on the real tree: patch 3 (the removal) moved first."""
    from pipeline.stages import symbols

    spec = config.load_series("page_mapped")
    ctx = Context(tmp_path / "run", cache_root(), Runner(tmp_path / "commands.log"), Progress())
    series = load_patch_dir(spec.patch_dir, spec.title, "offline")
    base = source.ensure_base(ctx, spec)
    reordered = [series.patches[2], series.patches[0], series.patches[1]]
    commits, parent = [], base.commit
    for patch in reordered:
        tree = source.apply_to_tree(ctx, base.repo, f"{parent}^{{tree}}", [patch.path])
        parent = ctx.runner.git(base.repo, "commit-tree", tree, "-p", parent, "-m", patch.subject,
                                env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                                     "GIT_COMMITTER_EMAIL": "t@t"}).output.strip()
        commits.append(parent)
    labels = [dataclasses.replace(p, index=i) for i, p in enumerate(reordered, 1)]
    cases = symbols.check(ctx, base.repo, labels, commits)
    assert [(c.name, c.status.value) for c in cases] == [
        ("patch 1/3: removes function page_mapped (include/linux/mm.h)", "FAIL")]
    left = [line.split(":")[0] for line in cases[0].detail.splitlines()]
    assert left == ["arch/sh/mm/cache-sh4.c", "kernel/bpf/arena.c"]
    assert "2 reference(s) to page_mapped remain after patch 1/3, first arch/sh/mm/cache-sh4.c:" in cases[0].message


def unused_variable_patch(repo: Path, commit: str, path: str, function: str, index: str) -> str:
    """A real patch to a real file: an unused local variable at the top of `function`."""
    import difflib

    old = subprocess.run(["git", "-C", str(repo), "show", f"{commit}:{path}"], capture_output=True,
                         text=True, check=True).stdout.splitlines(keepends=True)
    at = old.index(function + "\n") + 2  # after the opening brace
    new = old[:at] + ["\tint kseries_unused;\n"] + old[at:]
    diff = "".join(difflib.unified_diff(old, new, f"a/{path}", f"b/{path}"))
    return (f"From: Test <t@example.org>\nSubject: [PATCH {index}] mm: add an unused variable\n\n"
            f"Adds a warning on purpose.\n---\ndiff --git a/{path} b/{path}\n{diff}")


def test_reordered_series_breaks_bisection_and_a_new_warning_is_attributed(ci_runs, tmp_path):
    """Real per-patch builds of a test-only series: the removal first, then its callers'
    conversions, then a patch that adds one unused variable. The base is the seed's, so
    its results come from the lane cache."""
    base = source.ensure_base(Context(tmp_path / "run", cache_root(), Runner(tmp_path / "c.log"), Progress()),
                              config.load_series("page_mapped"))
    mails = [renumber(SEED_PATCHES[k].read_text(), f"{i}/4") for i, k in enumerate((2, 0, 1), 1)]
    mails.append(unused_variable_patch(base.repo, base.commit, "mm/util.c", "void kfree_const(const void *x)", "4/4"))
    proc, results = run_test_series(tmp_path, "reordered", mails)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr
    assert "reusing the base results cached under" in proc.stdout  # the seed's base, not rebuilt
    suites = cases_by_suite(results / "latest" / "junit.xml")
    assert [s for _, s, _ in suites["apply"]] == ["PASS"] * 4
    bisect = {n: (s, c) for n, s, c in suites["per-patch"]}
    assert [(n, s) for n, (s, _) in bisect.items()] == [
        ("x86_64: patch 1/4: build", "Failure"), ("x86_64: patch 1/4: warnings", "Skipped"),
        ("x86_64: patch 2/4: build", "Failure"), ("x86_64: patch 2/4: warnings", "Skipped"),
        ("x86_64: patch 3/4: build", "PASS"), ("x86_64: patch 3/4: warnings", "PASS"),
        ("x86_64: patch 4/4: build", "PASS"), ("x86_64: patch 4/4: warnings", "Failure")]
    broke = bisect["x86_64: patch 1/4: build"][1].result[0]
    assert "patch 1/4 breaks the build on x86_64" in broke.message
    assert "kernel/bpf/arena.c" in broke.message and "page_mapped" in broke.message
    warned = bisect["x86_64: patch 4/4: warnings"][1].result[0]
    assert "patch 4/4 adds 1 warning(s) on x86_64: mm/util.c" in warned.message
    assert "unused variable 'kseries_unused'" in warned.message
    assert len(warned.text.strip().splitlines()) == 1
    symbols = [(n, s) for n, s, _ in suites["symbols"]]
    assert symbols == [("patch 1/4: removes function page_mapped (include/linux/mm.h)", "Failure")]
    assert [s for _, s, _ in suites["build"]] == ["PASS"]  # the tip builds: only bisection is broken
    # the headline names the patch that broke the build first, its arch and the compiler's error
    assert "VERDICT: the series is blamed: patch 1/4 breaks the build on x86_64: make exited" in proc.stdout
    assert "implicit declaration of function 'page_mapped'" in proc.stdout.split("VERDICT:")[1].splitlines()[0]


def test_sigint_mid_build_then_resume_completes_without_redoing_finished_stages(ci_runs, tmp_path):
    """A real run stopped by SIGINT while make runs in its container: exit 130, the container is
    gone, results.json/junit/summary are written; --resume then completes it in the same run
    directory, reusing what had finished and rerunning the interrupted build."""
    import os
    import signal
    import subprocess
    import sys
    import time

    results = tmp_path / "results"
    proc = subprocess.Popen([sys.executable, "-m", "invoke", "ci", "--series", "page_mapped", "--arch", "x86_64",
                             "--results", str(results), "--rerun-tests"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    deadline = time.monotonic() + 600
    run_dir = None
    while time.monotonic() < deadline and proc.poll() is None:
        found = [p for p in results.glob("*/results.json")] if results.exists() else []
        if found:
            run_dir = found[0].parent
            stages = json.loads(found[0].read_text() or "{}").get("stages", [])
            if any(s["stage"] == "reuse" and s["role"] == "series" for s in stages):
                break  # the series' build is next: give make a moment to start
        time.sleep(0.5)
    time.sleep(4)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 130, out[-3000:]
    first = json.loads((run_dir / "results.json").read_text())
    assert first["interrupted"] == "SIGINT" and first["exit_code"] == 130
    cut = [s for s in first["stages"] if s["fault"] == "interrupted"]  # the stage(s) running at the time
    assert cut and all(s["status"] == "ERROR" for s in cut), first["stages"]
    assert (run_dir / "junit.xml").exists() and "VERDICT: interrupted" in (run_dir / "summary.txt").read_text()
    images = subprocess.run(["docker", "ps", "--format", "{{.Image}}"], capture_output=True, text=True,
                            check=True).stdout.split()
    assert [i for i in images if i.startswith("kseries/")] == [], "a container outlived the interrupted run"
    assert "Traceback" not in out

    again = subprocess.run([sys.executable, "-m", "invoke", "ci", "--resume", str(run_dir), "--results",
                            str(results)], cwd=REPO, capture_output=True, text=True, timeout=1800,
                           env={**os.environ})
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    second = json.loads((run_dir / "results.json").read_text())
    by = {(s["stage"], s["role"], s["suite"]): s for s in second["stages"]}
    assert by[("checkpatch", "series", "")]["reused"] == "an earlier attempt of this run"
    assert by[("symbols", "series", "")]["reused"] == "an earlier attempt of this run"
    for s in cut:  # what was interrupted ran again, and passed
        again_s = by[(s["stage"], s["role"], s["suite"])]
        assert again_s["reused"] == "" and again_s["status"] == "PASS", again_s
    assert by[("boot", "series", "")]["status"] == "PASS"
    assert not second["interrupted"] and "VERDICT: no regressions" in again.stdout


def test_config_derivation_compiles_a_file_the_lean_config_leaves_out(ci_runs, tmp_path):
    """A one-patch series to lib/test_hexdump.c, which x86_64's lean config does not compile (it is
    behind CONFIG_TEST_HEXDUMP, inside the RUNTIME_TESTING_MENU block). With derivation off, the
    coverage testcase fails naming the file, the symbol and what it needs; with it on, both are
    enabled in a derived fragment, the file is compiled, and the kernel runs the test at boot.
    The test series' kernel config is the seed's (its suites' fragments named in its YAML), so its
    O= directory starts from the base's and only what the derived symbols reach is compiled."""
    import difflib

    base = source.ensure_base(Context(tmp_path / "run", cache_root(), Runner(tmp_path / "c.log"), Progress()),
                              config.load_series("page_mapped"))
    path = "lib/test_hexdump.c"
    old = subprocess.run(["git", "-C", str(base.repo), "show", f"{base.commit}:{path}"], capture_output=True,
                         text=True, check=True).stdout.splitlines(keepends=True)
    at = next(i for i, line in enumerate(old) if line.startswith("#include"))
    new = old[:at] + ["/* compiled only when its Kconfig symbol is enabled */\n"] + old[at:]
    diff = "".join(difflib.unified_diff(old, new, f"a/{path}", f"b/{path}"))
    mail = (f"From: Test <t@example.org>\nSubject: [PATCH] lib: note how test_hexdump is built\n\n"
            f"A change to a file the lean configs do not compile.\n\nSigned-off-by: Test <t@example.org>\n"
            f"---\ndiff --git a/{path} b/{path}\n{diff}")

    def only_boot(text: str) -> str:  # no suite, so no base lane; the seed's config all the same
        return (text.replace("tests: [boot, console, nolibc, bpf_arena, kunit, kselftest]", "tests: [boot, console]")
                .replace("fragments: [bpf-syscall.config]",
                         "fragments: [bpf-syscall.config, nolibc.config, bpf-arena.config]"))

    proc, results = run_test_series(tmp_path, "derivable", [mail], series_edit=only_boot, extra=("--no-derive",))
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr
    off = {n: c for n, _, c in cases_by_suite(results / "latest" / "junit.xml")["coverage"]}
    failure = off[path].result[0].message
    assert "CONFIG_TEST_HEXDUMP (lib/Makefile)" in failure, failure
    assert "x86_64: CONFIG_TEST_HEXDUMP is off (needs CONFIG_RUNTIME_TESTING_MENU)" in failure, failure
    assert "config derivation is off" in failure, failure

    proc, results = run_test_series(tmp_path, "derivable", [mail])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    run_dir = (results / "latest").resolve()
    record = json.loads((run_dir / "results.json").read_text())
    coverage = [c for s in record["stages"] if s["stage"] == "coverage" for c in s["cases"]]
    assert [(c["test"], c["status"], c["message"]) for c in coverage] == [(path, "PASS", "compiled on x86_64")]
    derived = (run_dir / "x86_64" / "derived.config").read_text()
    assert "CONFIG_TEST_HEXDUMP=y" in derived and "CONFIG_RUNTIME_TESTING_MENU=y" in derived
    assert any(k == "derived config x86_64" and "CONFIG_TEST_HEXDUMP=y" in v for k, v in record["provenance"].items())
    build = next(s for s in record["stages"] if s["stage"] == "build")
    assert build["facts"]["kbuild_steps"] < 200, build  # what the two symbols reach, not a full rebuild
    assert "test_hexdump: all" in (run_dir / "x86_64" / "console.log").read_text()  # built in, it ran at boot


def edited_series(repo: Path, commit: str, path: str, edits: list, subjects: list[str]) -> list[str]:
    """Real patch mails k/n to one real file: edit k (text -> text) applied to the text after
    patch k-1; every edit must change the file."""
    import difflib

    texts = [subprocess.run(["git", "-C", str(repo), "show", f"{commit}:{path}"], capture_output=True, text=True,
                            check=True).stdout]
    for edit in edits:
        texts.append(edit(texts[-1]))
        assert texts[-1] != texts[-2], f"edit {len(texts) - 1} changed nothing in {path}"
    mails = []
    for i, subject in enumerate(subjects, 1):
        diff = "".join(difflib.unified_diff(texts[i - 1].splitlines(keepends=True),
                                            texts[i].splitlines(keepends=True), f"a/{path}", f"b/{path}"))
        mails.append(f"From: Test <t@example.org>\nSubject: [PATCH {i}/{len(subjects)}] {subject}\n\n"
                     f"A test patch.\n\nSigned-off-by: Test <t@example.org>\n---\ndiff --git a/{path} b/{path}\n{diff}")
    return mails


def arena_series(repo: Path, commit: str) -> list[str]:
    """Three real patches to kernel/bpf/arena.c: 1/3 prints a WARNING whenever an arena is made
    (a new splat), 2/3 makes every allocation of two pages or more fail (verifier_arena's
    multi-page subtests regress), 3/3 only adds a comment."""
    head = "static struct bpf_map *arena_map_alloc(union bpf_attr *attr)\n{\n"
    return edited_series(repo, commit, "kernel/bpf/arena.c", [
        lambda t: t.replace(head + "\tstruct vm_struct *kern_vm;\n", head + "\tstruct vm_struct *kern_vm;\n\n"
                            "\tWARN_ONCE(1, \"kseries test: a splat from patch 1\\n\");\n", 1),
        lambda t: t.replace("\tif (page_cnt > page_cnt_max)\n\t\treturn 0;\n",
                            "\tif (page_cnt > page_cnt_max || page_cnt > 1)\n\t\treturn 0;\n", 1),
        lambda t: t.replace(head, "/* an arena map: its pages are allocated on demand */\n" + head, 1)],
        ["bpf: arena: warn when an arena is made", "bpf: arena: allocate one page at a time",
         "bpf: arena: document arena_map_alloc"])


def test_a_regression_and_a_splat_are_bisected_to_their_patches(ci_runs, tmp_path):
    """The tip of a real 3-patch series shows a new splat and regressed verifier_arena subtests; the
    kernels of patches 1/3 and 2/3 are booted (narrowed to what regressed, here every suite since
    a splat may come from any test) and the verdict names patch 2/3 for every regressed test and
    patch 1/3 for the splat. The base's results come from the cache (the seed's)."""
    base = source.ensure_base(Context(tmp_path / "run", cache_root(), Runner(tmp_path / "c.log"), Progress()),
                              config.load_series("page_mapped"))
    proc, results = run_test_series(tmp_path, "arena_bisect", arena_series(base.repo, base.commit))
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr
    assert "reusing the base results cached under" in proc.stdout
    run_dir = (results / "latest").resolve()
    record = json.loads((run_dir / "results.json").read_text())
    blamed = [v for v in record["verdicts"] if v["kind"] in ("regression", "gone")]
    assert blamed, record["verdicts"]
    assert {v["introduced"] for v in blamed} == {"patch 2/3 'bpf: arena: allocate one page at a time'"}
    assert {v["suite"] for v in blamed} == {"bpf_arena"}, blamed  # nolibc does not allocate arena pages
    stage = next(s for s in record["stages"] if s["stage"] == "bisect")
    assert stage["status"] == "PASS" and stage["facts"]["boots"] == 2, stage
    splats = [k for k, v in stage["facts"]["introduced"].items() if k.startswith("console\t") and v == 1]
    assert len(splats) >= 1 and any("WARNING" in s or "kseries test" in s for s in splats), stage
    summary = (run_dir / "summary.txt").read_text()
    assert f"introduced by patch 2/3 'bpf: arena: allocate one page at a time': {len(blamed)} regression(s)" in summary
    assert "SPLAT x86_64: introduced by patch 1/3 'bpf: arena: warn when an arena is made'" in summary
    assert "VERDICT: the series is blamed" in summary and "introduced by patch 2/3" in record["verdict"]
    assert "[introduced by patch 1/3 'bpf: arena: warn when an arena is made']" in record["verdict"]  # the splat
    assert (run_dir / "x86_64" / "bisect-x86_64" / "console-patch1.log").is_file()


def test_a_broken_tip_counts_no_regression_and_an_objtool_warning_is_attributed(ci_runs, tmp_path):
    """Real per-patch builds of a 3-patch series to mm/util.c: 1/3 calls a function with user
    access enabled (objtool's uaccess check warns on mm/util.o; the compiler is silent), 2/3
    breaks the build, 3/3 only adds a comment. The warning is 1/3's, the error 2/3's, 3/3 is
    "still broken since patch 2/3", and the tests that could not run on the broken tip are
    "not run", never regressions: the headline counts none."""
    base = source.ensure_base(Context(tmp_path / "run", cache_root(), Runner(tmp_path / "c.log"), Progress()),
                              config.load_series("page_mapped"))
    anchor = "void kfree_const(const void *x)\n"
    helpers = ("static noinline void kseries_helper(void)\n{\n\tbarrier();\n}\n\n"
               "static __used void kseries_user_access(void)\n{\n\t__uaccess_begin();\n"
               "\tkseries_helper();\n\t__uaccess_end();\n}\n\n")
    mails = edited_series(base.repo, base.commit, "mm/util.c", [
        lambda t: t.replace(anchor, helpers + anchor, 1),
        lambda t: t.replace(anchor, "int kseries_broken(void);\nint kseries_broken(void)\n{\n"
                            "\treturn kseries_undeclared;\n}\n\n" + anchor, 1),
        lambda t: t.replace(anchor, "/* a harmless comment */\n" + anchor, 1)],
        ["mm: call a helper with user access enabled", "mm: break the build", "mm: add a comment"])
    proc, results = run_test_series(tmp_path, "objtool_break", mails)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr
    suites = cases_by_suite(results / "latest" / "junit.xml")
    steps = {n: (s, c.result[0].message if c.result else "") for n, s, c in suites["per-patch"]}
    assert steps["x86_64: patch 1/3: build"][0] == "PASS", steps
    status, message = steps["x86_64: patch 1/3: warnings"]
    assert status == "Failure" and "patch 1/3 adds 1 warning(s) on x86_64: mm/util.o: warning: objtool:" in message, steps
    assert "call to kseries_helper() with UACCESS enabled" in message, message
    status, message = steps["x86_64: patch 2/3: build"]
    assert status == "Failure" and "patch 2/3 breaks the build on x86_64" in message and "kseries_undeclared" in message
    status, message = steps["x86_64: patch 3/3: build"]
    assert status == "Failure" and message.startswith("still broken since patch 2/3 on x86_64"), message
    run_dir = (results / "latest").resolve()
    record = json.loads((run_dir / "results.json").read_text())
    assert not [v for v in record["verdicts"] if v["kind"] in ("regression", "gone")], record["verdicts"]
    unrun = [v for v in record["verdicts"] if v["kind"] == "not-run"]
    # every suite the base ran (nolibc, bpf_arena and the mm kselftests mm/util.c selects) is not run
    ran = {s["suite"] for s in record["stages"] if s["stage"] == "suite" and s["role"] == "base"
           and s["status"] in ("PASS", "FAIL")}
    assert {"nolibc", "bpf_arena"} <= ran and {v["suite"] for v in unrun} == ran, record["verdicts"]
    assert {v["excerpt"] for v in unrun} == {"not run: the x86_64 build fails since patch 2/3"}
    assert {v["kind"] for v in record["verdicts"]} <= {"not-run", "skipped"}  # base SKIPs stay skipped
    headline = proc.stdout.split("VERDICT:")[1].splitlines()[0]
    assert "patch 2/3 breaks the build on x86_64" in headline and "kseries_undeclared" in headline, headline
    assert "regression" not in headline, headline


def test_a_reworded_v2_takes_the_tested_results_and_rerun_tests_runs_them_again(ci_runs, tmp_path):
    """The seed series again with every changelog reworded, as a v2 under another name: its tip and
    every per-patch tree are the seed's, so nothing is built, booted or tested again; the report
    names its own subjects and the run the results came from. With --rerun-tests the seed's series
    lane boots and tests again, the base's results are still taken."""
    import time

    first, first_dir, _, _ = ci_runs
    assert first.returncode == 0, first.stdout[-3000:]
    mails = seedlike.reworded()
    start = time.monotonic()
    proc, results = run_test_series(tmp_path, "reworded", mails)
    seconds = time.monotonic() - start
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    run_dir = (results / "latest").resolve()
    record = json.loads((run_dir / "results.json").read_text())
    by = {(s["stage"], s["role"], s["suite"]): s for s in record["stages"]}
    for stage in ("build", "boot", "check", ("suite", "nolibc"), ("suite", "bpf_arena")):
        name, suite = stage if isinstance(stage, tuple) else (stage, "")
        assert by[(name, "series", suite)]["reused"].startswith("lane cache"), by[(name, "series", suite)]
    assert "was built, booted and tested on the same base" in by[("reuse", "series", "")]["message"]
    assert by[("steps", "series", "")]["facts"]["built"] == 0  # every state's record is the seed's
    assert [c["test"] for c in by[("apply", "series", "")]["cases"]][2] == "mm: remove page_mapped()"
    assert (run_dir / "x86_64" / "console.log").is_file() and (run_dir / "x86_64" / "bzImage").is_file()
    assert "VERDICT: no regressions" in proc.stdout
    print(f"reworded v2: {seconds:.0f} s")
    assert seconds < 120, f"a reworded v2 took {seconds:.0f} s"

    from conftest import invoke  # the seed itself, whose kept O= is current: make has nothing to do

    proc = invoke("ci", "--series", "page_mapped", "--arch", "x86_64", "--results", str(tmp_path / "again"),
                  "--rerun-tests")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    again = json.loads(((tmp_path / "again" / "latest").resolve() / "results.json").read_text())
    boot = next(s for s in again["stages"] if s["stage"] == "boot" and s["role"] == "series")
    assert boot["reused"] == "" and boot["status"] == "PASS", boot  # booted and tested afresh
    assert all(s["reused"] for s in again["stages"] if s["stage"] == "boot" and s["role"] == "base")  # the reference
    assert again["provenance"]["earlier test results"] == "not taken (--rerun-tests)"


def test_the_tip_is_booted_before_its_intermediate_state_builds_in_a_tree_of_its_own(ci_runs, tmp_path):
    """A new two-patch series (a note in kernel/bpf/arena.c, then one in mm/util.c; new each time, so
    no record holds them): the tip builds, boots and is tested first; then patch 1/2 builds in the
    steps' own worktree and O= (<series>+steps-<arch>, seeded from the base's: an incremental build), and
    the tip's worktree is never moved from the tip."""
    ctx = Context(tmp_path / "ctx", cache_root(), Runner(), Progress())
    base = source.ensure_base(ctx, config.load_series(seedlike.SEED))
    mails = [seedlike.note_patch(base.repo, base.commit, "kernel/bpf/arena.c", "bpf: arena: a note", "PATCH 1/2"),
             seedlike.note_patch(base.repo, base.commit, "mm/util.c", "mm: util: a note", "PATCH 2/2")]
    proc, results = run_test_series(tmp_path, "tipfirst", mails)
    assert proc.returncode == 0 and "VERDICT: no regressions" in proc.stdout, proc.stdout[-3000:] + proc.stderr
    said = proc.stdout.splitlines()
    booted = min(i for i, line in enumerate(said) if " boot " in line and " x86_64 " in line and "booting" in line
                 and "base" not in line)
    stepped = min(i for i, line in enumerate(said) if "patch 1/2: checking out" in line)
    assert booted < stepped, "\n".join(said[min(booted, stepped):max(booted, stepped) + 1])
    record = json.loads(((results / "latest").resolve() / "results.json").read_text())
    by = {(s["stage"], s["role"]): s for s in record["stages"] if not s["suite"]}
    assert by[("steps", "series")]["facts"]["built"] == 1 and not by[("build", "series")]["reused"]
    step = next(c for c in by[("per-patch", "series")]["cases"] if c["patch"] == 1 and c["test"] == "build")
    assert step["status"] == "PASS", step
    kbuild = int(step["message"].split("(")[1].split()[0])
    assert kbuild < 300, step["message"]  # arena.c and the link, on the base's objects: not a full build
    commits = by[("apply", "series")]["artifacts"]["commits"]
    head = lambda tree: subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True,  # noqa: E731
                                       text=True, check=True).stdout.strip()
    assert head(cache_root() / "trees" / "tipfirst") == commits[1]
    assert head(cache_root() / "trees" / "tipfirst+steps-x86_64") == commits[0]
    assert (cache_root() / "build" / "tipfirst+steps" / "x86_64" / "out" / ".config").is_file()
