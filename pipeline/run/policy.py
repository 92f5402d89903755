"""The run's answer: its exit code and one-line verdict, decided once from the results.

- interrupted: 130 for SIGINT (Ctrl-C), 143 for SIGTERM (a cancelled job); nothing blamed; --resume finishes it
- an input error found by a stage (a config fragment that does not take, a series
  already merged in its base): 2
- a failure of the series' own stages outside the suites, or a suite test that
  regressed against the base: 1 (a test failing on the base too is not blamed)
- trouble with the machine (ERROR) or with kseries itself (MISS): 3
"""

from __future__ import annotations

from collections import Counter

from pipeline.infra.errors import EXIT_BLAMED, EXIT_INFRA, EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, EXIT_USER
from pipeline.model.lane import Role
from pipeline.model.results import Case, Kind, RunRecord, Status
from pipeline.stages.bisect import patch_named


def own_failures(record: RunRecord) -> list[Case]:
    """FAIL cases of the series' lanes outside the suites (suite tests are judged against the base)."""
    return [c for c in record.cases if c.role is Role.SERIES and c.stage != "suite" and c.status == Status.FAIL
            and not c.since]


# which failure of its own heads the verdict: what stops the series first (a patch that does not
# apply or build, a kernel that does not boot or splats), then warnings and checks; then the patch
HEADLINE = (("apply", ""), ("per-patch", "build"), ("build", ""), ("boot", ""), ("check", ""),
            ("userspace", ""), ("per-patch", "warnings"), ("coverage", ""), ("symbols", ""), ("checkpatch", ""))


def severity(case: Case) -> int:
    for i, (stage, test) in enumerate(HEADLINE):
        if case.stage == stage and (not test or case.test == test):
            return i
    return len(HEADLINE)


def placed_splats(record: RunRecord) -> dict[str, str]:
    """arch -> the patch a bisection placed the first new splat of that arch's tip at."""
    out = {}
    for s in record.stages:
        if s.stage == "bisect" and s.status == Status.PASS:
            found = sorted(k for item, k in s.facts.get("introduced", {}).items() if item.startswith("console\t"))
            if found:
                out[s.arch] = patch_named(s.facts, found[0])
    return out


def blame(own: list[Case], regressions: list, placed: dict[str, str] | None = None) -> str:
    """The headline: the first failure of the series' own (earliest patch first: what broke the
    build where), and the regressions against the base with the patches that introduced them."""
    parts = []
    if own:
        first = min(own, key=lambda c: (severity(c), c.patch or 1 << 30))
        where = f"{first.arch}: " if first.arch and first.arch not in first.message else ""
        splat = (placed or {}).get(first.arch) if first.stage == "check" else None
        parts.append(where + first.message.splitlines()[0][:300] + (f" [introduced by {splat}]" if splat else "")
                     + (f" (+{len(own) - 1} more failure(s) of its own)" if len(own) > 1 else ""))
    if regressions:
        per_patch = Counter(v.introduced for v in regressions)
        text = f"{len(regressions)} regression(s) against the base"
        if any(per_patch):
            text += " (" + "; ".join(f"{n} introduced by {k}" if k else f"{n} not bisected"
                                     for k, n in per_patch.items()) + ")"
        parts.append(text)
    return "; ".join(parts)


def decide(record: RunRecord) -> None:
    """Set record.exit_code, record.error and record.verdict."""
    inputs = [s for s in record.stages if s.fault == "input"]
    broken = [s for s in record.stages if s.status.broken and s.fault not in ("input", "interrupted")]
    regressions = [v for v in record.verdicts if v.blamed]
    if inputs:
        record.error = inputs[0].message
    elif broken and not record.error:
        record.error = broken[0].message if len(broken) == 1 else ""
    if record.interrupted:
        code = EXIT_TERMINATED if record.interrupted == "SIGTERM" else EXIT_INTERRUPTED
        text = f"interrupted by {record.interrupted} - finished stages are kept; 'invoke ci --resume' completes the run"
    elif inputs:
        code, text = EXIT_USER, f"input error - {record.error}"
    elif own_failures(record) or regressions:
        code, text = EXIT_BLAMED, "the series is blamed: " + blame(own_failures(record), regressions,
                                                             placed_splats(record))
    elif broken:
        harness = any(s.status == Status.MISS for s in broken)
        code = EXIT_INFRA
        text = ("ERROR (kseries itself failed, not the series)" if harness
                else "ERROR (infrastructure, not the series)") + (f" - {record.error}" if record.error else "")
    elif record.verdicts:
        pre = sum(1 for v in record.verdicts if v.kind is Kind.PRE_EXISTING)
        code, text = EXIT_OK, "no regressions" + (
            f" ({pre} pre-existing failure(s), also failing on the base)" if pre else "")
    else:
        code, text = EXIT_OK, "no failures"
    record.exit_code, record.verdict = code, text
