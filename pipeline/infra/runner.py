"""The one place subprocesses are started.

Every command is an argv list (never a shell string), logged verbatim with its
cwd to the run's command log before it starts, with stdout+stderr captured and
optionally appended to a per-stage log file.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.infra.errors import InfraError


@dataclass
class Completed:
    argv: list[str]
    returncode: int
    output: str
    seconds: float


class CommandFailed(Exception):
    def __init__(self, done: Completed):
        super().__init__(f"{shlex.join(done.argv)} exited {done.returncode}")
        self.done = done


class Runner:
    def __init__(self, command_log: Path | None = None, dry_run: bool = False):
        self.command_log = command_log
        self.dry_run = dry_run

    def note(self, text: str) -> None:
        """Record a command run by other means (e.g. the Docker SDK) in the command log."""
        if self.command_log:
            self.command_log.parent.mkdir(parents=True, exist_ok=True)
            with open(self.command_log, "a") as f:
                f.write(f"{time.strftime('%H:%M:%S')} {text}\n")

    def run(
        self,
        argv: list[str],
        *,
        cwd: Path | str | None = None,
        env: dict[str, str] | None = None,
        log: Path | None = None,
        timeout: float | None = None,
        check: bool = True,
        input: str | bytes | None = None,
    ) -> Completed:
        argv = [str(a) for a in argv]
        self.note(f"$ {shlex.join(argv)}" + (f"  (cwd={cwd})" if cwd else ""))
        if self.dry_run:
            print(shlex.join(argv))
            return Completed(argv, 0, "", 0.0)
        full_env = None
        if env:
            full_env = dict(os.environ)
            full_env.update(env)
        start = time.monotonic()
        try:
            proc = subprocess.run(
                argv,
                cwd=cwd,
                env=full_env,
                input=input.encode() if isinstance(input, str) else input,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            )
        except FileNotFoundError as exc:
            raise InfraError(
                f"The program '{argv[0]}' is not installed on this machine, so "
                f"'{shlex.join(argv)}' could not run. Run 'invoke setup' to install "
                "what kseries needs."
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise InfraError(
                f"'{shlex.join(argv)}' did not finish within {timeout:.0f} s and was "
                "stopped. The machine may be overloaded; rerun to resume."
            ) from exc
        output = proc.stdout.decode("utf-8", "replace")
        done = Completed(argv, proc.returncode, output, time.monotonic() - start)
        if log:
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a") as f:
                f.write(f"$ {shlex.join(argv)}\n{output}")
                if proc.returncode:
                    f.write(f"[exit {proc.returncode}]\n")
        if check and proc.returncode != 0:
            raise CommandFailed(done)
        return done

    def detach(self, argv: list[str], *, cwd: Path | str | None = None) -> int:
        """Start argv in a session of its own, with no terminal and no inherited files, and do not
        wait for it (it outlives this process); its pid."""
        argv = [str(a) for a in argv]
        self.note(f"$ {shlex.join(argv)}  (detached" + (f", cwd={cwd})" if cwd else ")"))
        if self.dry_run:
            return 0
        return subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True).pid

    def git(self, repo: Path, *args: str, **kw) -> Completed:
        """git with an explicit -C, a fixed identity and no user config."""
        env = {
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "kseries",
            "GIT_AUTHOR_EMAIL": "kseries@localhost",
            "GIT_COMMITTER_NAME": "kseries",
            "GIT_COMMITTER_EMAIL": "kseries@localhost",
            "GIT_TERMINAL_PROMPT": "0",
        }
        env.update(kw.pop("env", None) or {})
        return self.run(["git", "-C", str(repo), *args], env=env, **kw)
