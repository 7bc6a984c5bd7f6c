"""Running one command in a container (``DockerExecutor``, through the Engine's exec
API) or on this machine (``LocalExecutor``): bounded in time and in output, stdin
for the secret, never an environment that carries a key. ``sdk_call`` maps Docker
SDK errors to the library's own, here and nowhere else.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from devc_tasks.core.errors import (
    ContainerNotFound,
    ContainerNotRunning,
    EngineRefused,
    EngineUnreachable,
    TailscaleFailed,
    TimedOut,
)

__all__ = ["DockerExecutor", "ExecResult", "Executor", "LocalExecutor", "sdk_call"]

# Every command run in the container (or locally) gets an overall deadline, not an
# idle timeout (a command that prints a byte now and then would never time out),
# and its output is capped: the largest thing we read is `status --json` of a big
# tailnet, far below this.
MAX_OUTPUT = 16 * 1024 * 1024
# Environment variables that may hold an auth key. Nothing devc-tasks starts in the
# container (tailscaled, timeout, tailscale up, ...) inherits them: every exec sets
# them empty, and the local executor drops them.
KEY_ENV = ("TAILSCALE_AUTHKEY", "TS_AUTHKEY", "TS_AUTH_KEY")


def _deadline_error(argv: Sequence[str], timeout: float, where: str = " in the container") -> TimedOut:
    return TimedOut(
        f"`{argv[0]}`{where} did not finish within {timeout:g} s",
        fix="Check the container (`docker top`), then retry with a larger --timeout.",
    )


def _too_much(argv: Sequence[str], cap: int) -> TailscaleFailed:
    return TailscaleFailed(
        f"`{argv[0]}` printed more than {cap // (1024 * 1024)} MiB; devc-tasks stopped reading it",
        fix="Look at what the command prints in the container (`docker exec`).",
    )


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str


class Executor(Protocol):
    """Runs a command where tailscale lives: a container through the Engine, or here."""

    description: str

    def run(self, argv: Sequence[str], *, stdin: bytes | None = None, timeout: float = 30.0) -> ExecResult: ...

    def env(self) -> Mapping[str, str]: ...


T = TypeVar("T")


def sdk_call(what: str, call: Callable[[], T]) -> T:
    """Run one SDK call, turning transport and API errors into library errors."""
    import docker.errors
    import requests.exceptions

    try:
        return call()
    except docker.errors.NotFound as e:
        raise ContainerNotFound(f"{what}: {e.explanation or e}") from None
    except docker.errors.APIError as e:
        text = str(e.explanation or e)
        if e.status_code == 409 and ("is not running" in text or "is paused" in text):
            state = "paused" if "is paused" in text else "not running"
            raise ContainerNotRunning(
                f"{what}: the container is {state}",
                fix="Start (or unpause) it, e.g. `devcontainer up`, `docker start NAME`, `docker unpause NAME`, then try again.",
            ) from None
        raise EngineRefused(
            f"{what}: the Docker engine refused: {e.status_code} {text}",
            fix="The Engine reported a failure of its own: check its log (e.g. `journalctl -u docker`) and `docker info`, then retry.",
        ) from None
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as e:
        raise EngineUnreachable(f"{what}: lost the Docker engine: {e}") from None


@dataclass
class DockerExecutor:
    """docker exec through the Engine API, as root, output read with a bound.

    Everything goes through one socket path so that every read has a timeout
    (the SDK's own reads of exec output never time out) and stdin can carry a
    secret without it appearing in the exec's recorded command line.
    """

    client: Any
    container_id: str
    description: str = ""
    user: str = "0"
    _attrs: dict[str, Any] | None = field(default=None, repr=False)

    def run(self, argv: Sequence[str], *, stdin: bytes | None = None, timeout: float = 30.0) -> ExecResult:
        """Run argv; the whole exec (start, stdin, every output frame) must end within
        ``timeout`` seconds and print at most ``MAX_OUTPUT`` bytes. The Engine cannot kill
        an exec, so in-container commands are bounded in the container too (``timeout``)."""
        api = self.client.api
        deadline = time.monotonic() + timeout
        blank = [f"{name}=" for name in KEY_ENV]
        exec_id = sdk_call(
            "docker exec",
            lambda: api.exec_create(self.container_id, list(argv), stdin=stdin is not None, user=self.user, environment=blank)["Id"],
        )
        sock = sdk_call("docker exec", lambda: api.exec_start(exec_id, socket=True))
        raw = getattr(sock, "_sock", sock)
        out: list[bytes] = []
        err: list[bytes] = []
        size = 0

        def arm() -> None:
            """Before every read: the socket may block only until the deadline."""
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            raw.settimeout(left)

        try:
            arm()
            if stdin is not None:
                try:
                    raw.sendall(stdin)
                    # Half-close so a reader sees EOF; a TLS socket cannot half-close
                    # (shutdown ends TLS), so there the script reads just one line.
                    if not isinstance(raw, ssl.SSLSocket):
                        raw.shutdown(socket.SHUT_WR)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the command exited without reading; its exit code tells
            for stream, data in _frames(sock, arm):
                size += len(data)
                if size > MAX_OUTPUT:
                    raise _too_much(argv, MAX_OUTPUT)
                (err if stream == 2 else out).append(data)
                if time.monotonic() > deadline:
                    raise TimeoutError
        except TimeoutError:
            raise _deadline_error(argv, timeout) from None
        except OSError as e:
            raise EngineUnreachable(f"lost the connection to the Docker engine during `{argv[0]}`: {e}") from None
        finally:
            _close_exec_socket(sock, raw)
        code = None
        for _ in range(50):
            info = sdk_call("docker exec", lambda: api.exec_inspect(exec_id))
            code = info.get("ExitCode")
            if not info.get("Running") and code is not None:
                break
            time.sleep(0.02)
        return ExecResult(code if code is not None else -1, b"".join(out).decode(errors="replace"), b"".join(err).decode(errors="replace"))

    def inspect(self) -> dict[str, Any]:
        """The container's inspect document, fetched once per executor."""
        if self._attrs is None:
            self._attrs = sdk_call("docker inspect", lambda: self.client.api.inspect_container(self.container_id))
        return self._attrs

    def env(self) -> Mapping[str, str]:
        return parse_env((self.inspect().get("Config") or {}).get("Env"))


def _close_exec_socket(sock: Any, raw: Any) -> None:
    """Close the exec's connection now: closing only the SDK's socket wrapper leaves the
    descriptor open until the garbage collector finds the HTTP response holding it."""
    for closable in (getattr(sock, "_response", None), sock, raw):
        try:
            if closable is not None:
                closable.close()
        except (OSError, ValueError):  # already closed through another of them
            pass


def _frames(sock: Any, arm: Callable[[], None] = lambda: None) -> Iterator[tuple[int, bytes]]:
    """The multiplexed exec stream: (stream, data) per frame (1 stdout, 2 stderr).

    Read through the HTTP response's buffered reader when there is one: the
    HTTP parser may already have read the first frames along with the upgrade
    headers (it happens over TCP), and reading the raw socket would lose them.
    ``arm`` runs before every read (it sets the socket's timeout to what is left).
    """
    response = getattr(sock, "_response", None)
    reader = getattr(getattr(getattr(response, "raw", None), "_fp", None), "fp", None)
    if reader is None or not hasattr(reader, "read"):
        from docker.utils.socket import frames_iter

        yield from frames_iter(sock, tty=False)
        return
    while True:
        arm()
        header = reader.read(8)
        if len(header) < 8:
            return
        size = int.from_bytes(header[4:8], "big")
        if size > MAX_OUTPUT:
            raise TailscaleFailed(f"the exec stream announced a {size}-byte frame; devc-tasks stopped reading it")
        arm()
        data = reader.read(size) if size else b""
        yield header[0], data
        if len(data) < size:
            return


@dataclass
class LocalExecutor:
    """Runs commands on this machine: ``--local``, from inside the container."""

    description: str = "this machine (--local)"

    def run(self, argv: Sequence[str], *, stdin: bytes | None = None, timeout: float = 30.0) -> ExecResult:
        """Run argv in its own session without the key variables in its environment; at
        the deadline (or past ``MAX_OUTPUT`` bytes of output) its whole process group is
        killed (a daemon it started with setsid is in a session of its own and stays)."""
        import selectors
        import signal

        env = {k: v for k, v in os.environ.items() if k not in KEY_ENV}
        try:
            p = subprocess.Popen(
                list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True
            )
        except FileNotFoundError:
            return ExecResult(127, "", f"{argv[0]}: not found\n")
        assert p.stdin is not None and p.stdout is not None and p.stderr is not None
        deadline = time.monotonic() + timeout
        chunks: dict[int, list[bytes]] = {1: [], 2: []}
        size = 0
        failure: Exception | None = None
        try:
            try:
                if stdin:
                    p.stdin.write(stdin)
                p.stdin.close()
            except BrokenPipeError:
                pass  # the command exited without reading; its exit code tells
            with selectors.DefaultSelector() as sel:
                sel.register(p.stdout, selectors.EVENT_READ, 1)
                sel.register(p.stderr, selectors.EVENT_READ, 2)
                while sel.get_map():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        failure = _deadline_error(argv, timeout, "")
                        break
                    for key, _ in sel.select(left):
                        data = os.read(key.fd, 65536)
                        if not data:
                            sel.unregister(key.fileobj)
                            continue
                        size += len(data)
                        if size > MAX_OUTPUT:
                            failure = _too_much(argv, MAX_OUTPUT)
                            break
                        chunks[key.data].append(data)
                    if failure is not None:
                        break
            if failure is None:
                try:
                    p.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    failure = _deadline_error(argv, timeout, "")
        finally:
            if failure is not None or p.returncode is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                p.wait()
            p.stdout.close()
            p.stderr.close()
        if failure is not None:
            raise failure
        return ExecResult(p.returncode, b"".join(chunks[1]).decode(errors="replace"), b"".join(chunks[2]).decode(errors="replace"))

    def env(self) -> Mapping[str, str]:
        return os.environ


def parse_env(entries: Sequence[str] | None) -> dict[str, str]:
    """``Config.Env`` as a dict; ``null`` (e.g. images from ``docker import``) is empty."""
    out: dict[str, str] = {}
    for entry in entries or ():
        key, _, value = entry.partition("=")
        out[key] = value
    return out
