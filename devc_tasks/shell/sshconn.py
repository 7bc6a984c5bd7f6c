"""ssh:// engines through the system ``ssh`` client, as the docker CLI reaches them.

The Docker SDK has two ssh transports: paramiko, and shelling out to ``ssh``
(``use_ssh_client=True``). Its shell-out transport lives in a module that
imports paramiko first, so a plain install (no paramiko) has no ssh:// at all;
it also cannot half-close stdin, ignores read timeouts and lets ssh's own
errors go to the terminal. This is the same transport without those gaps:
each HTTP connection is one ``ssh [-l USER] [-p PORT] -- HOST docker system
dial-stdio`` (the command the docker CLI runs), so the user's ``~/.ssh/config``,
agent and known_hosts apply exactly as for ``docker -H ssh://…``. Nothing
secret is ever on that command line: the auth key travels inside the tunnel,
on the exec's stdin.
"""

from __future__ import annotations

import io
import os
import queue
import select
import signal
import subprocess
import tempfile
import urllib.parse
from collections.abc import Mapping
from typing import Any

from devc_tasks.core.apirules import ENV_API_KEY, ENV_CLIENT_SECRET
from devc_tasks.core.secrets import ENV_AUTHKEY

__all__ = ["ssh_argv", "ssh_env", "system_ssh_client"]

# never handed to ssh: its ProxyCommand/LocalCommand/SendEnv would carry them on
_SECRET_VARS = (ENV_AUTHKEY, ENV_CLIENT_SECRET, ENV_API_KEY)


def ssh_argv(url: str) -> list[str]:
    """The ssh command line for an ``ssh://[USER@]HOST[:PORT]`` engine (the docker CLI's, less its 30 s ConnectTimeout)."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme != "ssh" or not parsed.hostname:
        raise ValueError(f"not an ssh:// URL: {url!r}")
    argv = ["ssh", "-T", "-o", "ConnectTimeout=30"]
    if parsed.username:
        argv += ["-l", urllib.parse.unquote(parsed.username)]  # decoded, as Go's Username()
    if parsed.port:
        argv += ["-p", str(parsed.port)]
    return [*argv, "--", parsed.hostname, "docker", "system", "dial-stdio"]


def ssh_env(environ: Mapping[str, str]) -> dict[str, str]:
    """ssh's environment: ours less the secrets, and less what a bundled (PyInstaller-style) Python set for itself."""
    return {k: v for k, v in environ.items() if k not in ("LD_LIBRARY_PATH", "SSL_CERT_FILE", *_SECRET_VARS)}


class _Reader(io.RawIOBase):
    """ssh's stdout as a raw stream whose reads honour the socket's timeout."""

    def __init__(self, sock: SSHProcessSocket) -> None:
        self.sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self.sock.recv_into(buffer)


class SSHProcessSocket:
    """A socket-shaped object over one ``ssh … docker system dial-stdio`` process."""

    def __init__(self, url: str) -> None:
        self.argv = ssh_argv(url)
        self.timeout: float | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._stderr = tempfile.TemporaryFile()
        self._got_data = False

    def connect(self) -> None:
        def no_sigint() -> None:
            signal.signal(signal.SIGINT, signal.SIG_IGN)

        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=ssh_env(os.environ), preexec_fn=no_sigint)

    def settimeout(self, timeout: float | None) -> None:
        self.timeout = timeout

    def gettimeout(self) -> float | None:
        return self.timeout

    def setsockopt(self, *args: Any) -> None:
        pass  # urllib3 sets TCP options; there is no TCP socket here

    def fileno(self) -> int:
        assert self.proc is not None and self.proc.stdout is not None
        return self.proc.stdout.fileno()

    def sendall(self, data: bytes) -> None:
        if self.proc is None or self.proc.stdin is None or self.proc.stdin.closed:
            raise BrokenPipeError("the ssh connection to the engine is closed")
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, data: bytes) -> int:
        self.sendall(data)
        return len(data)

    def shutdown(self, how: int) -> None:
        """SHUT_WR closes ssh's stdin: the far side's dial-stdio half-closes the engine connection."""
        if self.proc is not None and self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()

    def _ssh_error(self) -> str:
        self._stderr.seek(0)
        lines = [ln for ln in self._stderr.read().decode(errors="replace").splitlines() if ln.strip()]
        return " / ".join(lines[-3:])

    def recv_into(self, buffer: Any) -> int:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], self.timeout)
        if not ready:
            raise TimeoutError("timed out reading from the engine over ssh")
        data = os.read(fd, len(buffer))
        if not data and not self._got_data:
            self.proc.wait(timeout=5)
            raise ConnectionError(f"ssh to the engine failed (exit {self.proc.returncode}): {self._ssh_error() or 'no message'}")
        self._got_data = True
        buffer[: len(data)] = data
        return len(data)

    def recv(self, n: int) -> bytes:
        buf = bytearray(n)
        got = self.recv_into(memoryview(buf))
        return bytes(buf[:got])

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> Any:
        if self.proc is None:
            self.connect()
        reader = io.BufferedReader(_Reader(self))
        reader.channel = self  # type: ignore[attr-defined]  # where the SDK finds the socket of an ssh response
        return reader

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.stdin is not None and not proc.stdin.closed:
                try:
                    proc.stdin.close()
                except OSError:
                    pass
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        self._stderr.close()


def system_ssh_client(url: str, *, timeout: float) -> Any:
    """A ``docker.DockerClient`` whose requests go through the system ssh client; no paramiko needed."""
    import docker
    import urllib3
    import urllib3.connection
    from docker.constants import DEFAULT_MAX_POOL_SIZE, MINIMUM_DOCKER_API_VERSION
    from docker.transport.basehttpadapter import BaseHTTPAdapter

    ssh_argv(url)  # a malformed URL fails here, before anything runs

    class Connection(urllib3.connection.HTTPConnection):
        def __init__(self, conn_timeout: float) -> None:
            super().__init__("localhost", timeout=conn_timeout)
            self.conn_timeout = conn_timeout

        def connect(self) -> None:
            sock = SSHProcessSocket(url)
            sock.settimeout(self.conn_timeout)
            sock.connect()
            self.sock = sock

    class Pool(urllib3.connectionpool.HTTPConnectionPool):
        scheme = "ssh"

        def __init__(self) -> None:
            super().__init__("localhost", timeout=timeout, maxsize=DEFAULT_MAX_POOL_SIZE)

        def _new_conn(self) -> Connection:
            return Connection(timeout)

        def _get_conn(self, timeout: float | None = None) -> Any:
            # no "is the connection dropped" poll: there is no TCP socket to poll (as the SDK's own ssh pool)
            conn = None
            if self.pool is None:
                raise urllib3.exceptions.ClosedPoolError(self, "Pool is closed.")
            try:
                conn = self.pool.get(block=self.block, timeout=timeout)
            except queue.Empty:
                pass
            return conn or self._new_conn()

    class Adapter(BaseHTTPAdapter):
        def __init__(self) -> None:
            self.pool = Pool()
            super().__init__()

        def get_connection(self, url: str, proxies: Any = None) -> Pool:
            return self.pool

        def get_connection_with_tls_context(self, request: Any, verify: Any, proxies: Any = None, cert: Any = None) -> Pool:
            return self.pool

        def close(self) -> None:
            super().close()
            self.pool.close()

    # Built on a unix URL with a pinned version (nothing is contacted), then pointed at ssh.
    client = docker.DockerClient(base_url="unix:///nonexistent.sock", version=MINIMUM_DOCKER_API_VERSION, timeout=int(timeout))
    api = client.api
    adapter = Adapter()
    api._custom_adapter = adapter
    api.mount("http+docker://ssh", adapter)
    api.base_url = "http+docker://ssh"
    api._version = api._retrieve_server_version()
    return client
