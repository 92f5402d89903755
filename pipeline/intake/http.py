"""GET with timeouts and retries: every network source of patches goes through fetch().

Retries with backoff for 5xx answers, 429 and dropped connections; 404 is the
user's (a wrong message-id or series id: exit 2), anything else that never
succeeds is the network's (exit 3).
"""

from __future__ import annotations

import gzip
import os
import re
import time
import zlib

from pipeline.infra.errors import InfraError, UserError

CONNECT_TIMEOUT = 10
READ_TIMEOUT = float(os.environ.get("KSERIES_HTTP_TIMEOUT", "30"))  # seconds without a byte
RETRIES = 3
BACKOFF = float(os.environ.get("KSERIES_HTTP_BACKOFF", "1"))  # first retry's wait, doubled after


def fetch(url: str, what: str, flag: str, retries: int = RETRIES) -> bytes:
    """GET url; 404 is the user's (exit 2), unreachable / 5xx after retries the network's (exit 3)."""
    import requests

    last = ""
    for attempt in range(retries):
        if attempt:
            time.sleep(BACKOFF * 2 ** (attempt - 1))
        try:
            resp = requests.get(url, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
        except requests.Timeout:
            last = f"no answer within {READ_TIMEOUT} s"
            continue
        except requests.RequestException as exc:
            errno = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(exc))
            last = type(exc).__name__ + (f": {errno.group(1).strip()}" if errno else "")
            continue
        if resp.status_code == 200:
            return resp.content
        if resp.status_code in (404, 410):
            raise UserError(f"{url} answered HTTP {resp.status_code}: there is no {what} there. "
                            f"Check the value given to {flag} (and the server's base URL).")
        last = f"HTTP {resp.status_code}"
        if resp.status_code < 500 and resp.status_code != 429:
            break
    raise InfraError(f"{url} could not be fetched after {retries} attempt(s) ({last}). Check the network "
                     f"or point {flag} at a mirror; a saved copy can be passed with --mbox FILE.")


def ungzip(data: bytes, url: str) -> bytes:
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise InfraError(f"{url} sent a corrupt gzip stream ({exc}). The server or a proxy mangled it; "
                         "retry later, or save the thread with a browser and pass --mbox FILE.") from exc
