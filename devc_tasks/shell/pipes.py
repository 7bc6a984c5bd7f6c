"""The reader of our output went away (`devc-tasks tailscale.status --all | head -1`)."""

from __future__ import annotations

import os
import sys

__all__ = ["READER_GONE", "reader_gone"]

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
