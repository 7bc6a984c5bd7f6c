"""Faults: each one recovers or fails cleanly (a documented exit code, a message, no
traceback), and a node's identity survives it.

Not covered here: "the Engine restarted between two commands" would restart the
Docker engine every other test on this machine shares (see the README's list)."""

from __future__ import annotations

import os
import threading
import time

import pytest

from devc_tasks.core.plan import UpWish
from devc_tasks.core.secrets import Secret
from devc_tasks.shell.executors import DockerExecutor
from devc_tasks.shell.node import Node
from tests.conftest import logins
from tests.integration.test_state import profile
from tests.integration.test_up import new_key, up

pytestmark = pytest.mark.integration

STATE = "/var/lib/tailscale/tailscaled.state"
KILL_DAEMON = 'for d in /proc/[0-9]*; do [ "$(cat $d/comm 2>/dev/null)" = tailscaled ] && kill -9 ${d#/proc/}; done; true'


def sh(c, script: str) -> tuple[int, str]:
    r = c.exec_run(["sh", "-c", script])
    return r.exit_code, r.output.decode()


def node_id(c) -> str | None:
    """The node ID of the identity in tailscaled's state file (None when it holds none)."""
    code, out = sh(c, f"cat {STATE}")
    if code != 0 or not out.strip():
        return None
    try:
        return profile(out)["NodeID"]
    except (KeyError, ValueError):
        return None


def daemons(c) -> int:
    return int(sh(c, 'n=0; for d in /proc/[0-9]*; do [ "$(cat $d/comm 2>/dev/null)" = tailscaled ] && n=$((n+1)); done; echo $n')[1])


def clean(r) -> None:
    """A failure as the README promises: one JSON document with the error, no traceback."""
    assert r.code != 0 and r.doc["ok"] is False and r.doc["error"]["message"], r
    assert "Traceback" not in r.stderr + r.stdout


def wait_for(predicate, what: str, bound: float = 60) -> None:
    end = time.monotonic() + bound
    while not predicate():
        assert time.monotonic() < end, f"never saw {what}"
        time.sleep(0.1)


def test_daemon_killed_between_ups_steps_recovers(containers, docker_client):
    """tailscaled dies after `up` started it and before the login: `up` starts it again."""
    c = containers.start()
    killed = []

    def on_step(text: str) -> None:
        if text == "log in with the auth key" and not killed:
            killed.append(sh(c, KILL_DAEMON))
            wait_for(lambda: daemons(c) == 0, "tailscaled gone")

    node = Node(DockerExecutor(client=docker_client, container_id=c.id), on_step=on_step)
    key = Secret(new_key())
    result = node.up(UpWish(hostname="between", have_key=True), lambda: key)
    assert killed and result.outcome == "connected" and result.probe.status.backend_state == "Running"
    assert daemons(c) == 1 and len(logins(containers.control)) == 1


def test_daemon_killed_during_the_wait_for_its_socket_fails_cleanly(inv, containers):
    c = containers.start(env={"TS_STANDIN_START_DELAY": "5"})
    assert up(inv, c, "--hostname", "waiter", key=new_key()).code == 0
    ident = node_id(c)
    sh(c, KILL_DAEMON)
    box: dict = {}
    t = threading.Thread(target=lambda: box.setdefault("r", up(inv, c, "--hostname", "waiter")))
    t.start()
    wait_for(lambda: daemons(c) == 1, "tailscaled started again")
    sh(c, KILL_DAEMON)
    t.join(120)
    r = box["r"]
    clean(r)
    assert r.code == 22 and "tailscaled exited" in r.doc["error"]["message"], r
    assert node_id(c) == ident
    again = up(inv, c, "--hostname", "waiter")
    assert again.code == 0 and again.doc["node"]["node_id"] == ident, again


def test_daemon_that_exits_right_after_start_is_reported_with_its_log(inv, containers):
    c = containers.start()
    assert up(inv, c, "--hostname", "crashy", key=new_key()).code == 0
    ident = node_id(c)
    code, _ = sh(
        c,
        KILL_DAEMON + "; mv /usr/local/sbin/tailscaled /usr/local/sbin/tailscaled.real; "
        "printf '#!/bin/sh\\necho \"fatal: boom at start\" >&2\\nexit 1\\n' > /usr/local/sbin/tailscaled; chmod 755 /usr/local/sbin/tailscaled",
    )
    assert code == 0
    r = up(inv, c, "--hostname", "crashy")
    clean(r)
    assert r.code == 22 and "boom at start" in r.doc["error"]["message"], r
    assert node_id(c) == ident
    sh(c, "mv /usr/local/sbin/tailscaled.real /usr/local/sbin/tailscaled")
    again = up(inv, c, "--hostname", "crashy")
    assert again.code == 0 and again.doc["node"]["node_id"] == ident, again


@pytest.mark.parametrize("how", ["stopped", "removed"])
def test_container_gone_during_up_fails_cleanly(inv, containers, how):
    c = containers.start(env={"TS_STANDIN_SLOW_SECONDS": "30"})
    box: dict = {}
    t = threading.Thread(target=lambda: box.setdefault("r", up(inv, c, "--hostname", "vanish", key=new_key("slow"))))
    t.start()
    wait_for(lambda: sh(c, "for d in /proc/[0-9]*; do tr '\\0' ' ' < $d/cmdline; echo; done | grep -q ' up --hostname=vanish'")[0] == 0, "the login")
    if how == "stopped":
        c.stop(timeout=1)
    else:
        c.remove(force=True)
    t.join(120)
    r = box["r"]
    clean(r)
    assert r.code in (11, 13), r  # container not found / not running


def test_hanging_login_without_timeout_ends_at_the_default(inv, containers):
    c = containers.start()
    r = up(inv, c, "--hostname", "hang", key=new_key("hang"), timeout=300)
    clean(r)
    assert r.code == 24 and "within 60 s" in r.doc["error"]["message"], r
    ok = up(inv, c, "--hostname", "hang", key=new_key())
    assert ok.code == 0, ok
    assert len(logins(containers.control)) == 1


def test_restart_when_the_daemon_is_already_dead(inv, containers):
    c = containers.start()
    first = up(inv, c, "--hostname", "phoenix", key=new_key())
    assert first.code == 0
    sh(c, KILL_DAEMON)
    r = inv("tailscale.restart", "--container", c.name, "--json")
    assert r.code == 0, r
    assert r.doc["node"]["node_id"] == first.doc["node"]["node_id"] and r.doc["node"]["backend_state"] == "Running"
    assert daemons(c) == 1 and len(logins(containers.control)) == 1


def test_down_and_logout_when_already_done_exit_0(inv, containers):
    c = containers.start()
    assert up(inv, c, "--hostname", "twice", key=new_key()).code == 0
    for _ in range(2):
        r = inv("tailscale.down", "--container", c.name, "--json")
        assert r.code == 0 and r.doc["node"]["backend_state"] == "Stopped", r
    for _ in range(2):
        r = inv("tailscale.logout", "--container", c.name, "--json")
        assert r.code == 0 and r.doc["node"]["backend_state"] == "NeedsLogin", r
    sh(c, KILL_DAEMON)
    r = inv("tailscale.down", "--container", c.name, "--json")
    assert r.code == 0, r
    r = inv("tailscale.logout", "--container", c.name, "--json")
    assert r.code == 0, r



@pytest.mark.parametrize("userland", ["debian", "busybox"])
@pytest.mark.parametrize("how", [("tailscale.logout",), ("tailscale.down", "--logout")], ids=["logout", "down --logout"])
def test_leaving_with_the_daemon_down_still_leaves_the_tailnet(inv, containers, images, busybox_image, how, userland):
    """The daemon died but the identity is on the state volume: `down --logout` leaves the
    tailnet as `logout` does (it starts tailscaled; only it can tell the control server). It
    said "nothing to stop" and left the node logged in, an ephemeral one still registered."""
    c = containers.start(image=images[0] if userland == "debian" else busybox_image)
    assert up(inv, c, "--hostname", "gone", key=new_key("ephemeral")).code == 0
    nodes = list((containers.control / "nodes").glob("*.json"))
    assert len(nodes) == 1
    sh(c, KILL_DAEMON)
    r = inv(*how, "--container", c.name, "--json")
    assert r.code == 0, r
    assert r.doc["done"][-1] == "logged out" and r.doc["node"]["backend_state"] == "NeedsLogin", r.doc
    assert not any(n.exists() for n in nodes)  # the ephemeral node left the tailnet

COUNT = r"""
import os
me = str(os.getpid())
for pid in sorted(p for p in os.listdir("/proc") if p.isdigit() and p != me):
    try:
        cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode().strip()
        print(pid, len(os.listdir(f"/proc/{pid}/fd")), cmd)
    except OSError:
        pass
"""


def census(c) -> str:
    """Every process in the container but the counting one, with its open descriptors."""
    r = c.exec_run(["python3", "-c", COUNT])
    assert r.exit_code == 0, r.output
    return r.output.decode()


def test_status_200_times_leaves_nothing_behind(containers, docker_client):
    c = containers.start()
    node = Node(DockerExecutor(client=docker_client, container_id=c.id))
    node.probe()
    before = census(c)
    docker_client.api.close()  # the connection pool's idle sockets are not the execs'
    host_fds = len(os.listdir("/proc/self/fd"))
    for _ in range(200):
        node.probe()
    after = census(c)
    assert after == before  # no exec process, no open file left in the container
    docker_client.api.close()
    assert len(os.listdir("/proc/self/fd")) == host_fds  # nor an exec's socket here


def test_status_leaves_nothing_behind_on_busybox(containers, docker_client, busybox_image):
    """BusyBox's timeout leaves a watcher for up to a second after its command: wait for it."""
    c = containers.start(image=busybox_image)
    node = Node(DockerExecutor(client=docker_client, container_id=c.id))
    node.probe()
    wait_for(lambda: len(census(c).splitlines()) == 2, "only init and the container's command", bound=10)
    before = census(c)
    for _ in range(30):
        node.probe()
    wait_for(lambda: census(c) == before, "the processes and descriptors as they were", bound=10)



def _state_container(containers, **kw):
    """A running stand-in container with a state mount of the test's choosing."""
    from tests.conftest import RUN_ID, TEST_LABEL, unique

    c = containers.client.containers.run(
        containers.standin, ["sleep", "infinity"], name=unique(), detach=True, network_mode="none", init=True,
        devices=["/dev/net/tun:/dev/net/tun"], cap_add=["NET_ADMIN", "NET_RAW"], labels={TEST_LABEL: RUN_ID},
        environment={}, **kw,
    )
    containers.created.append(c)
    return c


def test_read_only_state_directory(inv, containers, tmp_path):
    """Restore and reset refuse cleanly; the identity on the read-only volume is untouched."""
    control = {str(containers.control): {"bind": "/srv/tailscale-control", "mode": "rw"}}
    vol = containers.volume()
    rw = _state_container(containers, volumes={**control, vol: {"bind": "/var/lib/tailscale", "mode": "rw"}})
    first = up(inv, rw, "--hostname", "frozen", key=new_key())
    assert first.code == 0, first
    ident = node_id(rw)
    backup = tmp_path / "frozen.tar"
    assert inv("tailscale.state.backup", "--container", rw.name, "--output", str(backup), "--json").code == 0
    rw.remove(force=True)

    ro = _state_container(containers, volumes={**control, vol: {"bind": "/var/lib/tailscale", "mode": "ro"}})
    saved = sh(ro, f"sha256sum {STATE}")[1]
    r = inv("tailscale.state.restore", str(backup), "--container", ro.name, "--stop-daemon", "--json")
    clean(r)
    assert r.code == 30, r
    r = inv("tailscale.state.reset", "--container", ro.name, "--yes", "--no-backup", "--no-logout", "--json")
    clean(r)
    assert r.code == 30, r
    assert sh(ro, f"sha256sum {STATE}")[1] == saved and node_id(ro) == ident
    r = inv("tailscale.state.backup", "--container", ro.name, "--output", str(tmp_path / "again.tar"), "--json")
    assert r.code == 0, r


def test_full_state_directory(inv, containers, tmp_path):
    """A full state filesystem: restore fails cleanly and the identity stays as it was."""
    control = {str(containers.control): {"bind": "/srv/tailscale-control", "mode": "rw"}}
    from tests.conftest import RUN_ID, TEST_LABEL, unique

    # a small filesystem as a named volume (the archive API cannot read --tmpfs mounts)
    vol = containers.client.volumes.create(
        name=unique("devc-vol"), driver="local", driver_opts={"type": "tmpfs", "device": "tmpfs", "o": "size=256k"}, labels={TEST_LABEL: RUN_ID},
    )
    containers.volumes.append(vol.name)
    c = _state_container(containers, volumes={**control, vol.name: {"bind": "/var/lib/tailscale", "mode": "rw"}})
    first = up(inv, c, "--hostname", "stuffed", key=new_key())
    assert first.code == 0, first
    ident = node_id(c)
    backup = tmp_path / "stuffed.tar"
    assert inv("tailscale.state.backup", "--container", c.name, "--output", str(backup), "--json").code == 0
    code, out = sh(c, "dd if=/dev/zero of=/var/lib/tailscale/filler bs=1k 2>&1; df -k /var/lib/tailscale | tail -n 1")
    assert " 100% " in out or "No space left" in out, out
    saved = sh(c, f"sha256sum {STATE}")[1]
    r = inv("tailscale.state.restore", str(backup), "--container", c.name, "--stop-daemon", "--json")
    clean(r)
    assert r.code == 30, r.doc["error"]
    assert sh(c, f"sha256sum {STATE}")[1] == saved and node_id(c) == ident
    assert daemons(c) == 1  # the daemon it stopped runs again
    st = inv("tailscale.status", "--container", c.name, "--json")
    assert st.code == 0 and st.doc["node_id"] == first.doc["node"]["node_id"], st
