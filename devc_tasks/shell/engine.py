"""The Docker Engine edge: the client, finding the container, running commands in it.

Everything here does I/O; the decisions it needs (which container of several,
which engine URL is local) are small pure functions so they can be tested
without an engine. Docker SDK errors are mapped to library errors here and
nowhere else. ``docker`` is imported inside functions: ``inv --list`` must not
pay for it.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from devc_tasks.core.endpoint import ContextStore, Endpoint, TLSFiles, choose_endpoint, config_dir, is_local_url, tls_problem
from devc_tasks.core.errors import (
    AmbiguousContainer,
    ContainerNotFound,
    ContainerNotRunning,
    EngineRefused,
    EngineUnreachable,
    TailscaleFailed,
    TimedOut,
    UsageError,
)

__all__ = [
    "ContainerInfo",
    "DockerExecutor",
    "Engine",
    "ExecResult",
    "Executor",
    "LocalExecutor",
    "choose_container",
    "find_container",
    "is_local_url",
    "open_engine",
    "sdk_call",
    "volume_lookup",
]

LABEL_LOCAL_FOLDER = "devcontainer.local_folder"
LABEL_CONFIG_FILE = "devcontainer.config_file"
LABEL_COMPOSE_PROJECT = "com.docker.compose.project"
LABEL_COMPOSE_SERVICE = "com.docker.compose.service"


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


def volume_lookup(client: Any) -> Callable[[str], Mapping[str, Any] | None]:
    """``docker volume inspect`` as a function: None for a volume that does not exist."""

    def lookup(name: str) -> Mapping[str, Any] | None:
        import docker.errors

        def call() -> Mapping[str, Any] | None:
            try:
                return client.api.inspect_volume(name)
            except docker.errors.NotFound:
                return None

        return sdk_call("docker volume inspect", call)

    return lookup


def parse_env(entries: Sequence[str] | None) -> dict[str, str]:
    """``Config.Env`` as a dict; ``null`` (e.g. images from ``docker import``) is empty."""
    out: dict[str, str] = {}
    for entry in entries or ():
        key, _, value = entry.partition("=")
        out[key] = value
    return out


# --- the engine ------------------------------------------------------------


@dataclass(frozen=True)
class Engine:
    client: Any
    url: str
    local: bool
    context: str | None = None

    @property
    def label(self) -> str:
        """The engine as the docker CLI names it: ``context "NAME" (URL)``, or the URL."""
        return Endpoint(url=self.url, context=self.context).label

    def host_name(self) -> tuple[str, str]:
        """The machine that runs the Engine, and where that came from.

        Never the container's hostname: it is the container id and changes
        with every recreate.
        """
        if self.local:
            return socket.gethostname(), "this machine"
        info = sdk_call("docker info", self.client.info)
        return str(info.get("Name") or "remote"), f"engine at {self.label}"


SSH_TRANSPORTS = ("auto", "paramiko", "ssh")


def ssh_transport(environ: Mapping[str, str], paramiko_installed: bool) -> str:
    """``paramiko`` or ``ssh`` (the system client): ``DEVC_SSH_TRANSPORT``, else paramiko when installed.

    A plain install has no paramiko; the system ssh client then serves, as it
    does for the docker CLI.
    """
    wanted = (environ.get("DEVC_SSH_TRANSPORT") or "auto").strip().lower()
    if wanted not in SSH_TRANSPORTS:
        raise UsageError(f"DEVC_SSH_TRANSPORT={wanted!r} is not a transport", fix="Use paramiko, ssh (the system ssh client) or auto.")
    if wanted == "auto":
        return "paramiko" if paramiko_installed else "ssh"
    return wanted


def _paramiko_installed() -> bool:
    try:
        import paramiko  # noqa: F401  (only on the ssh:// path, where it would be loaded anyway)
    except ImportError:
        return False
    return True


def _engine_fix(label: str) -> str:
    return (
        f"Is the Docker engine at {label} running and yours to use? "
        "Check `docker version`; pick another engine with --host URL or --context NAME."
    )


def _ssh_fix(url: str) -> str:
    return (
        f"Check that `docker -H {url} version` works from here without a prompt: it uses the same ssh "
        "(~/.ssh/config, your key or ssh agent, the engine's host key in ~/.ssh/known_hosts), and the docker CLI on the far side."
    )


def _tls_fix(endpoint: Endpoint) -> str:
    where = f"the TLS files of context {endpoint.context!r} (`docker context inspect {endpoint.context}`)" if endpoint.context else "DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem)"
    return (
        f"The TLS handshake with {endpoint.url} failed: check {where}: ca.pem must be the CA that signed the engine's certificate, "
        "and cert.pem/key.pem a client certificate that engine's CA signed; with DOCKER_TLS_VERIFY=1 all three are needed."
    )


def _tls_config(files: TLSFiles) -> Any:
    import docker.tls

    cert = (files.cert, files.key) if files.cert and files.key else None
    return docker.tls.TLSConfig(client_cert=cert, ca_cert=files.ca, verify=files.verify)


def _engine_ca_wins(api: Any) -> None:
    """Verify the engine against its own CA whatever REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE say.

    requests replaces a session's ``verify`` by those variables on every
    request (docker/docker-py#2433): a TLS engine with its own CA then fails
    with "self-signed certificate in certificate chain" where the docker CLI
    works. Proxies and the rest of the environment still apply.
    """
    merge = api.merge_environment_settings

    def merge_keeping_verify(url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        settings = merge(url, proxies, stream, verify, cert)
        if verify is None and (isinstance(api.verify, str) or api.verify is False):
            settings["verify"] = api.verify
        return settings

    api.merge_environment_settings = merge_keeping_verify


def _client(endpoint: Endpoint, environ: Mapping[str, str]) -> Any:
    """A connected ``docker.DockerClient`` for the endpoint; SDK errors pass through."""
    import docker

    if endpoint.url.startswith("ssh://"):
        if ssh_transport(environ, _paramiko_installed()) == "ssh":
            from devc_tasks.shell.sshconn import system_ssh_client

            return system_ssh_client(endpoint.url, timeout=60)
        return docker.DockerClient(base_url=endpoint.url, use_ssh_client=False)
    from docker.constants import MINIMUM_DOCKER_API_VERSION

    kwargs: dict[str, Any] = {"base_url": endpoint.url}
    if endpoint.tls is not None:
        kwargs["tls"] = _tls_config(endpoint.tls)
        if not endpoint.tls.verify:  # DOCKER_TLS without _VERIFY, or SkipTLSVerify: asked for; the CLI is silent
            import warnings

            import urllib3.exceptions

            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
    # a pinned version contacts nothing: the CA fix must be in place before the first request
    client = docker.DockerClient(**kwargs, version=MINIMUM_DOCKER_API_VERSION)
    _engine_ca_wins(client.api)
    client.api._version = client.api._retrieve_server_version()
    return client


def open_engine(*, host: str | None = None, context: str | None = None, environ: Mapping[str, str] = os.environ) -> Engine:
    """Connect to the Engine named by --host, --context, DOCKER_HOST/DOCKER_CONTEXT, the current context, or the default."""
    endpoint = choose_endpoint(host=host, context=context, environ=environ, contexts=ContextStore(config_dir(environ)))
    import docker.errors
    import requests.exceptions

    label = endpoint.label
    if endpoint.tls is not None and (problem := tls_problem(endpoint.tls)):
        raise EngineUnreachable(f"cannot use the TLS files for the Docker engine at {label}: {problem}", fix=_tls_fix(endpoint))
    try:
        client = _client(endpoint, environ)
        client.ping()
    except UsageError:
        raise
    except docker.errors.TLSParameterError as e:
        raise EngineUnreachable(f"cannot use the TLS files for the Docker engine at {label}: {e}", fix=_tls_fix(endpoint)) from None
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as e:
        text = str(e)
        fix = _engine_fix(label)
        if "paramiko" in text:
            fix = "ssh:// engines through paramiko need it: pip install 'devc-tasks[ssh]', or use the system ssh client: DEVC_SSH_TRANSPORT=ssh"
        elif endpoint.url.startswith("ssh://"):
            fix = _ssh_fix(endpoint.url)
        elif _is_tls_failure(e):
            fix = _tls_fix(endpoint)
        raise EngineUnreachable(f"cannot reach the Docker engine at {label}: {text}", fix=fix) from None
    except ValueError as e:  # a malformed URL (e.g. an unclosed IPv6 bracket)
        raise UsageError(f"not a Docker engine URL: {endpoint.url!r} ({e})", fix="Give unix:///path, tcp://HOST:PORT or ssh://USER@HOST.") from None
    except Exception as e:
        if type(e).__module__.startswith("paramiko"):  # host key unknown, authentication failed, ...
            raise EngineUnreachable(
                f"cannot reach the Docker engine at {label} over ssh (paramiko): {type(e).__name__}: {e}",
                fix=_ssh_fix(endpoint.url) + " paramiko reads only part of ~/.ssh/config; the system ssh client reads all of it: DEVC_SSH_TRANSPORT=ssh.",
            ) from None
        raise
    return Engine(client=client, url=endpoint.url, local=endpoint.local, context=endpoint.context)


def _is_tls_failure(e: BaseException) -> bool:
    """An SSL error anywhere in the chain (requests wraps it several times)."""
    text = str(e)
    return "SSL" in text or "certificate" in text.lower() or "TLSV1_ALERT" in text


# --- finding the container -------------------------------------------------


@dataclass(frozen=True)
class ContainerInfo:
    id: str
    name: str
    status: str  # running, exited, created, paused, ...
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.status == "running"


@dataclass(frozen=True)
class Found:
    container: ContainerInfo
    how: str  # how it was found, for `doctor` and error messages
    attrs: Mapping[str, Any] | None = None  # the inspect document, when the lookup fetched it


_NAME_HINT = "Name it with --container NAME|ID (see `docker ps`), or run from the workspace folder / pass --workspace DIR."


def choose_container(candidates: Sequence[ContainerInfo], searched: str, *, allow_stopped: bool = False) -> ContainerInfo | None:
    """Pick one container from the matches of one search, or explain why not.

    A stopped container beside a running one is an old copy: the running one
    wins. Several running ones (or several stopped ones and none running) are
    ambiguous. None found returns None so the caller can try the next rule.
    ``allow_stopped`` accepts a stopped one (the state tasks use the archive API).
    """
    if not candidates:
        return None
    running = [c for c in candidates if c.running]
    pool = running or list(candidates)
    if len(pool) > 1:
        listing = "\n".join(f"  {c.name} ({c.id[:12]}, {c.status})" for c in pool)
        raise AmbiguousContainer(f"several containers match {searched}:\n{listing}", fix=_NAME_HINT)
    chosen = pool[0]
    if not chosen.running and not allow_stopped:
        raise ContainerNotRunning(
            f"container {chosen.name} ({chosen.id[:12]}), found by {searched}, is {chosen.status}",
            fix="Start it first: `devcontainer up --workspace-folder DIR`, `docker compose up -d` or `docker start NAME`.",
        )
    return chosen


def _info(c: Any) -> ContainerInfo:
    """A container from either shape: inspect (``State`` an object) or ``docker ps`` (sparse)."""
    attrs = c.attrs
    state = attrs.get("State")
    status = state.get("Status") if isinstance(state, dict) else state
    name = attrs.get("Name") or next(iter(attrs.get("Names") or []), "")
    labels = (attrs.get("Config") or {}).get("Labels") if "Config" in attrs else attrs.get("Labels")
    return ContainerInfo(id=c.id, name=str(name).lstrip("/"), status=str(status or "unknown"), labels=labels or {})


def _list(client: Any, labels: list[str]) -> list[ContainerInfo]:
    """One ``docker ps`` call (sparse: no inspect per container)."""
    found = sdk_call("docker ps", lambda: client.containers.list(all=True, sparse=True, filters={"label": labels}))
    return [_info(c) for c in found]


def workspace_candidates(workspace: Path) -> list[str]:
    """The spellings of the workspace folder the devcontainer CLI may have recorded.

    The CLI stores the folder as it was given, symlinks not resolved: try the
    folder as we found it (from the logical current directory, see
    ``logical_cwd``) and its resolved form.
    """
    return list(dict.fromkeys([str(workspace), str(workspace.resolve())]))


def logical_cwd(environ: Mapping[str, str] = os.environ) -> Path:
    """The current directory as the shell spells it ($PWD), when that is where we are."""
    cwd = Path.cwd()
    pwd = environ.get("PWD")
    if pwd and os.path.isabs(pwd):
        try:
            if Path(pwd).resolve() == cwd.resolve():
                return Path(pwd)
        except OSError:
            pass
    return cwd


def find_container(
    engine: Engine,
    *,
    container: str | None,
    workspace: Path | None,
    config_path: Path | None,
    compose_project: str | None,
    compose_service: str | None,
    allow_stopped: bool = False,
) -> Found:
    """The design's discovery order: --container, devcontainer labels, compose project/service."""
    client = engine.client
    if container:
        # Docker's own rule for names (daemon/names: ``^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$``), ids and
        # their prefixes included; docker-py puts the value into the URL as is, so `../images`
        # would read GET /images/json.
        if not re.fullmatch(r"/?[A-Za-z0-9][A-Za-z0-9_.-]*", container):
            raise ContainerNotFound(f"no container named {container!r} on {engine.url}: that is no container name or id", fix="See `docker ps -a` for names and ids.")
        try:
            c = sdk_call(f"docker inspect {container}", lambda: client.containers.get(container))
        except ContainerNotFound:
            raise ContainerNotFound(f"no container named {container!r} on {engine.label}", fix="See `docker ps -a` for names and ids.") from None
        info = _info(c)
        chosen = choose_container([info], f"--container {container}", allow_stopped=allow_stopped)
        assert chosen is not None
        return Found(chosen, "--container", attrs=c.attrs)  # the executor needs no second inspect

    searched: list[str] = []
    if workspace is not None:
        for folder in workspace_candidates(workspace):
            rules = []
            if config_path is not None:
                rules.append([f"{LABEL_LOCAL_FOLDER}={folder}", f"{LABEL_CONFIG_FILE}={config_path}"])
            rules.append([f"{LABEL_LOCAL_FOLDER}={folder}"])
            for labels in rules:
                desc = " and ".join(labels)
                searched.append(f"labels {desc}")
                chosen = choose_container(_list(client, labels), f"labels {desc}", allow_stopped=allow_stopped)
                if chosen:
                    return Found(chosen, f"devcontainer labels ({LABEL_LOCAL_FOLDER}={folder})")
    if compose_project and compose_service:
        labels = [f"{LABEL_COMPOSE_PROJECT}={compose_project}", f"{LABEL_COMPOSE_SERVICE}={compose_service}"]
        desc = f"compose project {compose_project!r}, service {compose_service!r}"
        searched.append(desc)
        chosen = choose_container(_list(client, labels), desc, allow_stopped=allow_stopped)
        if chosen:
            return Found(chosen, desc)
    if not searched:
        raise ContainerNotFound(
            "no container given and no devcontainer configuration found from the current folder upward",
            fix=_NAME_HINT,
        )
    raise ContainerNotFound(
        f"no container on {engine.label} matches:\n" + "\n".join(f"  {s}" for s in searched),
        fix="Start the devcontainer (`devcontainer up --workspace-folder .`) or " + _NAME_HINT[0].lower() + _NAME_HINT[1:],
    )


def executor_for(engine: Engine, found: Found) -> DockerExecutor:
    attrs = dict(found.attrs) if found.attrs is not None else None
    return DockerExecutor(client=engine.client, container_id=found.container.id, description=f"container {found.container.name}", _attrs=attrs)
