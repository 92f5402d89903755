"""Error kinds and the exit codes they map to.

0: nothing wrong; 1: the series is blamed (build/boot/test failure);
2: user error (bad input: unknown series or arch, bad config, bad mbox);
3: infrastructure error (Docker down, QEMU missing, timeout, disk).
"""

import errno

EXIT_OK = 0
EXIT_BLAMED = 1
EXIT_USER = 2
EXIT_INFRA = 3


class KseriesError(Exception):
    """An error with a one-paragraph message meant for the user, no traceback."""

    exit_code = EXIT_INFRA
    kind = "error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UserError(KseriesError):
    """Bad input: names the input, what is wrong and the fix."""

    exit_code = EXIT_USER
    kind = "input error"


class InfraError(KseriesError):
    """The machine, not the series, failed: Docker, QEMU, disk, network, timeouts."""

    exit_code = EXIT_INFRA
    kind = "infrastructure error"


EXIT_INTERRUPTED = 130  # SIGINT (Ctrl-C): nothing is blamed; rerun with --resume
EXIT_TERMINATED = 143  # SIGTERM (a cancelled CI job): the same


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C's KeyboardInterrupt."""


class Interrupted(KseriesError):
    """The user (Ctrl-C) or the CI (SIGTERM) stopped the run; finished stages are kept."""

    exit_code = EXIT_INTERRUPTED
    kind = "interrupted"


class Bug(KseriesError):
    """kseries itself failed (KCIDB's MISS): neither the series nor the machine is blamed."""

    exit_code = EXIT_INFRA
    kind = "internal error"


DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO)


def disk_message(exc: OSError) -> str:
    where = f" writing {exc.filename}" if exc.filename else ""
    return (f"the machine's disk failed{where}: {exc.strerror} (errno {errno.errorcode.get(exc.errno, exc.errno)}). "
            "Nothing is blamed on the series: free space there (or point --results / KSERIES_CACHE "
            "elsewhere) and complete the run with 'invoke ci --resume'.")
