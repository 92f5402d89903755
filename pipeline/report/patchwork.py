"""Patchwork checks: one per patch and arch, posted to patchwork's REST API.

Each patch of the run gets a check per arch, context "kseries-<arch>": fail when
that patch breaks the build there (or, for the last patch, when the lane
regressed against the base or its own boot or checks failed), warning when it
adds compiler warnings or the machine got in the way, else success; the
description is one line and target_url points at the run's page. A check is
not posted again when the patch's newest check of that context already says
the same. The token comes from KSERIES_PATCHWORK_TOKEN, never from a file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.infra.errors import InfraError, UserError
from pipeline.model.lane import Role
from pipeline.model.results import RunRecord, Status
from pipeline.report.reply import thread_of
from pipeline.run.policy import own_failures


@dataclass(frozen=True)
class Check:
    patch: int  # k of k/n
    context: str
    state: str  # success | warning | fail
    description: str


def checks(record: RunRecord) -> list[Check]:
    series = [c for c in record.cases if c.role is Role.SERIES]
    total = max((c.patches for c in series if c.patch), default=1)
    out = []
    for arch in record.arches:
        lane_bad = [v for v in record.verdicts if v.arch == arch and v.blamed]
        own = [c for c in own_failures(record) if c.arch == arch and not c.patch]
        for k in range(1, total + 1):
            built = [c for c in series if c.arch == arch and c.stage == "per-patch" and c.patch == k]
            build = next((c for c in built if c.test == "build"), None)
            warned = next((c for c in built if c.test == "warnings" and c.status == Status.FAIL), None)
            state, text = "success", "builds" + (", boots and passes its tests against the base" if k == total else "")
            if build is None:
                state, text = "warning", "not built: " + _first(record, arch)
            elif build.status == Status.FAIL:
                state, text = "fail", build.message
            elif build.status.broken:
                state, text = "warning", f"infrastructure error, not the patch: {build.message}"
            elif k == total and (lane_bad or own):
                state = "fail"
                text = (f"{len(lane_bad)} regression(s) against the base, first {lane_bad[0].suite} {lane_bad[0].test}"
                        if lane_bad else f"{own[0].group}: {own[0].message}")
            elif warned is not None:
                state, text = "warning", warned.message
            out.append(Check(k, f"kseries-{arch}", state, text[:250]))
    return out


def _first(record: RunRecord, arch: str) -> str:
    stage = next((s for s in record.stages if s.arch == arch and s.role is Role.SERIES and s.status != Status.PASS),
                 None)
    return stage.message if stage else "no result"


def post(record: RunRecord, run_dir: Path, url: str, target_url: str = "", session=None) -> list[str]:
    """Post the run's checks; returns one line per check (posted, or skipped as unchanged)."""
    import requests

    token = os.environ.get("KSERIES_PATCHWORK_TOKEN", "")
    if not token:
        raise UserError("--patchwork needs an API token: set KSERIES_PATCHWORK_TOKEN (a patchwork user's "
                        "token with the maintainer right to post checks).")
    http = session or requests.Session()
    http.headers["Authorization"] = f"Token {token}"
    api = url.rstrip("/") + "/api"
    ids = [_patch_id(http, api, p["message_id"]) for p in thread_of(run_dir).get("patches", [])]
    if not ids:
        raise UserError(f"{run_dir.name}'s series has no patch message-ids to find on {url}.")
    lines = []
    for check in checks(record):
        pid = ids[check.patch - 1] if check.patch <= len(ids) else None
        if pid is None:
            lines.append(f"patch {check.patch}: not on {url}, {check.context} not posted")
            continue
        endpoint = f"{api}/patches/{pid}/checks/"
        newest = [c for c in _get(http, endpoint) if c.get("context") == check.context]
        if newest and newest[-1].get("state") == check.state and newest[-1].get("description") == check.description:
            lines.append(f"patch {check.patch} ({pid}) {check.context}: {check.state}, unchanged, not posted again")
            continue
        body = {"state": check.state, "context": check.context, "description": check.description,
                "target_url": target_url or (run_dir / "summary.txt").resolve().as_uri()}
        answer = _call(http.post, endpoint, json=body)
        if answer.status_code not in (200, 201):
            raise InfraError(f"{endpoint} refused the check (HTTP {answer.status_code}: {answer.text[:200]}). "
                             "Check the token's rights on that project.")
        lines.append(f"patch {check.patch} ({pid}) {check.context}: {check.state} - {check.description}")
    return lines


def _patch_id(http, api: str, msgid: str) -> int | None:
    found = _get(http, f"{api}/patches/", params={"msgid": msgid})
    return found[0]["id"] if found else None


def _get(http, endpoint: str, **kw) -> list:
    answer = _call(http.get, endpoint, **kw)
    if answer.status_code != 200:
        raise InfraError(f"{endpoint} answered HTTP {answer.status_code}; is this a patchwork instance?")
    return answer.json()


def _call(method, endpoint: str, **kw):
    import requests

    try:
        return method(endpoint, timeout=30, **kw)
    except requests.RequestException as exc:
        raise InfraError(f"{endpoint} could not be reached ({type(exc).__name__}). Check --patchwork's URL "
                         "and the network.") from exc
