"""`up --dry-run`: one probe exec, the plan with exact command lines, nothing changed."""

from __future__ import annotations

import time

import pytest

from tests.conftest import logins
from tests.integration.test_local_and_execs import _execs
from tests.integration.test_up import new_key, up

pytestmark = pytest.mark.integration


def _snapshot(c) -> str:
    """What a dry run must not change: processes, the state directory, the daemon's files."""
    script = (
        'for d in /proc/[0-9]*; do [ "$(cat $d/comm 2>/dev/null)" = tailscaled ] && echo "tailscaled runs"; done; '  # exact: by name, not by command line
        "ls -la /var/lib/tailscale /var/run/tailscale 2>&1; ls /var/log/tailscaled.log /run/devc-tasks-tailscale.lock 2>&1"
    )
    return c.exec_run(["sh", "-c", script]).output.decode()


def test_fresh_container_plan_matches_what_up_then_does(inv, containers, docker_client):
    c = containers.start()
    key = new_key()
    before = _snapshot(c)
    time.sleep(1.1)  # event timestamps have one-second resolution
    since = int(time.time())
    r = up(inv, c, "--hostname", "planned", "--dry-run", key=key)
    assert r.code == 0, r
    assert len(_execs(docker_client, c, since)) == 1  # the probe, nothing else
    doc = r.doc
    assert doc["dry_run"] is True and doc["outcome"] == "would-connect"
    assert (doc["hostname"], doc["hostname_source"]) == ("planned", "--hostname")
    assert doc["key_source"] == "TAILSCALE_AUTHKEY (host)" and doc["key_needed"] is True
    assert [s["action"] for s in doc["steps"]] == ["start tailscaled", "log in with the auth key"]
    assert doc["steps"][0]["argv"] == [
        "/usr/local/sbin/tailscaled", "--state=/var/lib/tailscale/tailscaled.state", "--socket=/var/run/tailscale/tailscaled.sock",
    ]
    login = doc["steps"][1]["argv"]
    assert "--auth-key=file:/dev/stdin" in login and "--hostname=planned" in login
    assert key not in r.stdout + r.stderr
    assert _snapshot(c) == before and logins(containers.control) == []

    real = up(inv, c, "--hostname", "planned", key=key)
    assert real.code == 0, real
    assert real.doc["steps"] == [s["action"] for s in doc["steps"]]


def test_connected_node_plans_and_human_output(inv, containers):
    c = containers.start()
    assert up(inv, c, "--hostname", "stay", key=new_key()).code == 0
    r = up(inv, c, "--hostname", "stay", "--dry-run")
    assert r.code == 0 and r.doc["outcome"] == "already-connected" and r.doc["steps"] == [], r
    assert r.doc["key_needed"] is False

    r = up(inv, c, "--hostname", "renamed", "--dry-run")
    assert r.code == 0, r
    assert [(s["action"], s["command"]) for s in r.doc["steps"]] == [
        ("change hostname", "/usr/local/bin/tailscale --socket=/var/run/tailscale/tailscaled.sock set --hostname=renamed")
    ]
    st = inv("tailscale.status", "--container", c.name, "--json")
    assert st.doc["hostname"] == "stay"  # nothing changed

    human = inv("tailscale.up", "--container", c.name, "--hostname", "renamed", "--dry-run")
    assert human.code == 0, human
    assert "nothing was changed" in human.stdout and "set --hostname=renamed" in human.stdout
    assert "renamed  (from --hostname)" in human.stdout

    assert inv("tailscale.down", "--container", c.name, "--json").code == 0
    key = new_key()
    human = inv("tailscale.up", "--container", c.name, "--hostname", "stay", "--dry-run", env={"TAILSCALE_AUTHKEY": key})
    assert human.code == 0 and "bring the node up (no key needed)" in human.stdout, human
    assert "not needed (TAILSCALE_AUTHKEY (host))" in human.stdout and key not in human.stdout + human.stderr


def test_a_plan_that_would_fail_exits_like_up(inv, containers):
    c = containers.start(tun=False)
    r = up(inv, c, "--hostname", "notun", "--dry-run", key=new_key())
    assert r.code == 20 and r.doc["error"]["kind"] == "tun_missing", r
    r = up(inv, containers.start(), "--hostname", "optout", "--dry-run")
    assert r.code == 0 and r.doc["outcome"] == "skipped" and "opt-in" in r.doc["reason"], r
