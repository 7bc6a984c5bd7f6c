"""Other engines for the tests, each a real server started by the tests on loopback or a private socket:

- ``tls_dockerd``: a second ``dockerd`` of its own (data root, exec root, pid
  file, unix socket) listening on ``tcp://127.0.0.1:PORT`` with ``--tlsverify``
  and certificates made by the tests; ``--bridge=none --iptables=false`` so it
  touches no network setting of the machine. The shared engine is never
  restarted. Its data root is kept between runs (under the test cache) so the
  test image is loaded once per machine; a lock keeps two runs apart.
- ``sshd``: Debian's OpenSSH server on a free loopback port, with a throwaway
  host key and client key, in front of the machine's own engine (``docker
  system dial-stdio`` on the far side, as for any ssh:// engine). A
  ``ForceCommand`` records each command a client asks to run (the engine side).
- ``podman_service``: rootful Podman's Docker-compatible API on a private
  socket (``podman system service --time=0 unix://…``).

Each is a context manager; the integration tests hold one per session.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.certs import Certs, make_certs
from tests.support.images import CACHE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(what: str, ready, proc: subprocess.Popen, log: Path, bound: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        if ready():
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer within {bound:g} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen, grace: float = 20.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _docker(sock: str, *args: str, **kw) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    return subprocess.run(["docker", "-H", f"unix://{sock}", *args], capture_output=True, **kw)


def move_image(image: str, load: list[str]) -> None:
    """``docker save IMAGE | <load>``: no registry is reachable."""
    save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
    subprocess.run(load, stdin=save.stdout, check=True, capture_output=True)
    if save.wait() != 0:
        raise RuntimeError(f"docker save {image} failed")


# --- a TLS engine ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TLSEngine:
    url: str  # tcp://127.0.0.1:PORT
    sock: str  # its own unix socket, for test setup only
    certs: Certs


@contextmanager
def tls_dockerd(workdir: Path, image: str) -> Iterator[TLSEngine]:
    certs = make_certs(workdir / "certs")
    root = CACHE / "dockerd-tls"
    root.mkdir(parents=True, exist_ok=True)
    lock = open(root / "lock", "w")  # noqa: SIM115 - held for the session
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        data = root / "data"  # kept: the image stays loaded for the next run
    except BlockingIOError:
        data = workdir / "dockerd-data"  # another run holds the shared one
    run = Path(f"/run/devc-test-{workdir.name}")
    sock = str(run / "docker.sock")
    port = free_port()
    log = workdir / "dockerd.log"
    argv = [
        "dockerd", "--data-root", str(data), "--exec-root", str(run / "exec"), "--pidfile", str(run / "docker.pid"),
        "-H", f"unix://{sock}", "-H", f"tcp://127.0.0.1:{port}",
        "--tlsverify", "--tlscacert", str(certs.ca), "--tlscert", str(certs.server_cert), "--tlskey", str(certs.server_key),
        "--bridge=none", "--iptables=false", "--ip-masq=false", "--ip-forward=false",
    ]  # fmt: skip
    run.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait("the TLS dockerd", lambda: _docker(sock, "version").returncode == 0, proc, log)
        if _docker(sock, "image", "inspect", image).returncode != 0:
            move_image(image, ["docker", "-H", f"unix://{sock}", "load", "-q"])
        yield TLSEngine(url=f"tcp://127.0.0.1:{port}", sock=sock, certs=certs)
    finally:
        _stop(proc)
        lock.close()
        shutil.rmtree(run, ignore_errors=True)
        if data.parent == workdir:
            shutil.rmtree(data, ignore_errors=True)


# --- an ssh:// engine ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SSHEngine:
    port: int
    home_ssh: Path  # what ~/.ssh holds for the client: id_ed25519, known_hosts, config (alias `devc-engine`)
    commands_log: Path  # the engine side: each command a client asked sshd to run
    client_log: Path  # the host side: each `ssh` command line (a PATH wrapper that execs the real ssh)
    wrapper_dir: Path

    @property
    def url(self) -> str:
        return f"ssh://root@127.0.0.1:{self.port}"


@contextmanager
def sshd(workdir: Path) -> Iterator[SSHEngine]:
    workdir.mkdir(parents=True, exist_ok=True)
    server = workdir / "server"
    home_ssh = workdir / "dot-ssh"
    wrappers = workdir / "bin"
    for d in (server, home_ssh, wrappers):
        d.mkdir(exist_ok=True)
    home_ssh.chmod(0o700)
    keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", ""]
    subprocess.run([*keygen, "-f", str(server / "host_key")], check=True)
    subprocess.run([*keygen, "-f", str(home_ssh / "id_ed25519")], check=True)
    shutil.copy(home_ssh / "id_ed25519.pub", server / "authorized_keys")
    port = free_port()
    commands_log = workdir / "engine-side-commands.log"
    client_log = workdir / "host-side-ssh.log"
    record = server / "record-command"
    record.write_text(f'#!/bin/sh\nprintf "%s\\n" "$SSH_ORIGINAL_COMMAND" >> {commands_log}\nexec /bin/sh -c "$SSH_ORIGINAL_COMMAND"\n')
    record.chmod(0o755)
    (wrappers / "ssh").write_text(f'#!/bin/sh\nprintf "%s\\n" "ssh $*" >> {client_log}\nexec /usr/bin/ssh "$@"\n')
    (wrappers / "ssh").chmod(0o755)
    config = server / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {server / 'host_key'}",
                f"PidFile {server / 'sshd.pid'}",
                f"AuthorizedKeysFile {server / 'authorized_keys'}",
                "StrictModes no",
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                f"ForceCommand {record}",
                "LogLevel VERBOSE",
                "",
            ]
        )
    )
    host_pub = (server / "host_key.pub").read_text().split()
    (home_ssh / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    (home_ssh / "config").write_text(f"Host devc-engine\n  HostName 127.0.0.1\n  Port {port}\n  User root\n  IdentityFile ~/.ssh/id_ed25519\n")
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    log = workdir / "sshd.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    try:
        _wait("sshd", listening, proc, log)
        yield SSHEngine(port=port, home_ssh=home_ssh, commands_log=commands_log, client_log=client_log, wrapper_dir=wrappers)
    finally:
        _stop(proc)


def with_home_ssh(home_ssh: Path, argv: list[str]) -> list[str]:
    """Run ``argv`` in a private mount namespace where the user's ``~/.ssh`` is ``home_ssh``.

    OpenSSH reads ``~/.ssh`` from the passwd entry's home, not $HOME: this is
    how a test gives the real ssh client (and paramiko) a user's ssh setup
    without touching the machine's.
    """
    import pwd

    target = Path(pwd.getpwuid(os.getuid()).pw_dir) / ".ssh"
    target.mkdir(mode=0o700, exist_ok=True)  # the mount point
    return ["unshare", "--mount", "--", "sh", "-c", 'mount --bind "$0" "$1" && shift 2 && exec "$@"', str(home_ssh), str(target), "x", *argv]


# --- Podman ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PodmanEngine:
    sock: str

    @property
    def url(self) -> str:
        return f"unix://{self.sock}"


@contextmanager
def podman_service(workdir: Path, image: str) -> Iterator[PodmanEngine]:
    workdir.mkdir(parents=True, exist_ok=True)
    sock = str(workdir / "podman.sock")
    log = workdir / "podman.log"
    if subprocess.run(["podman", "image", "exists", image], capture_output=True).returncode != 0:
        move_image(image, ["podman", "load", "-q"])
    with open(log, "wb") as out:
        proc = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{sock}"], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        _wait("podman system service", lambda: os.path.exists(sock) and _docker(sock, "version").returncode == 0, proc, log)
        yield PodmanEngine(sock=sock)
    finally:
        _stop(proc)


# --- a plain private engine that a test may stop and start again -------------------------------------


class PrivateEngine:
    """A dockerd of one test's own on a unix socket (own data root, exec root and pid file), so the
    test can restart *an engine* between two commands without touching the shared one."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.run = Path(f"/run/devc-test-{workdir.name}")
        self.sock = str(self.run / "docker.sock")
        self.url = f"unix://{self.sock}"
        self.log = workdir / "dockerd.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        argv = [
            "dockerd", "--data-root", str(self.workdir / "data"), "--exec-root", str(self.run / "exec"),
            "--pidfile", str(self.run / "docker.pid"), "-H", self.url,
            "--bridge=none", "--iptables=false", "--ip-masq=false", "--ip-forward=false",
        ]  # fmt: skip
        self.run.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        _wait("the private dockerd", lambda: _docker(self.sock, "version").returncode == 0, self.proc, self.log)

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.run, ignore_errors=True)
        shutil.rmtree(self.workdir / "data", ignore_errors=True)
