"""The whole cycle on two userlands: Debian (coreutils, util-linux, dash) and an
Alpine-like BusyBox one (ash, BusyBox timeout/head/cut/find, BusyBox's `flock`
that knows only -sxun). Every in-container script must work on both."""

from __future__ import annotations

import pytest

from tests.conftest import logins
from tests.integration.test_state import profile
from tests.integration.test_up import new_key, up

pytestmark = pytest.mark.integration

STATE_DIR = "/var/lib/tailscale"


@pytest.fixture(params=["debian", "busybox"])
def userland(request, images, busybox_image) -> str:
    return images[0] if request.param == "debian" else busybox_image


def _sh(c, script: str) -> str:
    r = c.exec_run(["sh", "-c", script])
    assert r.exit_code == 0, r.output
    return r.output.decode()


def _daemons(c) -> int:
    return int(_sh(c, "n=0; for d in /proc/[0-9]*; do [ \"$(cat $d/comm 2>/dev/null)\" = tailscaled ] && n=$((n+1)); done; echo $n"))


def test_the_userland_is_what_it_claims(containers, busybox_image):
    """The BusyBox image really has BusyBox's tools: ash as sh, BusyBox timeout, a flock without -w."""
    c = containers.start(image=busybox_image)
    out = _sh(c, "ls -l /bin/sh; timeout --help 2>&1 | head -n 3; flock -w 1 9 2>&1; echo flock=$?")
    assert "busybox" in out and "Usage: timeout [-s SIG] [-k KILL_SECS] SECS PROG ARGS" in out
    assert "unrecognized option: w" in out and "flock=1" in out


def test_full_cycle(inv, containers, userland, tmp_path):
    c = containers.start(image=userland)
    name = c.name

    first = up(inv, c, "--hostname", "cycle", key=new_key())
    assert first.code == 0, first
    assert first.doc["outcome"] == "connected" and first.doc["node"]["backend_state"] == "Running"
    node_id = first.doc["node"]["node_id"]

    again = up(inv, c, "--hostname", "cycle", key=new_key())
    assert again.code == 0 and again.doc["outcome"] == "already-connected", again

    st = inv("tailscale.status", "--container", name, "--json")
    assert st.code == 0 and st.doc["hostname"] == "cycle", st

    down = inv("tailscale.down", "--container", name, "--json")
    assert down.code == 0 and down.doc["node"]["backend_state"] == "Stopped", down
    back = up(inv, c, "--hostname", "cycle")
    assert back.code == 0 and back.doc["node"]["backend_state"] == "Running", back

    restart = inv("tailscale.restart", "--container", name, "--json")
    assert restart.code == 0 and restart.doc["node"]["node_id"] == node_id, restart
    assert _daemons(c) == 1

    backup = tmp_path / "cycle.tar"
    r = inv("tailscale.state.backup", "--container", name, "--output", str(backup), "--json")
    assert r.code == 0, r
    r = inv("tailscale.state.reset", "--container", name, "--yes", "--no-backup", "--no-logout", "--json")
    assert r.code == 0 and r.doc["removed"] > 0, r
    assert _sh(c, f"ls -A {STATE_DIR}") == "" and _daemons(c) == 0
    r = inv("tailscale.state.restore", str(backup), "--container", name, "--stop-daemon", "--json")
    assert r.code == 0, r
    r = up(inv, c, "--hostname", "cycle")
    assert r.code == 0 and r.doc["node"]["node_id"] == node_id, r

    doc = inv("tailscale.doctor", "--container", name, "--hostname", "cycle", "--json")
    assert doc.code == 0, doc
    assert all(check["status"] != "fail" for check in doc.doc["checks"]), doc.doc
    assert len(logins(containers.control)) == 1
    assert profile(_sh(c, f"cat {STATE_DIR}/tailscaled.state"))["NodeID"] == node_id


def _zombies(c) -> list[str]:
    """`pid comm` of every zombie in the container (state Z in /proc/PID/stat)."""
    out = _sh(c, "for d in /proc/[0-9]*; do s=$(cat $d/stat 2>/dev/null) || continue; case \"${s##*) }\" in Z*) echo \"${d#/proc/} $(cat $d/comm)\";; esac; done")
    return out.split("\n")[:-1]


def test_no_zombies_without_an_init(inv, containers, userland):
    """A container whose PID 1 reaps nothing (no --init): up, status and down cycles leave no zombie
    behind (BusyBox `timeout` leaves its watcher process to PID 1 to reap; the scripts must not)."""
    c = containers.start(image=userland, init=False)
    assert up(inv, c, "--hostname", "reaped", key=new_key()).code == 0
    for _ in range(2):
        assert inv("tailscale.status", "--container", c.name, "--json").code == 0
        assert inv("tailscale.down", "--container", c.name, "--json").code == 0
        assert up(inv, c, "--hostname", "reaped").code == 0
    assert _zombies(c) == []
