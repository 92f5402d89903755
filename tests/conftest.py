import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def invoke(*args, env=None, cwd=REPO, timeout=3600):
    """Run `invoke ...` as a user would; returns CompletedProcess with text output."""
    full = dict(os.environ)
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def run_invoke():
    return invoke


from pipeline.infra.host import docker_ok  # noqa: E402  (one probe for setup and tests)


@pytest.fixture
def need_docker():
    if not docker_ok():
        pytest.fail("the real tier needs a running Docker engine: run 'invoke setup' first")


def pytest_collection_modifyitems(session, config, items):
    """The real tier runs against a cache of its own (ci/tier_cache.py), set before any fixture:
    what a user ran before cannot change a test's outcome."""
    if any(item.get_closest_marker("real") for item in items):
        from ci import tier_cache

        tier_cache.prepare()


@pytest.fixture(autouse=True)
def nothing_queued():
    """What an earlier test queued for after its run (infra/background.py) is not this test's."""
    from pipeline.infra import background

    background.drop()
    yield
    background.drop()


@pytest.fixture(autouse=True)
def hermetic(request, tmp_path_factory, monkeypatch):
    """Unit tests touch no network but loopback and no cache but their own: KSERIES_CACHE (and so
    every subprocess they start) points at a temporary directory, and a connection to any
    address outside 127.0.0.0/8 and ::1 fails at once. The real tier has its own cache
    (pytest_collection_modifyitems)."""
    if request.node.get_closest_marker("real"):
        yield
        return
    import ipaddress
    import socket

    monkeypatch.setenv("KSERIES_CACHE", str(tmp_path_factory.mktemp("cache")))
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def loopback(host) -> bool:
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return host == "localhost"

    def connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not loopback(address[0]):
            raise OSError(f"network blocked in unit tests: {address[0]}")
        return real_connect(sock, address)

    def getaddrinfo(host, *args, **kw):
        if host is not None and not loopback(host):
            raise socket.gaierror(f"network blocked in unit tests: {host}")
        return real_getaddrinfo(host, *args, **kw)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield


RELIABILITY = REPO / "results" / "reliability.json"


@pytest.fixture
def reliability(request):
    """Records one row of docs/RELIABILITY.md: the fault or hostile input a real test tried, what
    kseries did, what it kept and how --resume ended. Rows of earlier sessions are kept; a
    test's row is replaced when it runs again. Render with `invoke reliability`."""
    import contextlib
    import json
    import time

    @contextlib.contextmanager
    def row(what: str, kind: str = "fault"):
        entry = {"id": request.node.nodeid, "kind": kind, "what": what, "did": "", "exit": None,
                 "kept": "", "resume": "", "ok": False, "when": time.strftime("%Y-%m-%d")}
        try:
            yield entry
            entry["ok"] = True
        except BaseException as exc:
            entry["did"] = (entry["did"] + " | " if entry["did"] else "") + f"TEST FAILED: {str(exc)[:300]}"
            raise
        finally:
            RELIABILITY.parent.mkdir(exist_ok=True)
            rows = json.loads(RELIABILITY.read_text()) if RELIABILITY.exists() else []
            rows = [r for r in rows if r["id"] != entry["id"]] + [entry]
            RELIABILITY.write_text(json.dumps(rows, indent=1))

    return row
