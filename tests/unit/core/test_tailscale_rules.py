"""Pure rules about what real tailscale writes and says: the state file's identity,
error classification, prefsToFlags, versions."""

from __future__ import annotations

import base64
import json

import pytest

from devc_tasks.core.errors import LoginRejected, SshRefused, TailscaleFailed
from devc_tasks.core.identity import state_identity_of_bytes
from devc_tasks.core.outcome import classify_tailscale_error, is_tun_error
from devc_tasks.core.status import Prefs, exit_node_ip, parse_prefs, parse_status, prefs_to_flags, short_version

pytestmark = pytest.mark.unit


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


IDENTITY = json.dumps({"_machinekey": b64("privkey:00"), "_current-profile": b64("a1b2"), "_profiles": b64('{"a1b2": {"ID": "a1b2", "Key": "profile-a1b2"}}'), "profile-a1b2": b64("{}")}, indent=2)
LOGGED_OUT = json.dumps({"_machinekey": b64("privkey:00"), "_current-profile": b64("a1b2"), "_profiles": b64("{}")}, indent=2)
UNLISTED = json.dumps({"_current-profile": b64("a1b2"), "_profiles": b64('{"ffff": {}}'), "profile-a1b2": b64("{}")})
NO_ENTRY = json.dumps({"_current-profile": b64("a1b2"), "_profiles": b64('{"a1b2": {}}')})


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "absent"),
        (b"{}", "none"),
        (b'{"_machinekey": "cHJpdmtleTowMA=="}', "none"),
        (LOGGED_OUT.encode(), "none"),
        (UNLISTED.encode(), "none"),
        (NO_ENTRY.encode(), "none"),
        (IDENTITY.encode(), "identity"),
        (b"{not json", "broken"),
        (b"[1, 2]", "broken"),
    ],
    ids=["empty", "fresh", "machine-key-only", "after-logout", "profile-not-listed", "no-profile-entry", "identity", "invalid-json", "not-an-object"],
)
def test_state_identity_of_the_file_content(content, expected):
    assert state_identity_of_bytes(content) == expected


@pytest.mark.parametrize(
    "text, kind, says",
    [
        ("backend error: invalid key: API key does not exist", LoginRejected, "rejected the auth key"),
        ("backend error: invalid key: API key kXyz not valid", LoginRejected, "rejected the auth key"),
        ("backend error: register request: http 429: rate limit exceeded, retry later", LoginRejected, "rate-limiting"),
        ("backend error: tailnet policy does not permit tag:ci", LoginRejected, "refused the login: tailnet policy does not permit tag:ci"),
        ("Unable to enable local Tailscale SSH server; not enabled on Tailnet. See https://tailscale.com/s/ssh", SshRefused, "tailnet policy"),
        ("You are connected over Tailscale\naborted, no changes made", TailscaleFailed, "confirmation"),
        ("Error: changing settings via 'tailscale up' requires mentioning all\nnon-default flags.", TailscaleFailed, "does not manage"),
        ("something else", type(None), ""),
    ],
    ids=["bad-key", "expired-key", "rate-limit", "control-reason", "ssh-policy", "lose-ssh-abort", "non-default-flags", "unknown"],
)
def test_classify_tailscale_error(text, kind, says):
    err = classify_tailscale_error(text, what="up")
    assert type(err) is kind
    if err is not None:
        assert says in err.message


def test_ssh_refused_has_its_exit_code_and_fix():
    err = classify_tailscale_error("Unable to enable local Tailscale SSH server; not enabled on Tailnet.", what="set")
    assert isinstance(err, SshRefused) and err.exit_code == 27 and err.fix is not None and "--no-ssh" in err.fix


@pytest.mark.parametrize(
    "log, tun",
    [
        ('getLocalBackend error: createEngine: tstun.New("tailscale0"): CreateTUN("tailscale0") failed; /dev/net/tun does not exist', True),
        ('getLocalBackend error: createEngine: tstun.New("tailscale0"): operation not permitted', True),
        ("ipnserver.New: permission denied", False),
    ],
    ids=["no-device", "no-net-admin-bare", "other"],
)
def test_tun_errors(log, tun):
    assert is_tun_error(log) is tun


@pytest.mark.parametrize(
    "prefs, flags",
    [
        (Prefs(), {}),
        (Prefs(control_url="https://controlplane.tailscale.com"), {}),
        (Prefs(corp_dns=False), {"accept-dns": False}),
        (Prefs(hostname="h", run_ssh=True, route_all=True, advertise_tags=("tag:a", "tag:b")), {"hostname": "h", "ssh": True, "accept-routes": True, "advertise-tags": "tag:a,tag:b"}),
        (Prefs(advertise_routes=("10.0.0.0/24", "0.0.0.0/0", "::/0")), {"advertise-routes": "10.0.0.0/24", "advertise-exit-node": True}),
        (Prefs(shields_up=True, exit_node_ip="100.64.0.9", exit_node_allow_lan_access=True), {"shields-up": True, "exit-node": "100.64.0.9", "exit-node-allow-lan-access": True}),
        (Prefs(operator_user="vscode", no_snat=True, netfilter_mode=0, run_web_client=True), {"operator": "vscode", "snat-subnet-routes": False, "netfilter-mode": "off", "webclient": True}),
        (Prefs(control_url="https://hs.example.com"), {"login-server": "https://hs.example.com"}),
    ],
    ids=["defaults", "default-control", "accept-dns", "managed", "routes-exit-node", "shields-exit-node", "operator-snat-netfilter-webclient", "headscale"],
)
def test_prefs_to_flags_non_default(prefs, flags):
    assert prefs_to_flags(prefs) == flags


@pytest.mark.parametrize(
    "prefs, cur_exit_ip, flags",
    [
        (Prefs(exit_node_id="nEXIT", exit_node_allow_lan_access=True), "100.64.0.7", {"exit-node": "100.64.0.7", "exit-node-allow-lan-access": True}),
        (Prefs(exit_node_id="nEXIT"), "", {}),
        (Prefs(exit_node_ip="100.64.0.9"), "100.64.0.7", {"exit-node": "100.64.0.9"}),
        (Prefs(), "100.64.0.7", {}),
        (Prefs(app_connector=True), "", {"advertise-connector": True}),
    ],
    ids=["id-by-peer-ip", "id-peer-gone", "ip-wins", "no-exit-node", "app-connector"],
)
def test_prefs_to_flags_exit_node_and_app_connector(prefs, cur_exit_ip, flags):
    """up.go prefsToFlags: exit-node is ExitNodeIP, else (ExitNodeID set) curExitNodeIP."""
    assert prefs_to_flags(prefs, cur_exit_ip) == flags


@pytest.mark.parametrize(
    "prefs_doc, peers, ip",
    [
        ({"ExitNodeID": "nEXIT", "ExitNodeIP": ""}, {"nOTHER": ["100.64.0.3"], "nEXIT": ["100.64.0.7", "fd7a:115c:a1e0::7"]}, "100.64.0.7"),
        ({"ExitNodeID": "nEXIT", "ExitNodeIP": ""}, {"nOTHER": ["100.64.0.3"]}, ""),
        ({"ExitNodeID": "nEXIT", "ExitNodeIP": ""}, {"nEXIT": []}, ""),
        ({"ExitNodeID": "", "ExitNodeIP": "100.64.0.9"}, {"nEXIT": ["100.64.0.7"]}, "100.64.0.9"),
        ({"ExitNodeID": "", "ExitNodeIP": ""}, {"nEXIT": ["100.64.0.7"]}, ""),
    ],
    ids=["by-id", "peer-gone", "peer-without-ip", "by-ip", "none"],
)
def test_exit_node_ip_from_the_status_peers(prefs_doc, peers, ip):
    from tests.unit.samples import prefs_json, status_json

    prefs = parse_prefs(prefs_json(**prefs_doc))
    assert exit_node_ip(prefs, parse_status(status_json("Running", peers=peers))) == ip


def test_debug_prefs_app_connector_is_read():
    from tests.unit.samples import prefs_json

    assert parse_prefs(prefs_json(AppConnector={"Advertise": True})).app_connector is True
    assert parse_prefs(prefs_json()).app_connector is False


@pytest.mark.parametrize(
    "long, short",
    [("1.86.2", "1.86.2"), ("1.86.2-t5a2b8c1f0-g1234", "1.86.2"), ("1.87.0-dev20250810", "1.87.0-dev20250810"), ("1.87.0-dev20250810-t2cd5fa3f7-dirty", "1.87.0-dev20250810"), ("weird", "weird")],
)
def test_short_version(long, short):
    assert short_version(long) == short
