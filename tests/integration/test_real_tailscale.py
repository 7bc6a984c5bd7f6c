"""What real tailscale does that the stand-in once did not show (issue 13, issue 14 item 5).

Each test runs the product against the stand-in as it now behaves like the real
programs (tests/standin/README.md names the real source of each behaviour).
"""

from __future__ import annotations

import json
import re
import sys
import uuid

import pytest

from tests.conftest import logins

pytestmark = pytest.mark.integration

STATE_FILE = "/var/lib/tailscale/tailscaled.state"


def new_key(kind: str = "") -> str:
    return f"tskey-auth-{kind}{uuid.uuid4().hex[:10]}CNTRL-{uuid.uuid4().hex}"


def up(inv, c, *args, key=None, **kw):
    env = {"TAILSCALE_AUTHKEY": key} if key else {}
    return inv("tailscale.up", "--container", c.name, "--json", *args, env=env, **kw)


def sh(c, script: str) -> tuple[int, str]:
    r = c.exec_run(["sh", "-c", script])
    return r.exit_code, r.output.decode()


def start_daemon(c) -> None:
    """tailscaled started by hand, as a container's entrypoint would after a restart."""
    code, out = sh(c, "mkdir -p /var/run/tailscale; setsid tailscaled --state=/var/lib/tailscale/tailscaled.state "
                      "--socket=/var/run/tailscale/tailscaled.sock >/var/log/tailscaled.log 2>&1 </dev/null & "
                      "i=0; while [ $i -lt 100 ] && ! tailscale status --json >/dev/null 2>&1; do i=$((i+1)); sleep 0.1; done")
    assert code == 0, out


# --- 1. NoState with a node key right after the daemon starts ---------------------


def test_up_after_a_container_restart_waits_through_nostate_and_never_logs_in_again(inv, containers):
    c = containers.start(env={"TS_STANDIN_NETMAP_DELAY": "2"})
    first = up(inv, c, "--hostname", "nostate", key=new_key())
    assert first.code == 0, first
    node_id = first.doc["node"]["node_id"]

    c.restart(timeout=5)  # tailscaled is gone; the state volume keeps the identity
    keyless = up(inv, c, "--hostname", "nostate", "--require-key")
    assert keyless.code == 0, keyless
    assert keyless.doc["outcome"] == "connected" and keyless.doc["node"]["backend_state"] == "Running"
    assert keyless.doc["node"]["node_id"] == node_id

    c.restart(timeout=5)
    with_key = up(inv, c, "--hostname", "nostate", key=new_key())
    assert with_key.code == 0, with_key
    assert with_key.doc["node"]["node_id"] == node_id
    assert with_key.doc["key_source"] is None  # the key was not handed to a node with an identity
    assert len(logins(containers.control)) == 1


def test_restart_task_waits_for_running_through_nostate(inv, containers):
    c = containers.start(env={"TS_STANDIN_NETMAP_DELAY": "2"})
    first = up(inv, c, "--hostname", "restart-nostate", key=new_key())
    assert first.code == 0, first
    r = inv("tailscale.restart", "--container", c.name, "--json")
    assert r.code == 0, r
    assert r.doc["outcome"] == "connected" and r.doc["node"]["backend_state"] == "Running"
    assert r.doc["node"]["node_id"] == first.doc["node"]["node_id"]
    assert len(logins(containers.control)) == 1


def test_status_and_doctor_say_connecting(inv, containers):
    c = containers.start(env={"TS_STANDIN_NETMAP_DELAY": "600"})
    assert up(inv, c, "--hostname", "connecting", key=new_key()).code == 0
    c.restart(timeout=5)
    start_daemon(c)  # NoState with HaveNodeKey for as long as the first netmap takes
    st = inv("tailscale.status", "--container", c.name, "--json")
    assert st.code == 5, st
    assert st.doc["backend_state"] == "NoState" and st.doc["connecting"] is True
    assert "connecting" in st.doc["error"]["message"] and "logged" not in st.doc["error"]["message"]
    human = inv("tailscale.status", "--container", c.name)
    assert re.search(r"State\s+connecting", human.stdout), human
    doc = inv("tailscale.doctor", "--container", c.name, "--json")
    checks = {ch["name"]: ch for ch in doc.doc["checks"]}
    assert "connecting" in checks["backend_state"]["seen"], checks["backend_state"]
    assert checks["auth_key"]["status"] == "pass"  # an identity: no key needed


# --- 2. identity from the daemon or the state file's content ----------------------


def test_a_fresh_daemons_empty_state_file_is_no_identity(inv, containers):
    c = containers.start(tun=False)
    code, out = sh(c, f"mkdir -p /var/lib/tailscale && printf '{{}}' > {STATE_FILE}")
    assert code == 0, out
    r = up(inv, c, "--hostname", "fresh")  # no key, no identity: the documented opt-out
    assert r.code == 0, r
    assert r.doc["outcome"] == "skipped" and "opt-in" in r.doc["reason"]
    c.stop(timeout=5)
    show = inv("tailscale.state.show", "--container", c.name, "--json")
    assert show.code == 0, show
    assert show.doc["has_identity"] is False


def test_invalid_json_state_is_reported_broken_with_the_fix(inv, containers):
    c = containers.start()
    code, out = sh(c, f"mkdir -p /var/lib/tailscale && printf '{{not json' > {STATE_FILE}")
    assert code == 0, out
    r = up(inv, c, "--hostname", "broken", key=new_key())
    assert r.code == 30, r
    assert r.doc["error"]["kind"] == "state_volume" and "not valid JSON" in r.doc["error"]["message"]
    assert "state.restore" in r.doc["error"]["fix"] and "state.reset" in r.doc["error"]["fix"]
    assert logins(containers.control) == []
    assert sh(c, f"cat {STATE_FILE}")[1] == "{not json"  # nothing destroyed


# --- 4. Tailscale SSH refused by the tailnet policy; the lose-ssh confirmation ------


def test_ssh_refused_by_policy_has_its_own_exit_code_and_fix(inv, containers):
    (containers.control / "policy.json").write_text(json.dumps({"ssh": False}))
    c = containers.start()
    first = up(inv, c, "--hostname", "ssh-one", key=new_key())  # no netmap yet: not checked
    assert first.code == 0, first
    r = up(inv, c, "--hostname", "ssh-two")
    assert r.code == 27, r
    assert r.doc["error"]["kind"] == "ssh_refused" and "--no-ssh" in r.doc["error"]["fix"]
    doc = inv("tailscale.doctor", "--container", c.name, "--json", "--hostname", "ssh-two")
    ssh = {ch["name"]: ch for ch in doc.doc["checks"]}["ssh"]
    assert ssh["status"] == "warn" and "--no-ssh" in ssh["fix"], ssh
    ok = up(inv, c, "--hostname", "ssh-two", "--no-ssh")
    assert ok.code == 0, ok
    assert ok.doc["node"]["hostname"] == "ssh-two"


def test_commands_are_never_aborted_by_the_lose_ssh_confirmation(inv, containers):
    c = containers.start(env={"SSH_CLIENT": "100.64.0.9 50000 22"})  # as inside an SSH session over Tailscale
    on = up(inv, c, "--hostname", "over-ssh", key=new_key())
    assert on.code == 0 and on.doc["ssh"].startswith("ssh root@over-ssh"), on
    off = up(inv, c, "--hostname", "over-ssh", "--no-ssh")
    assert off.code == 0, off
    assert off.doc["ssh"] is None, off  # no Tailscale SSH: no ssh line to offer
    d = inv("tailscale.down", "--container", c.name, "--json")
    assert d.code == 0, d
    assert d.doc["node"]["backend_state"] == "Stopped"


# --- 5. the non-default-flags rule in full ----------------------------------------


def test_a_setting_the_user_changed_never_breaks_reconnects_or_tag_changes(inv, containers):
    c = containers.start()
    assert up(inv, c, "--hostname", "userdns", key=new_key()).code == 0
    code, out = sh(c, "tailscale set --accept-dns=false --shields-up")  # a common fix for DNS trouble
    assert code == 0, out
    assert inv("tailscale.down", "--container", c.name).code == 0
    again = up(inv, c, "--hostname", "userdns")
    assert again.code == 0, again
    assert again.doc["node"]["backend_state"] == "Running"
    tags = up(inv, c, "--hostname", "userdns", "--advertise-tags", "tag:dev")
    assert tags.code == 0, tags
    prefs = json.loads(sh(c, "tailscale debug prefs")[1])
    assert (prefs["CorpDNS"], prefs["ShieldsUp"], prefs["AdvertiseTags"]) == (False, True, ["tag:dev"])
    assert len(logins(containers.control)) == 1


def approve_routes(control, node_id: str, routes=("0.0.0.0/0", "::/0")) -> None:
    """What a tailnet admin does in the console: approve the routes a node advertises."""
    from tests.conftest import REPO

    sys.path.insert(0, str(REPO / "tests" / "standin"))
    import _standin_common as C

    assert C.Registry(str(control)).update(node_id, ApprovedRoutes=list(routes)) is not None


def test_a_tag_change_keeps_the_exit_node_and_app_connector_the_user_set(inv, containers):
    exit_box = containers.start()
    assert up(inv, exit_box, "--hostname", "exitbox", key=new_key()).code == 0
    code, out = sh(exit_box, "tailscale set --advertise-exit-node")
    assert code == 0, out
    exit_self = json.loads(sh(exit_box, "tailscale status --json")[1])["Self"]
    approve_routes(containers.control, exit_self["ID"])

    c = containers.start()
    assert up(inv, c, "--hostname", "viaexit", key=new_key()).code == 0
    # the user picks an exit node and offers an app connector in the container
    code, out = sh(c, f"tailscale set --exit-node={exit_self['TailscaleIPs'][0]} --exit-node-allow-lan-access --advertise-connector")
    assert code == 0, out
    tags = up(inv, c, "--hostname", "viaexit", "--advertise-tags", "tag:dev")
    assert tags.code == 0, tags
    prefs = json.loads(sh(c, "tailscale debug prefs")[1])
    assert (prefs["ExitNodeID"], prefs["ExitNodeAllowLANAccess"], prefs["AppConnector"], prefs["AdvertiseTags"]) == (
        exit_self["ID"], True, {"Advertise": True}, ["tag:dev"])
    assert len(logins(containers.control)) == 2  # one per node: the tag change did not log in again


def test_a_tag_change_keeps_lan_access_set_without_an_exit_node(inv, containers):
    # `set` takes --exit-node-allow-lan-access alone; `up` refuses it without --exit-node
    c = containers.start()
    assert up(inv, c, "--hostname", "lanonly", key=new_key()).code == 0
    code, out = sh(c, "tailscale set --exit-node-allow-lan-access")
    assert code == 0, out
    tags = up(inv, c, "--hostname", "lanonly", "--advertise-tags", "tag:dev")
    assert tags.code == 0, tags
    prefs = json.loads(sh(c, "tailscale debug prefs")[1])
    assert (prefs["ExitNodeAllowLANAccess"], prefs["AdvertiseTags"]) == (True, ["tag:dev"])


def test_a_tag_change_with_an_exit_node_ip_nobody_has_says_how_to_clear_it(inv, containers):
    c = containers.start()
    assert up(inv, c, "--hostname", "ipgone", key=new_key()).code == 0
    assert inv("tailscale.down", "--container", c.name).code == 0
    code, out = sh(c, "tailscale set --exit-node=100.64.9.9")  # accepted while Stopped
    assert code == 0, out
    assert up(inv, c, "--hostname", "ipgone").code == 0
    r = up(inv, c, "--hostname", "ipgone", "--advertise-tags", "tag:dev")
    assert r.code == 26, r
    err = r.doc["error"]
    assert "100.64.9.9" in err["message"] and "not a peer" in err["message"], err
    assert "tailscale set --exit-node=" in err["fix"], err
    prefs = json.loads(sh(c, "tailscale debug prefs")[1])
    assert (prefs["ExitNodeIP"], prefs["AdvertiseTags"]) == ("100.64.9.9", None)


# --- 6. smaller ones ---------------------------------------------------------------


def test_an_ephemeral_node_with_a_state_file_survives_a_restart(inv, containers):
    c = containers.start()
    first = up(inv, c, "--hostname", "ephem", key=new_key("ephemeral"))
    assert first.code == 0, first
    r = inv("tailscale.restart", "--container", c.name, "--json")
    assert r.code == 0, r
    assert r.doc["node"]["node_id"] == first.doc["node"]["node_id"]


def test_zero_peers_shows_zero(inv, containers):
    c = containers.start()
    assert up(inv, c, "--hostname", "lonely", key=new_key()).code == 0
    st = inv("tailscale.status", "--container", c.name, "--json")
    assert st.code == 0 and st.doc["peers"] == 0, st
    human = inv("tailscale.status", "--container", c.name)
    assert re.search(r"Peers\s+0\b", human.stdout), human


def test_control_refusals_other_than_a_bad_key_say_what_control_said(inv, containers):
    c = containers.start()
    key = new_key("ratelimit")
    r = up(inv, c, "--hostname", "limited", "--timeout", "20", key=key)
    assert r.code == 23, r
    assert "rate" in r.doc["error"]["message"] and "rejected the auth key" not in r.doc["error"]["message"]
    assert key not in r.stdout + r.stderr and key.split("-")[-1] not in r.stdout + r.stderr


def test_doctor_shows_the_cli_and_the_daemon_versions_apart(inv, containers):
    c = containers.start(env={"TS_STANDIN_CLIENT_VERSION": "1.87.0-dev20250810-t2cd5fa3f7"})
    assert up(inv, c, "--hostname", "versions", key=new_key()).code == 0
    doc = inv("tailscale.doctor", "--container", c.name, "--json", "--hostname", "versions")
    checks = {ch["name"]: ch for ch in doc.doc["checks"]}
    assert "version 1.87.0-dev20250810, as the CLI reports" in checks["tailscale"]["seen"], checks["tailscale"]
    assert "version 1.86.2, as the running daemon reports" in checks["tailscaled"]["seen"], checks["tailscaled"]


# --- issue 14 item 5: a key that needs approval ---------------------------------------


def test_first_up_with_a_key_that_needs_approval_stops_at_once_with_23(inv, containers):
    c = containers.start()
    r = up(inv, c, "--hostname", "approve-me", "--timeout", "60", key=new_key("approval"))
    assert r.code == 23, r
    err = r.doc["error"]
    assert err["kind"] == "login_rejected" and "approval" in err["message"] and "admin console" in err["fix"]
