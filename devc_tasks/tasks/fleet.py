"""`--all`: one piece of work per devcontainer, run concurrently, one row each.

A bounded pool of daemon threads works through the containers; each row has
its own deadline, counted from when its work starts. A row that misses it is
an error row (``TimedOut``) and its thread is abandoned -- a daemon thread, so
it holds up neither the other rows nor the end of the program -- and a fresh
worker takes its place, so a few hung containers cannot starve the rest.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from devc_tasks.core.errors import DevcError, TimedOut, UsageError

__all__ = ["DEFAULT_WORKERS", "Row", "run_each", "list_devcontainers", "Clamped"]

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_WORKERS = 8  # the Engine serves a few execs at once well; the SDK's pool holds 10 connections


@dataclass(frozen=True)
class Row(Generic[T, R]):
    """One container's outcome: a value, or the error that stopped it."""

    item: T
    value: R | None = None
    error: DevcError | None = None


def run_each(items: Sequence[T], work: Callable[[T], R], *, timeout: float, workers: int = DEFAULT_WORKERS, what: str = "the container") -> list[Row[T, R]]:
    """``work(item)`` for every item, at most ``workers`` at a time, rows in the items' order.

    A ``DevcError`` becomes that row's error; so does a missed deadline. Anything else
    (a bug) is raised once every row is settled.
    """
    n = len(items)
    results: list[Row[T, R] | None] = [None] * n
    started: list[float | None] = [None] * n
    bugs: list[BaseException] = []
    lock = threading.Condition()
    queue = list(range(n - 1, -1, -1))  # popped from the end: items in order

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                i = queue.pop()
                started[i] = time.monotonic()
            row: Row[T, R]
            try:
                row = Row(items[i], value=work(items[i]))
            except DevcError as e:
                row = Row(items[i], error=e)
            except BaseException as e:  # noqa: BLE001 - a bug: re-raised by the caller's thread
                row = Row(items[i], error=DevcError(f"{type(e).__name__}: {e}"))
                with lock:
                    bugs.append(e)
            with lock:
                if results[i] is None:  # not already given up on
                    results[i] = row
                    lock.notify_all()
                else:
                    return  # this worker was replaced when its row timed out

    def spawn() -> None:
        threading.Thread(target=worker, daemon=True, name="devc-all").start()

    for _ in range(min(workers, n)):
        spawn()
    with lock:
        while any(r is None for r in results):
            now = time.monotonic()
            for i, r in enumerate(results):
                t0 = started[i]
                if r is None and t0 is not None and now - t0 >= timeout:
                    results[i] = Row(items[i], error=TimedOut(
                        f"{what} did not answer within {timeout:g} s",
                        fix="Check the container (`docker top NAME`, `docker exec NAME tailscale status`); raise --timeout if it is only slow.",
                    ))
                    spawn()  # the hung worker is abandoned; the rest go on
            waits = [t0 + timeout - now for i, t0 in enumerate(started) if t0 is not None and results[i] is None]
            lock.wait(timeout=max(0.01, min(waits)) if waits else 0.1)
    if bugs:
        raise bugs[0]
    return [r for r in results if r is not None]


@dataclass
class Clamped:
    """An executor whose every command is bounded by a row's deadline, so the thread
    running it ends soon after the row has been given up on."""

    inner: Any
    timeout: float
    description: str = ""

    def __post_init__(self) -> None:
        self.description = self.description or str(self.inner.description)

    def run(self, argv: Sequence[str], *, stdin: bytes | None = None, timeout: float = 30.0) -> Any:
        return self.inner.run(argv, stdin=stdin, timeout=min(timeout, self.timeout))

    def env(self) -> Any:
        return self.inner.env()


LABEL_HELP = "With --all: only the devcontainers that also carry this Docker label (KEY or KEY=VALUE)."


def list_devcontainers(host: str | None, context: str | None, label: str | None = None) -> tuple[Any, list[Any]]:
    """The engine and every devcontainer on it (running or not; with ``label``, those that
    also carry it), in one ``docker ps``."""
    from devc_tasks.core.container_choice import LABEL_LOCAL_FOLDER
    from devc_tasks.shell.discovery import list_containers
    from devc_tasks.shell.engine import open_engine

    if label is not None and not label.partition("=")[0].strip():
        raise UsageError(f"--label {label!r} names no label", fix="Give KEY or KEY=VALUE, e.g. --label com.example.team=web.")
    engine = open_engine(host=host, context=context)
    return engine, list_containers(engine.client, [LABEL_LOCAL_FOLDER, *([label] if label else [])])
