"""summary.txt: stage timings, testcases, provenance, the comparison with the base, the verdict."""

from __future__ import annotations

from pipeline.infra.errors import EXIT_BLAMED, EXIT_INFRA
from pipeline.model.results import Kind, RunRecord, Status
from pipeline.report import timeline
from pipeline.run.policy import own_failures
from pipeline.stages.bisect import patch_named


def render(record: RunRecord) -> str:
    """summary.txt: everything, every testcase included."""
    lines = [f"kseries run {record.run_id}: {record.title} ({record.series})",
             f"arches: {', '.join(record.arches)}", "", "provenance:"]
    lines += [f"  {k}: {v}" for k, v in record.provenance.items()]
    lines += stages(record) + timeline.lines(record) + ["", "testcases:"]
    lines += [_testcase(c) for c in record.cases]
    return "\n".join(lines + _ending(record)) + "\n"


def terminal(record: RunRecord, run_dir) -> str:
    """What a person at the terminal reads at the end: the stages, the counts, every testcase that did
    not pass and why, the verdict, and where the full report is (summary.txt lists every testcase)."""
    lines = stages(record) + timeline.lines(record)
    shown = [c for c in record.cases if c.status != Status.PASS or c.flaky]
    if shown:
        lines += ["", f"testcases that did not pass ({len(shown)} of {len(record.cases)}):"]
        lines += [_testcase(c) for c in shown]
    lines += _ending(record)
    lines += [f"full report: {run_dir / 'summary.txt'} (every testcase), {run_dir / 'junit.xml'}, "
              f"{run_dir / 'kcidb.json'}, logs in {run_dir / 'logs'}"]
    return "\n".join(lines) + "\n"


def stages(record: RunRecord) -> list[str]:
    lines = ["", "stages:"]
    for s in record.stages:
        reused = f" [reused: {s.reused}]" if s.reused else ""
        lines.append(f"  {s.where:<24} {s.status.value:<5} {s.seconds:7.1f} s  {s.message}{reused}")
    return lines


def _testcase(c) -> str:
    return f"  {c.status.value:<5} [{c.role.tag(c.group)}] {c.name}" + (f" - {c.message}" if c.message else "")


def _ending(record: RunRecord) -> list[str]:
    counts = {s: 0 for s in Status}
    for case in record.cases:
        counts[case.status] += 1
    lines = ["", "  " + ", ".join(f"{counts[s]} {s.value.lower()}" for s in Status)]
    lines += comparison(record)
    lines += ["", f"VERDICT: {record.verdict}"]
    lines += details(record)
    lines.append(f"total {record.seconds:.0f} s; results in {record.run_id}")
    return lines


def _line(c) -> str:
    return f"  {c.arch or '-'}: [{c.role.tag(c.group)}] {c.name}: {c.message}"


def details(record: RunRecord) -> list[str]:
    """What the verdict line stands for: the regressions and failures blamed, the errors not blamed."""
    broken = [c for c in record.cases if c.status.broken]
    lines = []
    if record.exit_code == EXIT_BLAMED:
        lines += regressions_by_patch(record)
        lines += [_line(c) for c in own_failures(record)]
        lines += splats_by_patch(record)
        if broken:
            lines.append("  (also infrastructure errors, not blamed on the series:)")
    if record.exit_code in (EXIT_BLAMED, EXIT_INFRA):
        lines += [_line(c) for c in broken if c.message != record.error or record.exit_code == EXIT_BLAMED]
    return lines


def by_patch(record: RunRecord) -> dict[str, list]:
    """The blamed tests grouped under the patch that introduced them ("" when not bisected),
    earliest patch first: the summary and the reply mail list them so."""
    groups: dict[str, list] = {}
    for v in sorted((v for v in record.verdicts if v.blamed), key=lambda v: v.patch or 1 << 30):
        groups.setdefault(v.introduced, []).append(v)
    return groups


def regressions_by_patch(record: RunRecord) -> list[str]:
    lines = []
    for introduced, group in by_patch(record).items():
        lines.append(f"  introduced by {introduced}: {len(group)} regression(s)" if introduced else
                     f"  not bisected: {len(group)} regression(s)")
        for v in group:
            first = (v.excerpt.splitlines() or [""])[0][:200]
            lines.append(f"    REGRESSION {v.arch}: [{v.suite}] {v.test}: base {v.base} -> series {v.series}: {first}")
    return lines


def splats_by_patch(record: RunRecord) -> list[str]:
    """The new splats a bisection placed: which patch's kernel printed each first."""
    lines = []
    for s in record.stages:
        if s.stage != "bisect" or s.status != Status.PASS:
            continue
        for item, k in s.facts.get("introduced", {}).items():
            suite, _, what = item.partition("\t")
            if suite == "console":
                lines.append(f"  SPLAT {s.arch}: introduced by {patch_named(s.facts, k)}: {what[:160]}")
    return lines


def comparison(record: RunRecord) -> list[str]:
    """The series against the base, test by test: counts per kind, then everything not 'ok'."""
    if not record.verdicts:
        return []
    kinds: dict[str, int] = {}
    for v in record.verdicts:
        kinds[v.kind.value] = kinds.get(v.kind.value, 0) + 1
    lines = ["", "against the base (test by test):",
             "  " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))]
    for v in record.verdicts:
        if v.kind not in (Kind.OK, Kind.SKIPPED):
            first = (v.excerpt.splitlines() or [""])[0][:160]
            lines.append(f"  {v.kind.value:<12} {v.arch}: [{v.suite}] {v.test} "
                         f"(base {v.base}, series {v.series})" + (f": {first}" if first else ""))
    return lines
