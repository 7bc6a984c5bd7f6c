"""The archive transport of a container's state directory: ``get_archive`` and
``put_archive`` through the Engine (they work on a stopped container too), and
the few execs restore and reset run in a running one (``core.scripts``).
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from devc_tasks.core.archive import DEFAULT_MAX_SIZE
from devc_tasks.core.errors import EngineUnreachable, StateVolumeError, TimedOut, UsageError
from devc_tasks.core.identity import StateIdentity, state_identity_of_bytes
from devc_tasks.core.paths import LOCK_FILE, STATE_DIR, STATE_FILE
from devc_tasks.core.scripts import DAEMON_RUNS, LOCK_WAIT, STOPPED, locked

__all__ = ["StateContainer", "open_state"]



# --- the Engine part --------------------------------------------------------------


@dataclass
class StateContainer:
    """One container's state directory, reached through the Engine; it may be stopped."""

    client: Any
    id: str
    name: str
    attrs: dict[str, Any] = field(repr=False)  # inspect holds the container's env, a key included
    executor: Any = None  # DockerExecutor, for the execs restore and reset run in a running container

    @property
    def status(self) -> str:
        return str((self.attrs.get("State") or {}).get("Status") or "unknown")

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def labels(self) -> Mapping[str, str]:
        return (self.attrs.get("Config") or {}).get("Labels") or {}


def open_state(target: Any) -> StateContainer:
    """The container a resolved ``Target`` names (found with ``allow_stopped=True``)."""
    if target.engine is None or target.found is None:
        raise UsageError("the state tasks go through the Docker Engine's archive API: they take no --local")
    found = target.found.container
    return StateContainer(client=target.engine.client, id=found.id, name=found.name, attrs=target.executor.inspect(), executor=target.executor)


def stream_errors() -> tuple[type[BaseException], ...]:
    import docker.errors
    import requests.exceptions
    import urllib3.exceptions

    return (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, docker.errors.DockerException)


def get_archive(sc: StateContainer, path: str) -> tuple[Iterator[bytes], dict[str, Any]] | None:
    """``get_archive`` (works on a stopped container); None when ``path`` does not exist."""
    import docker.errors

    from devc_tasks.shell.executors import sdk_call

    def call() -> tuple[Iterator[bytes], dict[str, Any]] | None:
        try:
            return sc.client.api.get_archive(sc.id, path)
        except docker.errors.NotFound:
            return None

    return sdk_call(f"docker cp {sc.name}:{path}", call)


def put_archive(sc: StateContainer, path: str, data: bytes) -> None:
    import docker.errors

    from devc_tasks.shell.executors import sdk_call

    def call() -> None:
        try:
            ok = sc.client.api.put_archive(sc.id, path, data)
        except docker.errors.APIError as e:  # the engine answered: a write problem, not a lost engine
            raise StateVolumeError(
                f"cannot write {path} in {sc.name}: {e.explanation or e}",
                fix="Is the state volume (or the container's filesystem) mounted read-only?",
            ) from None
        if not ok:
            raise StateVolumeError(f"the Docker engine refused to write {path} in {sc.name}")

    sdk_call(f"docker cp - {sc.name}:{path}", call)


def state_file_identity(sc: StateContainer) -> StateIdentity:
    """What the state file holds, read through the archive API (works on a stopped
    container); its content stays in this process."""
    got = get_archive(sc, STATE_FILE)
    if got is None:
        return "absent"
    chunks, _ = got
    try:
        with tarfile.open(fileobj=io.BufferedReader(_ChunkReader(chunks)), mode="r|") as tf:
            for info in tf:
                if info.isreg() and info.size <= DEFAULT_MAX_SIZE:
                    f = tf.extractfile(info)
                    return state_identity_of_bytes(f.read() if f is not None else b"")
    except (tarfile.TarError, OSError, ValueError):
        return "broken"
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return "absent"


def state_file_size(sc: StateContainer) -> int | None:
    """Size of the state file from the archive API's stat header (its data is never read); None when there is none."""
    got = get_archive(sc, STATE_FILE)
    if got is None:
        return None
    chunks, stat = got
    close = getattr(chunks, "close", None)
    if close is not None:
        close()
    return int((stat or {}).get("size") or 0)


class _ChunkReader(io.RawIOBase):
    """A readable stream over the archive API's chunks, so tarfile can stream through them."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._rest:
            try:
                self._rest = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._rest))
        buffer[:n] = self._rest[:n]
        self._rest = self._rest[n:]
        return n


def state_listing(sc: StateContainer) -> set[str] | None:
    """The paths in the state directory, relative to it; None when it does not exist.

    Streams through the archive (file data is skipped, never held), so a big
    state directory costs time, not memory.
    """
    got = get_archive(sc, STATE_DIR)
    if got is None:
        return None
    chunks, _ = got
    out: set[str] = set()
    try:
        with tarfile.open(fileobj=_ChunkReader(chunks), mode="r|") as tf:
            for info in tf:
                parts = [p for p in info.name.split("/") if p not in ("", ".")][1:]
                if parts:
                    out.add("/".join(parts))
    except stream_errors() as e:
        raise EngineUnreachable(f"{sc.name}:{STATE_DIR}: lost the Docker engine while reading: {e}") from None
    except tarfile.TarError as e:
        raise StateVolumeError(f"cannot read {STATE_DIR} of {sc.name} through the archive API: {e}") from None
    return out


def exec_script(sc: StateContainer, script: str, *args: str, what: str, timeout: float = 60) -> str:
    r = sc.executor.run(["sh", "-c", script, "devc-tasks", *args], timeout=timeout)
    if r.exit_code != 0:
        raise StateVolumeError(f"{what} failed in {sc.name} (exit {r.exit_code}): {(r.stderr or r.stdout).strip()}")
    return r.stdout


def run_locked(sc: StateContainer, body: str, *args: str) -> tuple[Any, bool]:
    """(exec result, whether it stopped tailscaled); the caller checks the result with ``check_locked``."""
    r = sc.executor.run(["sh", "-c", locked(body), "devc-tasks", *args], timeout=LOCK_WAIT + 90)
    return r, STOPPED in r.stdout.split()


def check_locked(sc: StateContainer, r: Any, what: str) -> str:
    from devc_tasks.core.scripts import LOCK_BUSY

    if r.exit_code == 0:
        return r.stdout
    if r.exit_code == LOCK_BUSY:
        raise TimedOut(f"{what}: another devc-tasks command held {LOCK_FILE} for {LOCK_WAIT} s; nothing was changed", fix="Wait for it to finish, then retry.")
    if r.exit_code == DAEMON_RUNS:
        raise StateVolumeError(
            f"{what}: tailscaled started in {sc.name} meanwhile (another `up`?); nothing was changed",
            fix="Pass --stop-daemon: restore then stops tailscaled, replaces the state and starts it again.",
        )
    raise StateVolumeError(f"{what} failed in {sc.name} (exit {r.exit_code}): {(r.stderr or r.stdout).strip()}")
