"""`up`, `down`, `status`, `restart`, `logout` against a real engine and the stand-in."""

from __future__ import annotations

import threading
import time
import uuid

import docker.types
import pytest

from tests.conftest import RUN_ID, TEST_LABEL, logins

pytestmark = pytest.mark.integration


def new_key(kind: str = "") -> str:
    return f"tskey-auth-{kind}{uuid.uuid4().hex[:10]}CNTRL-{uuid.uuid4().hex}"


def up(inv, c, *args, key=None, **kw):
    env = {"TAILSCALE_AUTHKEY": key} if key else {}
    return inv("tailscale.up", "--container", c.name, "--json", *args, env=env, **kw)


def test_first_up_logs_in_once_and_second_is_noop(inv, containers):
    c = containers.start()
    first = up(inv, c, "--hostname", "web-devc-box", key=new_key())
    assert first.code == 0, first
    doc = first.doc
    assert doc["ok"] and doc["outcome"] == "connected"
    assert doc["node"]["backend_state"] == "Running"
    assert doc["node"]["hostname"] == "web-devc-box"
    assert doc["node"]["dns_name"].startswith("web-devc-box.")
    assert doc["node"]["ips"] and doc["ssh"].startswith("ssh root@web-devc-box.")
    assert "start tailscaled" in doc["steps"] and "log in with the auth key" in doc["steps"]
    assert doc["key_source"] == "TAILSCALE_AUTHKEY (host)"  # where from, never the value
    assert len(logins(containers.control)) == 1

    second = up(inv, c, "--hostname", "web-devc-box", key=new_key())
    assert second.code == 0, second
    assert second.doc["outcome"] == "already-connected" and second.doc["steps"] == []
    assert second.doc["key_source"] is None  # the key was not used
    assert len(logins(containers.control)) == 1


def test_hostname_change_uses_set_not_a_new_login(inv, containers):
    c = containers.start()
    assert up(inv, c, "--hostname", "first-name", key=new_key()).code == 0
    r = up(inv, c, "--hostname", "second-name")
    assert r.code == 0, r
    assert r.doc["steps"] == ["change hostname"]
    assert r.doc["node"]["hostname"] == "second-name"
    assert len(logins(containers.control)) == 1


def test_down_then_up_needs_no_key(inv, containers):
    c = containers.start()
    assert up(inv, c, "--hostname", "downup", key=new_key()).code == 0
    d = inv("tailscale.down", "--container", c.name, "--json")
    assert d.code == 0, d
    assert d.doc["node"]["backend_state"] == "Stopped"
    st = inv("tailscale.status", "--container", c.name, "--json")
    assert st.code == 5 and st.doc["backend_state"] == "Stopped"
    again = up(inv, c, "--hostname", "downup")
    assert again.code == 0, again
    assert again.doc["node"]["backend_state"] == "Running"
    assert len(logins(containers.control)) == 1
    st = inv("tailscale.status", "--container", c.name, "--json")
    assert st.code == 0 and st.doc["backend_state"] == "Running"


def test_restart_keeps_the_node_id(inv, containers):
    c = containers.start()
    first = up(inv, c, "--hostname", "restarty", key=new_key())
    node_id = first.doc["node"]["node_id"]
    r = inv("tailscale.restart", "--container", c.name, "--hostname", "restarty", "--json")
    assert r.code == 0, r
    assert r.doc["node"]["node_id"] == node_id
    assert r.doc["steps"][:2] == ["stop tailscaled", "start tailscaled"]
    assert len(logins(containers.control)) == 1


def test_recreated_container_on_same_volume_is_the_same_node(inv, containers):
    vol = containers.volume()
    c1 = containers.start(state=vol)
    first = up(inv, c1, "--hostname", "phoenix", key=new_key())
    assert first.code == 0, first
    c1.remove(force=True)
    c2 = containers.start(state=vol)
    again = up(inv, c2, "--hostname", "phoenix")
    assert again.code == 0, again
    assert again.doc["node"]["node_id"] == first.doc["node"]["node_id"]
    assert again.doc["node"]["dns_name"] == first.doc["node"]["dns_name"]
    assert len(logins(containers.control)) == 1


def test_no_key_no_identity_skips_and_require_key_fails(inv, containers):
    c = containers.start()
    r = up(inv, c, "--hostname", "optout")
    assert r.code == 0 and r.doc["outcome"] == "skipped" and "opt-in" in r.doc["reason"]
    r = up(inv, c, "--hostname", "optout", "--require-key")
    assert r.code == 25 and r.doc["error"]["kind"] == "key_required"
    assert logins(containers.control) == []


def test_no_tun_fails_loudly_with_the_fix(inv, containers):
    c = containers.start(tun=False)
    r = up(inv, c, "--hostname", "notun", key=new_key())
    assert r.code == 20, r
    err = r.doc["error"]
    assert err["kind"] == "tun_missing"
    assert "/dev/net/tun:/dev/net/tun" in err["fix"] and "NET_ADMIN" in err["fix"] and "--userspace" in err["fix"]
    assert "Traceback" not in r.stderr


def test_missing_net_admin_fails_with_the_daemon_log(inv, containers):
    c = containers.start(caps=False)
    r = up(inv, c, "--hostname", "nocaps", key=new_key())
    assert r.code == 20, r
    assert "operation not permitted" in r.doc["error"]["message"]


def test_userspace_works_without_tun(inv, containers):
    c = containers.start(tun=False)
    r = up(inv, c, "--hostname", "userspace", "--userspace", key=new_key())
    assert r.code == 0, r
    assert r.doc["node"]["tun"] is False
    assert any("userspace" in w for w in r.doc["warnings"])


@pytest.mark.parametrize("kind", ["invalid", "expired"])
def test_rejected_key_fails_without_showing_it(inv, containers, kind):
    c = containers.start()
    key = new_key(kind)
    r = up(inv, c, "--hostname", "badkey", key=key)
    assert r.code == 23, r
    assert r.doc["error"]["kind"] == "login_rejected"
    assert key not in r.stdout and key not in r.stderr
    assert key.rsplit("-", 1)[1] not in r.stdout + r.stderr  # the secret part; the key ID may be named


def test_hanging_login_times_out_within_the_bound(inv, containers):
    c = containers.start()
    started = time.monotonic()
    r = up(inv, c, "--hostname", "hang", "--timeout", "3", key=new_key("hang"))
    elapsed = time.monotonic() - started
    assert r.code == 24, r
    assert "did not reach Running within 3 s" in r.doc["error"]["message"]
    assert elapsed < 60  # bounded: it gave up instead of waiting forever


def test_two_concurrent_ups_log_in_once(inv, containers):
    c = containers.start()
    key = new_key("slow")
    results = []

    def run():
        results.append(up(inv, c, "--hostname", "racer", key=key))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.code for r in results] == [0, 0], results
    assert len(logins(containers.control)) == 1


def test_logout_leaves_and_then_up_needs_a_key(inv, containers):
    c = containers.start()
    assert up(inv, c, "--hostname", "leaver", key=new_key()).code == 0
    r = inv("tailscale.down", "--container", c.name, "--logout", "--json")
    assert r.code == 0, r
    assert r.doc["node"]["backend_state"] == "NeedsLogin"
    r = up(inv, c, "--hostname", "leaver", "--require-key")
    assert r.code == 25


def test_not_installed(inv, containers):
    c = containers.start(tailscale=False)
    r = up(inv, c, "--hostname", "bare", key=new_key())
    assert r.code == 21 and r.doc["error"]["kind"] == "tailscale_not_installed"


def test_stopped_container(inv, containers):
    c = containers.start()
    c.stop(timeout=1)
    r = up(inv, c, "--hostname", "stopped", key=new_key())
    assert r.code == 13 and "exited" in r.doc["error"]["message"]


def test_unknown_container(inv, containers):
    r = inv("tailscale.status", "--container", "devc-no-such-container", "--json")
    assert r.code == 11 and r.doc["error"]["kind"] == "container_not_found"


def test_status_human_output(inv, containers):
    c = containers.start()
    assert up(inv, c, "--hostname", "pretty", key=new_key()).code == 0
    r = inv("tailscale.status", "--container", c.name)
    assert r.code == 0, r
    assert "Running" in r.stdout and "pretty" in r.stdout
    assert "\x1b[" not in r.stdout  # no colour codes when not a terminal


@pytest.mark.parametrize("state", [None, "anonymous"], ids=["nothing-mounted", "anonymous-volume"])
def test_up_warns_when_the_identity_would_not_survive(inv, containers, docker_client, state):
    if state == "anonymous":
        c = docker_client.containers.run(
            containers.standin, ["sleep", "infinity"], detach=True, network_mode="none", init=True,
            devices=["/dev/net/tun:/dev/net/tun"], cap_add=["NET_ADMIN", "NET_RAW"],
            volumes={str(containers.control): {"bind": "/srv/tailscale-control", "mode": "rw"}},
            labels={TEST_LABEL: RUN_ID}, **{"mounts": [docker.types.Mount("/var/lib/tailscale", None, type="volume")]},
        )
        containers.created.append(c)
    else:
        c = containers.start(state=None)
    r = up(inv, c, "--hostname", "ephemeral-ish", key=new_key())
    assert r.code == 0, r
    warning = r.doc["warnings"][0]
    assert "/var/lib/tailscale" in warning and "tailscale-state:/var/lib/tailscale" in warning
    assert "warning:" in r.stderr
