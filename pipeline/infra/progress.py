"""Progress on the terminal: stage, arch, elapsed time, and what make is doing."""

from __future__ import annotations

import re
import sys
import threading
import time

KBUILD_LINE = re.compile(r"^\s{2}([A-Z][A-Z0-9_]{1,8})\s+(\S+)")


class Progress:
    def __init__(self, stream=None, interval: float = 10.0):
        self.stream = stream or sys.stdout
        self.interval = interval
        self.start = time.monotonic()
        self._lock = threading.Lock()
        self._last = 0.0
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def elapsed(self) -> str:
        s = int(time.monotonic() - self.start)
        return f"{s // 60:02d}:{s % 60:02d}"

    def say(self, stage: str, arch: str, text: str) -> None:
        where = f"{stage}" + (f" {arch}" if arch else "")
        with self._lock:
            if self.tty:
                self.stream.write("\r\033[K")
            self.stream.write(f"[{self.elapsed()}] {where:<16} {text}\n")
            self.stream.flush()

    def make_line(self, stage: str, arch: str, counter: list[int]):
        """A callback for build output: counts kbuild steps and shows the current one."""

        def on_line(line: str) -> None:
            m = KBUILD_LINE.match(line)
            if not m:
                return
            counter[0] += 1
            now = time.monotonic()
            if now - self._last < (1.0 if self.tty else self.interval):
                return
            self._last = now
            text = f"{m.group(1):<7} {m.group(2)}  ({counter[0]} steps)"
            with self._lock:
                where = f"{stage} {arch}"
                if self.tty:
                    self.stream.write(f"\r\033[K[{self.elapsed()}] {where:<16} {text}"[:200])
                else:
                    self.stream.write(f"[{self.elapsed()}] {where:<16} {text}\n")
                self.stream.flush()

        return on_line
