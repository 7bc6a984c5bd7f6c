import json

import pytest

from devc_tasks.core.errors import TailscaleFailed
from devc_tasks.core.status import parse_prefs, parse_status
from tests.unit.samples import prefs_json, status_doc, status_json

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "state, logged_in, running",
    [
        ("Running", True, True),
        ("Stopped", True, False),
        ("Starting", True, False),
        ("NeedsLogin", False, False),
        ("NeedsMachineAuth", True, False),
        ("NoState", False, False),
    ],
    ids=lambda v: str(v),
)
def test_backend_states(state, logged_in, running):
    st = parse_status(status_json(state))
    assert st.backend_state == state
    assert st.logged_in is logged_in
    assert st.running is running


def test_running_fields_and_trailing_dot():
    st = parse_status(status_json("Running", hostname="web-devc-laptop", dns="web-devc-laptop-1.tail1234.ts.net."))
    assert st.self.id == "nAbC123XyZ11CNTRL"
    assert st.self.magic_dns_name == "web-devc-laptop-1.tail1234.ts.net"
    assert st.self.dns_label == "web-devc-laptop-1"
    assert st.tailscale_ips == ("100.101.102.103", "fd7a:115c:a1e0::1")
    assert st.tailnet == "user@example.com"
    assert st.peers == 0  # zero peers is null
    assert st.self.key_expiry is None
    assert st.have_node_key


def test_needs_login_nulls_are_tolerated():
    st = parse_status(status_json("NeedsLogin"))
    assert st.tailscale_ips == ()
    assert st.self.id == "" and st.self.dns_name == ""
    assert st.tailnet is None
    assert not st.have_node_key  # omitted when false


def test_unknown_and_missing_keys():
    doc = status_doc("Running")
    doc["BrandNewKey"] = [1, 2]
    del doc["Health"]
    doc["Self"].pop("KeyExpiry", None)
    del doc["Self"]["OS"]
    doc["Peer"] = {"nodekey:" + "cd" * 32: {"HostName": "other"}}
    st = parse_status(json.dumps(doc))
    assert st.health == ()
    assert st.peers == 1


@pytest.mark.parametrize(
    "text, match",
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not an object"),
        (json.dumps({"BackendState": 3}), r"status\.BackendState"),
        (json.dumps({"BackendState": "Running", "Self": {"Online": "yes"}}), r"Self\.Online"),
    ],
    ids=["garbage", "array", "state-type", "self-field-type"],
)
def test_bad_status(text, match):
    with pytest.raises(TailscaleFailed, match=match):
        parse_status(text)


def test_prefs():
    p = parse_prefs(prefs_json(hostname="x", ssh=False, routes=True, tags=["tag:dev"]))
    assert (p.hostname, p.run_ssh, p.route_all, p.advertise_tags) == ("x", False, True, ("tag:dev",))
    assert parse_prefs(prefs_json(tags=None)).advertise_tags == ()
