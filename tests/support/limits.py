"""A memory cap for tests whose failure mode (before the fix) is reading without end."""

from __future__ import annotations

import resource
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def memory_cap(extra: int = 2 * 1024**3) -> Iterator[None]:
    """Cap this process's address space (and that of the processes it starts meanwhile) at
    its current size plus ``extra`` bytes, so that an unbounded read (``/dev/zero``) fails
    with MemoryError instead of taking the machine's memory."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as f:
        current = int(f.read().split()[0]) * resource.getpagesize()
    cap = current + extra
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
