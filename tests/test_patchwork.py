"""Patchwork checks against a loopback server that implements the checks endpoints as patchwork's
REST API documents them: GET /api/patches/?msgid=, GET and POST /api/patches/<id>/checks/."""

import http.server
import json
import threading
from urllib.parse import parse_qs, urlparse

import pytest

from pipeline.infra.errors import UserError
from pipeline.model.results import RunRecord
from pipeline.report import patchwork
from test_reports import F, P, make_run

PATCHES = {"p1@example.org": 101}


@pytest.fixture
def server():
    posted: dict[int, list] = {101: []}

    class Api(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def reply(self, code, data):
            body = json.dumps(data).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            url = urlparse(self.path)
            if url.path == "/api/patches/":
                msgid = parse_qs(url.query).get("msgid", [""])[0]
                return self.reply(200, [{"id": PATCHES[msgid], "msgid": f"<{msgid}>"}] if msgid in PATCHES else [])
            pid = int(url.path.split("/")[3])
            return self.reply(200, posted[pid])

        def do_POST(self):
            if self.headers.get("Authorization") != "Token s3cret":
                return self.reply(403, {"detail": "Authentication credentials were not provided."})
            pid = int(self.path.split("/")[3])
            check = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            posted[pid].append({**check, "id": len(posted[pid]) + 1})
            return self.reply(201, posted[pid][-1])

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}", posted
    srv.shutdown()


def run(tmp_path, mmap):
    run_dir = make_run(tmp_path / "results", "20261103-100000-x", "2026-11-03T10:00:00+0000", mmap, P,
                       1 if mmap == F else 0)
    (run_dir / "series" / "thread.json").write_text(json.dumps(
        {"cover": None, "patches": [{"message_id": "p1@example.org", "subject": "[PATCH] mm: x", "from": "a",
                                     "to": "", "cc": "", "references": []}]}))
    return RunRecord.load(run_dir / "results.json"), run_dir


def test_one_check_per_patch_and_arch_and_unchanged_ones_are_not_posted_again(tmp_path, server, monkeypatch):
    url, posted = server
    monkeypatch.setenv("KSERIES_PATCHWORK_TOKEN", "s3cret")
    record, run_dir = run(tmp_path, F)
    lines = patchwork.post(record, run_dir, url, "https://ci.example.org/x")
    assert [(c["context"], c["state"]) for c in posted[101]] == [("kseries-x86_64", "fail"),
                                                                 ("kseries-sh4", "success")]
    assert "1 regression(s) against the base, first nolibc syscall.mmap_bad" in posted[101][0]["description"]
    assert posted[101][0]["target_url"] == "https://ci.example.org/x" and len(lines) == 2
    again = patchwork.post(record, run_dir, url, "https://ci.example.org/x")
    assert len(posted[101]) == 2 and all("unchanged, not posted again" in line for line in again)
    fixed, fixed_dir = run(tmp_path / "later", P)
    patchwork.post(fixed, fixed_dir, url, "https://ci.example.org/y")
    assert [c["state"] for c in posted[101]] == ["fail", "success", "success"]  # x86_64 changed: posted


def test_no_token_is_an_input_error_and_nothing_is_posted(tmp_path, server, monkeypatch):
    url, posted = server
    monkeypatch.delenv("KSERIES_PATCHWORK_TOKEN", raising=False)
    record, run_dir = run(tmp_path, P)
    with pytest.raises(UserError, match="KSERIES_PATCHWORK_TOKEN"):
        patchwork.post(record, run_dir, url)
    assert posted[101] == []
