"""Where a run's time went: every stage on a time axis, one row per lane (and one for the stages
the lanes share), so a slow run explains itself at a glance. The dashboard's run page draws it
(svg); summary.txt says the same in numbers (lines): when each thread was busy, waited for a
lock another run or lane held, or took a stage from a cache.

A stage's start is kept in its result (model/results.py StageResult.started, seconds into the
attempt that ran it; a resumed run's earlier stages have their own attempt's times).
"""

from __future__ import annotations

from html import escape

from pipeline.model.lane import Role
from pipeline.model.results import RunRecord, StageResult, Status

COLOURS = {Status.PASS: "#3a9d5d", Status.FAIL: "#c0392b", Status.ERROR: "#e67e22", Status.MISS: "#e67e22",
           Status.SKIP: "#b0b0b0"}
WAIT = "#f1c40f"
ROW, LABEL, WIDTH = 22, 170, 900  # px: a row's height, the label column, the time axis


def rows(record: RunRecord) -> list[tuple[str, list[StageResult]]]:
    """(row name, its timed stages in start order): the shared stages first, then each lane."""
    out: dict[str, list[StageResult]] = {}
    for s in record.stages:
        if s.started < 0:
            continue
        name = s.role.tag(s.arch) if s.arch else "series (shared)"
        out.setdefault(name, []).append(s)
    return [(name, sorted(stages, key=lambda s: s.started)) for name, stages in out.items()]


def span(record: RunRecord) -> float:
    return max((s.started + (0 if s.reused else s.seconds) for s in record.stages if s.started >= 0), default=0.0)


def label(s: StageResult) -> str:
    return " ".join(p for p in (s.role.tag(s.stage) if s.role is Role.BASE else s.stage, s.suite) if p)


def svg(record: RunRecord) -> str:
    """The run's stages as bars on a time axis: colour by status, a lock wait in yellow before
    its stage, a stage taken from a cache as a hollow tick (it cost no time)."""
    table = rows(record)
    total = max(span(record), 1.0)
    scale = WIDTH / total
    height = ROW * (len(table) + 1) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{LABEL + WIDTH + 20}" '
             f'height="{height}" font-family="sans-serif" font-size="11" data-scale="{scale}" data-label="{LABEL}">']
    step = next(s for s in (10, 30, 60, 120, 300, 600, 1200, 3600, 10**9) if total / s <= 12)
    for t in range(0, int(total) + 1, step):
        x = LABEL + t * scale
        parts.append(f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height - ROW}" stroke="#eee"/>'
                     f'<text x="{x:.1f}" y="{height - 6}" fill="#666">{t} s</text>')
    for i, (name, stages) in enumerate(table):
        y = i * ROW + 4
        parts.append(f'<text x="4" y="{y + 14}">{escape(name)}</text>')
        for s in stages:
            x = LABEL + s.started * scale
            data = (f'data-where="{escape(s.where)}" data-start="{s.started}" '
                    f'data-seconds="{0 if s.reused else s.seconds}"')
            tip = escape(f"{label(s)}: {s.status.value} in {s.seconds:.1f} s, from +{s.started:.0f} s"
                         + (f" (reused: {s.reused})" if s.reused else "") + (f" - {s.message}" if s.message else ""))
            if s.reused:
                parts.append(f'<rect {data} data-reused="1" x="{x:.1f}" y="{y + 3}" width="3" height="{ROW - 8}" fill="none" '
                             f'stroke="{COLOURS[s.status]}"><title>{tip}</title></rect>')
                continue
            wait = float(s.facts.get("lock_wait", 0) or 0)
            if wait:
                parts.append(f'<rect data-wait="{escape(s.where)}" x="{x:.1f}" y="{y + 6}" width="{wait * scale:.1f}" height="{ROW - 14}" '
                             f'fill="{WAIT}"><title>{escape(label(s))}: waited {wait:.0f} s for a lock</title></rect>')
            w = max((s.seconds - wait) * scale, 1.0)
            parts.append(f'<rect {data} data-wait-seconds="{wait}" x="{x + wait * scale:.1f}" y="{y + 2}" width="{w:.1f}" height="{ROW - 6}" '
                         f'fill="{COLOURS[s.status]}" stroke="#fff" stroke-width="0.5"><title>{tip}</title></rect>')
            if w > 40:
                parts.append(f'<text x="{x + wait * scale + 3:.1f}" y="{y + 14}" fill="#fff">{escape(label(s))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def lines(record: RunRecord) -> list[str]:
    """summary.txt's account: per lane, its busy time, lock waits and the stages that took longest."""
    table = rows(record)
    if not table:
        return []
    out = ["", f"timeline (seconds into the run; {span(record):.0f} s in all; the dashboard draws it):"]
    for name, stages in table:
        ran = [s for s in stages if not s.reused]
        busy = sum(s.seconds for s in ran)
        waited = sum(float(s.facts.get("lock_wait", 0) or 0) for s in ran)
        first = min((s.started for s in ran), default=0.0)
        last = max((s.started + s.seconds for s in ran), default=0.0)
        longest = sorted(ran, key=lambda s: -s.seconds)[:3]
        out.append(f"  {name:<20} +{first:.0f}..+{last:.0f} s, {busy:.0f} s of stages"
                   + (f", {waited:.0f} s waiting for locks" if waited else "")
                   + (f", {len(stages) - len(ran)} reused" if len(stages) > len(ran) else "")
                   + (": " + ", ".join(f"{label(s)} {s.seconds:.0f} s" for s in longest if s.seconds >= 1)
                      if any(s.seconds >= 1 for s in longest) else ""))
    return out
