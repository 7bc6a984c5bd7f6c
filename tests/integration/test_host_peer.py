"""After `up`: does the host's own tailscale client see the container as an online peer?

The host client is the tailscale stand-in run on the host: its own tailscaled on its
own socket and state, sharing the control registry with the container's, and a
`tailscale` wrapper on PATH (as an installed client would be)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration

STANDIN = REPO / "tests" / "standin"


def new_key() -> str:
    return f"tskey-auth-{uuid.uuid4().hex[:10]}CNTRL-{uuid.uuid4().hex}"


@pytest.fixture
def host_client(containers, tmp_path):
    """A logged-in host tailscale client; yields (env for `inv`, its socket)."""
    sock = tmp_path / "ts.sock"
    env = {**os.environ, "TS_STANDIN_CONTROL": str(containers.control)}
    log = (tmp_path / "tailscaled.log").open("w")
    daemon = subprocess.Popen(
        [sys.executable, str(STANDIN / "tailscaled"), f"--state={tmp_path / 'tailscaled.state'}", f"--socket={sock}", "--tun=userspace-networking"],
        env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.1)
        cli = [sys.executable, str(STANDIN / "tailscale"), f"--socket={sock}"]
        r = subprocess.run([*cli, "up", "--auth-key=file:/dev/stdin", "--hostname=dev-laptop"], input=new_key(), env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        wrapper = bin_dir / "tailscale"
        wrapper.write_text(f"#!/bin/sh\nenv >>{tmp_path / 'seen-env'}\nexec {sys.executable} {STANDIN / 'tailscale'} \"$@\"\n")
        wrapper.chmod(0o755)
        yield {"PATH": f"{bin_dir}:{os.environ['PATH']}", "DEVC_HOST_TAILSCALE_SOCKET": str(sock)}, tmp_path / "seen-env"
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
        log.close()


def up(inv, c, env, *args, key=None):
    return inv("tailscale.up", "--container", c.name, "--hostname", "peer-box", *args, env={"TAILSCALE_AUTHKEY": key or new_key(), **env})


def test_host_sees_the_container_as_an_online_peer(inv, containers, host_client):
    env, seen_env = host_client
    c = containers.start()
    key = new_key()
    r = up(inv, c, env, "--json", key=key)
    assert r.code == 0, r
    assert r.doc["host_peer"] == {"seen": True, "online": True, "self": False}
    environ = seen_env.read_text()  # what the host's tailscale was given: no secret
    assert "DEVC_HOST_TAILSCALE_SOCKET" in environ and key not in environ
    again = up(inv, c, env)  # human output: already connected, and the host's view
    assert again.code == 0, again
    assert "sees it as an online peer" in again.stdout




@pytest.mark.parametrize("how", ["no-binary", "no-daemon"])
def test_quiet_skip_without_a_host_client(inv, containers, tmp_path, how):
    c = containers.start()
    env = {"PATH": "/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin"}
    if how == "no-daemon":
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        (bin_dir / "tailscale").write_text(f"#!/bin/sh\nexec {sys.executable} {STANDIN / 'tailscale'} \"$@\"\n")
        (bin_dir / "tailscale").chmod(0o755)
        env = {"PATH": f"{bin_dir}:{env['PATH']}", "DEVC_HOST_TAILSCALE_SOCKET": str(tmp_path / "none.sock")}
    r = up(inv, c, env, "--json")
    assert r.code == 0, r
    assert r.doc["host_peer"] is None
    assert "warning" not in r.stderr and r.doc["warnings"] == [], r.stderr
    human = up(inv, c, env)
    assert human.code == 0 and "This host" not in human.stdout, human
