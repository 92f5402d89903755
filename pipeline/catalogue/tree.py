"""One commit's files, read from the git object store: listed, read and searched without a checkout."""

from __future__ import annotations

import subprocess
from pathlib import Path

GIT_ENV = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}


class Tree:
    def __init__(self, repo: Path, commit: str):
        self.repo, self.commit = Path(repo), commit
        self._files: list[str] | None = None
        self._text: dict[str, str | None] = {}

    def _git(self, *args: str, check: bool = True, input: bytes | None = None) -> bytes:
        import os

        proc = subprocess.run(["git", "-C", str(self.repo), *args], input=input, capture_output=True,
                              env={**os.environ, **GIT_ENV})
        if check and proc.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)} exited {proc.returncode}: {proc.stderr.decode()[-300:]}")
        return proc.stdout

    @property
    def id(self) -> str:
        """The tree's own hash: the same files under another commit are the same tree."""
        return self._git("rev-parse", f"{self.commit}^{{tree}}").decode().strip()

    def files(self) -> list[str]:
        if self._files is None:
            out = self._git("ls-tree", "-r", "-z", "--name-only", self.commit)
            self._files = [f for f in out.decode(errors="replace").split("\0") if f]
        return self._files

    def read(self, path: str) -> str | None:
        """The file's text, or None when the commit has no such file."""
        if path not in self._text:
            self.prefetch([path])
        return self._text[path]

    def prefetch(self, paths: list[str]) -> None:
        """Read many files in one git process (cat-file --batch)."""
        wanted = [p for p in dict.fromkeys(paths) if p not in self._text]
        if not wanted:
            return
        out = self._git("cat-file", "--batch", input="".join(f"{self.commit}:{p}\n" for p in wanted).encode())
        pos = 0
        for path in wanted:
            end = out.index(b"\n", pos)
            header = out[pos:end].split()
            pos = end + 1
            if len(header) < 3 or header[1] != b"blob":
                self._text[path] = None
                if len(header) == 3:  # a tree or other object: its content follows all the same
                    pos += int(header[2]) + 1
                continue
            size = int(header[2])
            self._text[path] = out[pos:pos + size].decode(errors="replace")
            pos += size + 1

    def grep(self, regex: str, *pathspecs: str) -> list[str]:
        """Files whose text matches the extended regex."""
        out = self._git("grep", "-l", "-E", "-z", regex, self.commit, "--", *pathspecs, check=False)
        prefix = f"{self.commit}:"
        return [f.removeprefix(prefix) for f in out.decode(errors="replace").split("\0") if f]


class Directory:
    """The same interface over a checked-out directory (tests, worktrees)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.commit = ""

    @property
    def id(self) -> str:
        return str(self.root)

    def files(self) -> list[str]:
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file())

    def read(self, path: str) -> str | None:
        p = self.root / path
        return p.read_text(errors="replace") if p.is_file() else None

    def prefetch(self, paths: list[str]) -> None:
        pass

    def grep(self, regex: str, *pathspecs: str) -> list[str]:
        import fnmatch
        import re

        pattern = re.compile(regex)
        out = []
        for f in self.files():
            if pathspecs and not any(fnmatch.fnmatch(f, s) or f.startswith(s.rstrip("/") + "/") for s in pathspecs):
                continue
            if pattern.search(self.read(f) or ""):
                out.append(f)
        return out
