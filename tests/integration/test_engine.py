"""Engine selection: --host, --context, DOCKER_CONTEXT, an unreachable engine, `status --all`.

A "remote" engine is this machine's engine reached over TCP on 127.0.0.1
through a small forwarder to the unix socket (loopback only).
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator

import pytest

from devc_tasks.core.hostname import short_host
from tests.integration.test_up import new_key

pytestmark = pytest.mark.integration


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """One direction of the proxy. An end of input is passed on as a half-close, as a TCP
    engine sees it (the exec's stdin ends while its output still flows back)."""
    try:
        while data := a.recv(65536):
            b.sendall(data)
        b.shutdown(socket.SHUT_WR)
    except OSError:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@pytest.fixture
def tcp_engine(docker_client) -> Iterator[str]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect("/var/run/docker.sock")
            threading.Thread(target=_pipe, args=(conn, upstream), daemon=True).start()
            threading.Thread(target=_pipe, args=(upstream, conn), daemon=True).start()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield f"tcp://127.0.0.1:{port}"
    stop.set()
    t.join(timeout=2)
    listener.close()


def test_remote_engine_by_host_names_the_engine_machine(inv, containers, docker_client, tcp_engine):
    c = containers.start()
    r = inv("tailscale.hostname", "--host", tcp_engine, "--container", c.name, "--workspace", "/nonexistent-ok", "--json")
    # --workspace must exist: a usage error names it
    assert r.code == 2 and "/nonexistent-ok" in r.doc["error"]["message"]
    r = inv("tailscale.hostname", "--host", tcp_engine, "--container", c.name, "--json")
    assert r.code == 0, r
    engine_name = docker_client.info()["Name"]
    assert r.doc["host"] == short_host(engine_name)
    assert r.doc["host_source"] == f"engine at {tcp_engine}"
    up = inv("tailscale.up", "--host", tcp_engine, "--container", c.name, "--hostname", "remote", "--json", env={"TAILSCALE_AUTHKEY": new_key()})
    assert up.code == 0, up
    assert up.doc["node"]["backend_state"] == "Running"


def test_context_by_name_and_unknown_context(inv, containers, tcp_engine, tmp_path):
    c = containers.start()
    cfg = tmp_path / "docker-config"
    cfg.mkdir()
    (cfg / "config.json").write_text("{}")
    name = f"devc-test-{uuid.uuid4().hex[:6]}"
    subprocess.run(["docker", "context", "create", name, "--docker", f"host={tcp_engine}"], env={"DOCKER_CONFIG": str(cfg), "PATH": "/usr/local/bin:/usr/bin:/bin"}, check=True, capture_output=True)
    r = inv("tailscale.status", "--context", name, "--container", c.name, "--json", env={"DOCKER_CONFIG": str(cfg)})
    assert r.code == 5, r  # reachable through the context; tailscaled not started yet
    assert r.doc["daemon_running"] is False
    r = inv("tailscale.status", "--container", c.name, "--json", env={"DOCKER_CONFIG": str(cfg), "DOCKER_CONTEXT": "no-such-context"})
    assert r.code == 2, r
    assert "unknown Docker context 'no-such-context'" in r.doc["error"]["message"]


def test_unreachable_engine(inv):
    with socket.socket() as s:  # a loopback port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = inv("tailscale.status", "--host", f"tcp://127.0.0.1:{port}", "--container", "x", "--json")
    assert r.code == 10, r
    assert r.doc["error"]["kind"] == "engine_unreachable" and "Traceback" not in r.stderr
    r = inv("tailscale.status", "--host", f"tcp://127.0.0.1:{port}", "--context", "x")
    assert r.code == 2


def test_status_all_lists_every_devcontainer(inv, containers):
    folder = f"/tmp/devc-all-{uuid.uuid4().hex[:6]}"
    a = containers.start(labels={"devcontainer.local_folder": folder + "-a"})
    b = containers.start(labels={"devcontainer.local_folder": folder + "-b"})
    assert inv("tailscale.up", "--container", a.name, "--hostname", "all-a", "--json", env={"TAILSCALE_AUTHKEY": new_key()}).code == 0
    r = inv("tailscale.status", "--all", "--json")
    assert r.code == 0, r
    rows = {d["container"]: d for d in r.doc["containers"]}
    assert rows[a.name]["backend_state"] == "Running" and rows[a.name]["hostname"] == "all-a"
    assert rows[b.name]["daemon_running"] is False
    json.dumps(r.doc)


def test_a_relative_unix_socket_is_read_from_the_current_folder_like_the_docker_cli(inv, containers, tmp_path):
    """The docker CLI takes unix://relative/path (cli opts/hosts.go parseSimpleProtoAddr keeps it as
    it is) and dials it from the current folder; so do we. A missing one says it is relative and
    where it was looked for, instead of a bare "No such file or directory"."""
    import os

    c = containers.start()
    (tmp_path / "run").mkdir()
    os.symlink("/var/run/docker.sock", tmp_path / "run" / "docker.sock")
    found = inv("tailscale.state.show", "--container", c.name, "--json", cwd=tmp_path, env={"DOCKER_HOST": "unix://run/docker.sock", "DOCKER_CONTEXT": ""})
    assert found.code == 0, found
    missing = inv("tailscale.state.show", "--container", c.name, "--json", cwd=tmp_path, env={"DOCKER_HOST": "unix://nothere/docker.sock", "DOCKER_CONTEXT": ""})
    assert missing.code == 10, missing
    error = missing.doc["error"]
    assert "relative" in error["fix"] and str(tmp_path / "nothere" / "docker.sock") in error["fix"] and "unix:///" in error["fix"], error
