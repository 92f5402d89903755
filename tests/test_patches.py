"""Patches from lore over HTTP, served hermetically from loopback; the offline copy otherwise."""

import gzip
import http.server
import threading
from pathlib import Path

import pytest

from pipeline import config, patches
from pipeline.context import Context
from pipeline.progress import Progress
from pipeline.runner import Runner


@pytest.fixture
def lore(tmp_path):
    spec = config.load_series("page_mapped")
    mails = [p.read_bytes() for p in sorted(spec.patch_dir.glob("*.patch"))]
    cover = (b"From x Mon Sep 17 00:00:00 2001\nFrom: a@b\nSubject: [PATCH 0/3] mm: remove page_mapped()\n\n"
             b"cover letter\n")
    reply = (b"From x Mon Sep 17 00:00:00 2001\nFrom: c@d\nSubject: Re: [PATCH 2/3] bpf: arena\n\n"
             b"> diff --git a/x b/x\nquoted\n")
    body = gzip.compress(cover + b"".join(m if m.endswith(b"\n") else m + b"\n" for m in mails) + reply)
    path = f"/all/{spec.message_id}/t.mbox.gz"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == path:
                self.send_response(200)
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_response(404)
                self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield spec, f"http://127.0.0.1:{server.server_port}/all"
    server.shutdown()


def ctx_for(tmp_path: Path) -> Context:
    return Context(tmp_path / "run", tmp_path / "cache", Runner(), Progress())


def test_lore_thread_gives_the_three_patches(lore, tmp_path, monkeypatch):
    spec, url = lore
    monkeypatch.setenv("KSERIES_LORE_URL", url)
    series, prov = patches.obtain(ctx_for(tmp_path), spec)
    assert prov["patches"].startswith("lore http://127.0.0.1:")
    assert [p.label for p in series.patches] == ["1/3", "2/3", "3/3"]  # cover letter and reply left out
    assert series.patches[2].subject == "mm: remove page_mapped()"


def test_unreachable_lore_falls_back_to_the_offline_copy(lore, tmp_path, monkeypatch):
    spec, url = lore
    monkeypatch.setenv("KSERIES_LORE_URL", url + "/missing")
    series, prov = patches.obtain(ctx_for(tmp_path), spec)
    assert "offline copy" in prov["patches"] and "HTTP 404" in prov["patches"]
    assert len(series.patches) == 3
