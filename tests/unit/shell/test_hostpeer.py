"""The host's view of the container's node: pure matching, and the quiet skips."""

from __future__ import annotations

import json
import subprocess
from types import SimpleNamespace

import pytest

from devc_tasks.shell.hostpeer import host_peer, peer_view

ID, KEY = "nAbc123CNTRL", "nodekey:aa11"


def status(*peers, state="Running", me=None):
    return {"BackendState": state, "Self": me or {"ID": "nHost", "PublicKey": "nodekey:host"}, "Peer": {p.get("PublicKey", str(i)): p for i, p in enumerate(peers)}}


@pytest.mark.parametrize(
    "doc, expected",
    [
        (status({"ID": ID, "PublicKey": KEY, "Online": True}), {"seen": True, "online": True, "self": False}),
        (status({"ID": ID, "PublicKey": KEY, "Online": False}), {"seen": True, "online": False, "self": False}),
        (status({"ID": "other", "PublicKey": KEY, "Online": True}), {"seen": True, "online": True, "self": False}),  # by public key
        (status({"ID": ID, "Online": "yes"}), {"seen": True, "online": False, "self": False}),  # not a bool: not online
        (status({"ID": "nOther", "PublicKey": "nodekey:bb", "HostName": "peer-box", "Online": True}), {"seen": False, "online": False, "self": False}),
        (status(me={"ID": ID, "PublicKey": KEY}), {"seen": True, "online": True, "self": True}),
        (status({"ID": ID, "Online": True}, state="Stopped"), None),
        (status({"ID": ID, "Online": True}, state="NeedsLogin"), None),
        ({"BackendState": "Running", "Peer": ["not", "a", "map"]}, {"seen": False, "online": False, "self": False}),
        ({"BackendState": "Running", "Peer": {"x": "str"}, "Self": 3}, {"seen": False, "online": False, "self": False}),
        ([], None),
        ("Running", None),
    ],
)
def test_peer_view(doc, expected):
    assert peer_view(doc, node_id=ID, public_key=KEY) == expected


def test_empty_ids_never_match():
    doc = status({"ID": "", "PublicKey": "", "Online": True})
    assert peer_view(doc, node_id="", public_key="") == {"seen": False, "online": False, "self": False}


def _run(stdout=b"", code=0, exc=None):
    calls = []

    def run(argv, **kw):
        calls.append((argv, kw))
        if exc is not None:
            raise exc
        return SimpleNamespace(returncode=code, stdout=stdout)

    return run, calls


@pytest.mark.parametrize(
    "run",
    [
        _run(code=1)[0],
        _run(stdout=b"not json")[0],
        _run(stdout=b"[" * (9 * 1024 * 1024))[0],
        _run(exc=subprocess.TimeoutExpired("tailscale", 5))[0],
        _run(exc=PermissionError(13, "denied"))[0],
    ],
)
def test_failures_are_quiet_skips(run):
    assert host_peer(ID, KEY, env={}, which=lambda _: "/usr/bin/tailscale", run=run) is None


def test_no_binary_runs_nothing():
    run, calls = _run()
    assert host_peer(ID, KEY, env={}, which=lambda _: None, run=run) is None and calls == []


def test_socket_override_and_bounded_run():
    run, calls = _run(stdout=json.dumps(status({"ID": ID, "Online": True})).encode())
    assert host_peer(ID, KEY, env={"DEVC_HOST_TAILSCALE_SOCKET": "/tmp/h.sock"}, which=lambda _: "/x/tailscale", run=run)["online"] is True
    (argv, kw), = calls
    assert argv == ["/x/tailscale", "--socket=/tmp/h.sock", "status", "--json"] and kw["timeout"] > 0


def test_the_host_client_gets_no_secret_in_its_environment():
    run, calls = _run(stdout=b"{}")
    env = {"PATH": "/bin", "TAILSCALE_OAUTH_CLIENT_SECRET": "tskey-client-s", "TAILSCALE_API_KEY": "tskey-api-k", "TAILSCALE_AUTHKEY": "tskey-auth-a", "TAILSCALE_OAUTH_CLIENT_ID": "cid"}
    host_peer(ID, KEY, env=env, which=lambda _: "/x/tailscale", run=run)
    (_argv, kw), = calls
    assert kw["env"] == {"PATH": "/bin", "TAILSCALE_OAUTH_CLIENT_ID": "cid"}
