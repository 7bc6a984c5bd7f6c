"""Output streams that are not there: a reader that went away (`devc-tasks
tailscale.status --all | head -1`), or a stream closed before the start (`2>&-`)."""

from __future__ import annotations

import os
import sys

__all__ = ["READER_GONE", "reader_gone", "fill_closed_streams"]

READER_GONE = 141  # what a shell reports for a tool that SIGPIPE ended (128 + 13)


def reader_gone() -> int:
    """Point stdout and stderr at /dev/null, so that neither the rest of the run nor the
    interpreter's last flush meets the closed pipe again (a second error, a traceback);
    the exit status to end with."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (AttributeError, OSError, ValueError):
            pass
    return READER_GONE


def fill_closed_streams() -> None:
    """Put /dev/null where stdin, stdout or stderr was closed before the start (`2>&-`).

    Python leaves such a stream None and its descriptor free, so the next file or socket
    opened takes it: Invoke's error message would then be written into the Engine's
    connection or a state archive, or fail (exit 1 in place of the error's own code), and
    `--authkey-file -` would read from whatever took descriptor 0. Reading nothing and
    writing nowhere is what a closed stream asks for."""
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        if getattr(sys, name) is not None:
            continue
        try:
            os.fstat(fd)
        except OSError:  # free: take it before anything else does
            null = os.open(os.devnull, os.O_RDONLY if mode == "r" else os.O_WRONLY)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
        setattr(sys, name, open(fd, mode, encoding="utf-8", closefd=False))  # noqa: SIM115 - lives as long as the process
