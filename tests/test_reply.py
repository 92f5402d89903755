"""The reply mail: headers that thread it under the series, a body a kernel developer reads, and
delivery to a real SMTP server on loopback (aiosmtpd) that reads it back."""

import email
import email.policy
import json

import pytest

from pipeline.infra.errors import UserError
from pipeline.model.results import RunRecord, Status
from pipeline.report import reply
from test_reports import F, P, make_run

COVER = {"message_id": "cover@example.org", "subject": "[PATCH 0/1] mm: x",
         "from": "Dev Eloper <dev@example.org>", "to": "linux-mm@kvack.org",
         "cc": "Rev Iewer <rev@example.org>, dev@example.org", "references": []}


def run_with_thread(tmp_path, mmap=F, code=1):
    run_dir = make_run(tmp_path / "results", "20261103-100000-regress", "2026-11-03T10:00:00+0000", mmap, P, code)
    (run_dir / "series" / "thread.json").write_text(json.dumps({"cover": COVER, "patches": []}))
    return RunRecord.load(run_dir / "results.json"), run_dir


def test_the_reply_threads_under_the_cover_letter_and_reads_like_ci_mail(tmp_path):
    record, run_dir = run_with_thread(tmp_path)
    msg = reply.compose(record, run_dir, sender="kseries <ci@example.org>", logs_url="https://ci.example.org/runs")
    assert msg["Subject"] == "Re: [PATCH 0/1] mm: x" and msg["In-Reply-To"] == "<cover@example.org>"
    assert msg["References"] == "<cover@example.org>" and msg["To"] == "Dev Eloper <dev@example.org>"
    assert "linux-mm@kvack.org" in msg["Cc"] and "rev@example.org" in msg["Cc"] and "dev@example.org" not in msg["Cc"]
    text = msg.get_content()
    lines = text.splitlines()
    assert lines[0] == "Hi Dev," and "the series is blamed: 1 regression(s)" in " ".join(lines[2:4])
    assert all(len(line) < 80 for line in lines), [line for line in lines if len(line) >= 80]
    assert any(line.startswith("  1/1 mm: x") and "PASS" in line for line in lines)
    assert "Regressions against the base (1):" in text and "x86_64 nolibc syscall.mmap_bad: base PASS -> series FAIL" in text
    assert "https://ci.example.org/runs/20261103-100000-regress/x86_64/reproducer.sh" in text
    assert msg.get_content_type() == "text/plain" and not msg.is_multipart()


def test_a_clean_run_says_so(tmp_path):
    record, run_dir = run_with_thread(tmp_path, mmap=P, code=0)
    text = reply.compose(record, run_dir).get_content()
    assert "No regressions against the base" in text and "Regressions against" not in text


def test_no_thread_to_reply_to_is_an_input_error(tmp_path):
    record, run_dir = run_with_thread(tmp_path)
    (run_dir / "series" / "thread.json").write_text(json.dumps({"cover": None, "patches": []}))
    with pytest.raises(UserError, match="no thread to reply to"):
        reply.compose(record, run_dir)


def test_send_delivers_to_a_real_smtp_server(tmp_path, monkeypatch):
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    got = []

    class Keep(Message):
        def handle_message(self, message):
            got.append(message)

    import socket

    with socket.socket() as probe:  # a free port on loopback
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = Controller(Keep(), hostname="127.0.0.1", port=port)
    server.start()
    try:
        monkeypatch.setenv("KSERIES_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("KSERIES_SMTP_PORT", str(port))
        monkeypatch.setenv("KSERIES_SMTP_TLS", "none")
        record, run_dir = run_with_thread(tmp_path)
        msg = reply.compose(record, run_dir, sender="kseries <ci@example.org>")
        assert "sent to Dev Eloper <dev@example.org>" in reply.send(msg)
    finally:
        server.stop()
    assert len(got) == 1
    back = email.message_from_string(got[0].as_string(), policy=email.policy.default)
    assert back["In-Reply-To"] == "<cover@example.org>" and back["Subject"] == "Re: [PATCH 0/1] mm: x"
    assert "Regressions against the base (1):" in back.get_content()
    assert record.exit_code == 1 and Status.FAIL.value == "FAIL"


def test_invoke_report_email_writes_the_mail(tmp_path, run_invoke):
    _, run_dir = run_with_thread(tmp_path)
    proc = run_invoke("report", "--email", str(run_dir), "--logs-url", "https://ci.example.org/runs")
    assert proc.returncode == 0, proc.stderr
    assert "In-Reply-To: <cover@example.org>" in proc.stdout
    saved = email.message_from_bytes((run_dir / "reply.eml").read_bytes(), policy=email.policy.default)
    assert saved["Subject"] == "Re: [PATCH 0/1] mm: x"


def test_regressions_are_grouped_under_the_patch_that_introduced_them(tmp_path):
    import dataclasses

    record, run_dir = run_with_thread(tmp_path)
    record.verdicts = [dataclasses.replace(v, patch=1, introduced="patch 1/1 'mm: x'") if v.blamed else v
                       for v in record.verdicts]
    text = reply.compose(record, run_dir).get_content()
    assert "  introduced by patch 1/1 'mm: x' (1):\n    x86_64 nolibc syscall.mmap_bad: base PASS -> series FAIL" \
        in text
