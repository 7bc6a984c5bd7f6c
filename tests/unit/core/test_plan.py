"""The connect planner over the combinations of probe and wish that matter."""

import pytest

from devc_tasks.core import plan, probe
from devc_tasks.core.errors import DaemonFailed, KeyRequired, LoginRejected, StateVolumeError, TailscaleFailed, TailscaleNotInstalled, TunMissing
from devc_tasks.core.outcome import connect_warnings
from devc_tasks.core.plan import UpWish, next_step
from devc_tasks.core.probe import parse_probe
from tests.unit.samples import prefs_json, probe_text, status_json

pytestmark = pytest.mark.unit

CLI = "/usr/local/bin/tailscale"
DAEMON = "/usr/local/sbin/tailscaled"
SOCK = "--socket=/var/run/tailscale/tailscaled.sock"
NAME = "web-devc-laptop"


def wish(**kw):
    return UpWish(**{"hostname": NAME, **kw})


def running(**prefs_kw):
    return dict(pid=42, socket=True, status=status_json("Running"), prefs=prefs_json(**prefs_kw))


DOWN = dict(pid=None, socket=False)
UP_FLAGS = (f"--hostname={NAME}", "--ssh", "--accept-routes=false", "--advertise-tags=", "--timeout=60s")

CASES = [
    # (id, probe kwargs, wish kwargs, expected step type, expected argv or error class)
    ("no-cli", dict(ts=False, **DOWN), dict(have_key=True), plan.Fail, TailscaleNotInstalled),
    ("down-no-key-no-identity", dict(**DOWN), {}, plan.Skip, None),
    ("down-no-key-require-key", dict(**DOWN), dict(require_key=True), plan.Fail, KeyRequired),
    ("down-key-no-tun", dict(tun=False, **DOWN), dict(have_key=True), plan.Fail, TunMissing),
    ("down-key-no-tun-userspace", dict(tun=False, **DOWN), dict(have_key=True, userspace=True), plan.StartDaemon,
     (DAEMON, "--state=/var/lib/tailscale/tailscaled.state", SOCK, "--tun=userspace-networking")),
    ("down-key-tun", dict(**DOWN), dict(have_key=True), plan.StartDaemon,
     (DAEMON, "--state=/var/lib/tailscale/tailscaled.state", SOCK)),
    ("down-identity-on-volume-no-key", dict(state_file=True, **DOWN), {}, plan.StartDaemon,
     (DAEMON, "--state=/var/lib/tailscale/tailscaled.state", SOCK)),
    ("down-no-tailscaled", dict(tsd=False, **DOWN), dict(have_key=True), plan.Fail, TailscaleNotInstalled),
    ("daemon-starting-not-answering", dict(tun=False, pid=7, socket=True), dict(have_key=True), plan.StartDaemon,
     (DAEMON, "--state=/var/lib/tailscale/tailscaled.state", SOCK)),
    ("needs-login-key", dict(pid=42, socket=True, status=status_json("NeedsLogin")), dict(have_key=True), plan.Login,
     (CLI, SOCK, "up", *UP_FLAGS, "--auth-key=file:/dev/stdin")),
    ("needs-login-no-key", dict(pid=42, socket=True, status=status_json("NeedsLogin")), {}, plan.Skip, None),
    ("needs-login-no-key-required", dict(pid=42, socket=True, status=status_json("NeedsLogin")), dict(require_key=True), plan.Fail, KeyRequired),
    ("running-same", running(), {}, plan.Done, None),
    ("running-same-key-ignored", running(), dict(have_key=True), plan.Done, None),
    ("running-other-hostname", running(hostname="old-name"), {}, plan.ApplySettings, (CLI, SOCK, "set", f"--hostname={NAME}")),
    ("running-ssh-off-wanted", running(), dict(ssh=False), plan.ApplySettings, (CLI, SOCK, "set", "--ssh=false", "--accept-risk=lose-ssh")),
    ("running-routes", running(), dict(accept_routes=True), plan.ApplySettings, (CLI, SOCK, "set", "--accept-routes")),
    # `tailscale set` has no --advertise-tags: a tag change goes through `up` with every flag mentioned
    ("running-tags", running(), dict(advertise_tags=("tag:dev",)), plan.Connect,
     (CLI, SOCK, "up", *UP_FLAGS[:3], "--advertise-tags=tag:dev", UP_FLAGS[4])),
    ("down-not-root", dict(uid=1000, **DOWN), dict(have_key=True), plan.Fail, DaemonFailed),
    ("running-not-root-is-fine", dict(uid=1000, **running()), {}, plan.Done, None),
    ("running-prefs-unknown", dict(pid=42, socket=True, status=status_json("Running")), {}, plan.Done, None),
    # a logged-in node comes back with a bare `up` (a "simple up": no non-default-flags check);
    # the settings follow with `set` once it runs
    ("stopped-with-identity", dict(pid=42, socket=True, status=status_json("Stopped"), prefs=prefs_json(want_running=False)), {},
     plan.Connect, (CLI, SOCK, "up")),
    ("stopped-other-hostname-still-up", dict(pid=42, socket=True, status=status_json("Stopped", hostname="old")), dict(hostname="new"),
     plan.Connect, (CLI, SOCK, "up")),
    ("stopped-user-set-accept-dns", dict(pid=42, socket=True, status=status_json("Stopped"), prefs=prefs_json(want_running=False, CorpDNS=False)), {},
     plan.Connect, (CLI, SOCK, "up")),
    # a tag change must go through `up`: every non-default setting is mentioned as it is
    ("running-tags-user-settings", running(CorpDNS=False, ShieldsUp=True, AdvertiseRoutes=["10.0.0.0/24"], OperatorUser="vscode"),
     dict(advertise_tags=("tag:dev",)), plan.Connect,
     (CLI, SOCK, "up", *UP_FLAGS[:3], "--advertise-tags=tag:dev", "--accept-dns=false", "--advertise-routes=10.0.0.0/24",
      "--operator=vscode", "--shields-up", UP_FLAGS[4])),
    # an exit node the daemon names by ID is mentioned by its peer's IP (up.go exitNodeIP), as is an app connector
    ("running-tags-exit-node-app-connector",
     dict(pid=42, socket=True, status=status_json("Running", peers={"nEXIT1CNTRL": ["100.64.0.7", "fd7a:115c:a1e0::7"]}),
          prefs=prefs_json(ExitNodeID="nEXIT1CNTRL", ExitNodeIP="", ExitNodeAllowLANAccess=True, AppConnector={"Advertise": True})),
     dict(advertise_tags=("tag:dev",)), plan.Connect,
     (CLI, SOCK, "up", *UP_FLAGS[:3], "--advertise-tags=tag:dev", "--advertise-connector", "--exit-node=100.64.0.7",
      "--exit-node-allow-lan-access", UP_FLAGS[4])),
    # allow-lan with no exit node the status can name: up.go refuses --exit-node-allow-lan-access
    # without --exit-node, so `up` says =false and a `set` restores it (test_lan_access_is_restored)
    ("running-tags-lan-access-alone", running(ExitNodeAllowLANAccess=True), dict(advertise_tags=("tag:dev",)), plan.Connect,
     (CLI, SOCK, "up", *UP_FLAGS[:3], "--advertise-tags=tag:dev", "--exit-node-allow-lan-access=false", UP_FLAGS[4])),
    ("running-tags-exit-node-peer-gone",
     dict(pid=42, socket=True, status=status_json("Running"), prefs=prefs_json(ExitNodeID="nGONE1CNTRL", ExitNodeAllowLANAccess=True)),
     dict(advertise_tags=("tag:dev",)), plan.Connect,
     (CLI, SOCK, "up", *UP_FLAGS[:3], "--advertise-tags=tag:dev", "--exit-node-allow-lan-access=false", UP_FLAGS[4])),
    # an exit node set by an IP no peer has: up would refuse it ("no node found in netmap"); say what to do
    ("running-tags-exit-node-ip-unknown", running(ExitNodeIP="100.64.9.9"), dict(advertise_tags=("tag:dev",)), plan.Fail, TailscaleFailed),
    # ... but an IP a peer has (its second one, too) is kept
    ("running-tags-exit-node-ip-of-a-peer",
     dict(pid=42, socket=True, status=status_json("Running", peers={"nEXIT1CNTRL": ["100.64.0.7", "fd7a:115c:a1e0::7"]}),
          prefs=prefs_json(ExitNodeIP="fd7a:115c:a1e0::7")),
     dict(advertise_tags=("tag:dev",)), plan.Connect,
     (CLI, SOCK, "up", *UP_FLAGS[:3], "--advertise-tags=tag:dev", "--exit-node=fd7a:115c:a1e0::7", UP_FLAGS[4])),
    # NoState with a node key right after the daemon started: connecting, never a new login
    ("nostate-node-key-key-available", dict(pid=42, socket=True, status=status_json("NoState", node_key=True)), dict(have_key=True), plan.WaitRunning, None),
    ("nostate-node-key-no-key", dict(pid=42, socket=True, status=status_json("NoState", node_key=True)), dict(require_key=True), plan.WaitRunning, None),
    ("nostate-fresh-key", dict(pid=42, socket=True, status=status_json("NoState")), dict(have_key=True), plan.Login,
     (CLI, SOCK, "up", *UP_FLAGS, "--auth-key=file:/dev/stdin")),
    # the state file's content, not its size, says whether there is an identity
    ("down-fresh-state-file-no-key", dict(state_file="fresh", **DOWN), {}, plan.Skip, None),
    ("down-logged-out-state-file-no-key", dict(state_file="logged-out", **DOWN), dict(require_key=True), plan.Fail, KeyRequired),
    ("down-identity-state-file-no-key", dict(state_file="identity", **DOWN), {}, plan.StartDaemon, None),
    ("down-broken-state-file", dict(state_file="broken", **DOWN), dict(have_key=True), plan.Fail, StateVolumeError),
    ("running-broken-state-file", dict(pid=42, socket=True, status=status_json("NoState", health=["state store unreadable"]), state_file="broken"),
     dict(have_key=True), plan.Fail, StateVolumeError),
    ("starting", dict(pid=42, socket=True, status=status_json("Starting")), {}, plan.WaitRunning, None),
    ("machine-auth", dict(pid=42, socket=True, status=status_json("NeedsMachineAuth")), dict(have_key=True), plan.Fail, LoginRejected),
    ("in-use-other-user", dict(pid=42, socket=True, status=status_json("InUseOtherUser")), dict(have_key=True), plan.Fail, TailscaleFailed),
]


@pytest.mark.parametrize("probe_kw, wish_kw, kind, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_next_step(probe_kw, wish_kw, kind, expected):
    step = next_step(parse_probe(probe_text(**probe_kw)), wish(**wish_kw))
    assert type(step) is kind
    if kind is plan.Fail:
        assert isinstance(step.error, expected)
    elif expected is not None:
        assert step.argv == expected


@pytest.mark.parametrize("prefs_kw, peers, then", [
    (dict(ExitNodeAllowLANAccess=True), None, (CLI, SOCK, "set", "--exit-node-allow-lan-access")),
    (dict(ExitNodeID="nGONE1CNTRL", ExitNodeAllowLANAccess=True), None, (CLI, SOCK, "set", "--exit-node-allow-lan-access")),
    (dict(ExitNodeID="nEXIT1CNTRL", ExitNodeAllowLANAccess=True), {"nEXIT1CNTRL": ["100.64.0.7"]}, ()),
    (dict(), None, ()),
], ids=["alone", "peer-gone", "exit-node-named", "off"])
def test_lan_access_is_restored_after_a_tag_change(prefs_kw, peers, then):
    p = dict(pid=42, socket=True, status=status_json("Running", peers=peers or {}), prefs=prefs_json(**prefs_kw))
    step = next_step(parse_probe(probe_text(**p)), wish(advertise_tags=("tag:dev",)))
    assert isinstance(step, plan.Connect) and step.then == then


def test_an_unknown_exit_node_ip_says_how_to_clear_it():
    step = next_step(parse_probe(probe_text(**running(ExitNodeIP="100.64.9.9"))), wish(advertise_tags=("tag:dev",)))
    assert isinstance(step, plan.Fail)
    assert "100.64.9.9" in step.error.message and "not a peer" in step.error.message
    assert "tailscale set --exit-node=" in step.error.fix


def test_tun_failure_names_the_exact_fix():
    step = next_step(parse_probe(probe_text(tun=False, **DOWN)), wish(have_key=True))
    fix = step.error.fix
    for line in ("- /dev/net/tun:/dev/net/tun", "- NET_ADMIN", "- NET_RAW", '"runArgs": ["--device=/dev/net/tun", "--cap-add=NET_ADMIN", "--cap-add=NET_RAW"]', "--userspace"):
        assert line in fix


def test_skip_says_why():
    step = next_step(parse_probe(probe_text(**DOWN)), wish())
    assert "no auth key" in step.reason and "opt-in" in step.reason


@pytest.mark.parametrize(
    "kw, expected",
    [
        (dict(timeout=60), "--timeout=60s"),
        (dict(timeout=1.5), "--timeout=1500ms"),
        (dict(ssh=False, accept_routes=True), "--ssh=false"),
        (dict(timeout=0.0004), "--timeout=1ms"),
        (dict(timeout=0.1), "--timeout=100ms"),
        (dict(timeout=0.0011), "--timeout=2ms"),
        (dict(timeout=86400), "--timeout=86400s"),
    ],
    ids=["seconds", "fraction", "flags", "below-a-millisecond-is-not-0ms", "float-noise", "rounded-up", "a-day"],
)
def test_up_argv(kw, expected):
    argv = plan.up_argv(CLI, wish(**kw), with_key=False)
    assert expected in argv
    assert not any(a.startswith("--auth-key") for a in argv)
    assert plan.up_argv(CLI, wish(**kw), with_key=True)[-1] == "--auth-key=file:/dev/stdin"


def test_parse_probe_fields():
    p = parse_probe(probe_text(pid=42, socket=True, state_file=True, status=status_json("Running"), prefs=prefs_json()))
    assert p.tun and p.socket and p.has_state and p.answering
    assert p.daemon_pid == 42 and p.uid == 0 and p.version == "1.86.2"
    assert p.has_cap(probe.CAP_NET_ADMIN) and p.has_cap(probe.CAP_NET_RAW)
    assert p.prefs is not None and p.prefs.hostname == NAME


def test_parse_probe_daemon_error_kept():
    p = parse_probe(probe_text(pid=None, socket=True, status="failed to connect to local tailscaled; it doesn't appear to be running", status_rc=1))
    assert p.status is None and "failed to connect" in p.status_error


def test_parse_probe_tolerates_cli_warnings():
    """The real CLI warns on stderr (kept in the probe's capture) when its version differs from the daemon's."""
    warning = 'Warning: client version "1.86.2-t1" != tailscaled server version "1.84.0-t2"'
    text = probe_text(pid=42, socket=True, status=warning + "\n" + status_json("Running"), prefs=warning + "\n" + prefs_json())
    p = parse_probe(text)
    assert p.status is not None and p.status.backend_state == "Running"
    assert p.prefs is not None and p.prefs.run_ssh


def test_parse_probe_rejects_garbage():
    with pytest.raises(TailscaleFailed, match="unexpected"):
        parse_probe("OCI runtime exec failed: exec: \"sh\": not found")


@pytest.mark.parametrize(
    "dns, tun, expect",
    [
        (f"{NAME}.tail1234.ts.net.", True, []),
        (f"{NAME}-1.tail1234.ts.net.", True, ["another node already holds"]),
        (f"{NAME}.tail1234.ts.net.", False, ["userspace-networking"]),
        (f"{NAME}.tail1234.ts.net.", True, []),
    ],
    ids=["clean", "collision", "userspace", "case-insensitive"],
)
def test_connect_warnings(request, dns, tun, expect):
    p = parse_probe(probe_text(pid=1, socket=True, status=status_json("Running", dns=dns, tun=tun), prefs=prefs_json()))
    wanted = NAME.upper() if request.node.callspec.id == "case-insensitive" else NAME
    warnings = connect_warnings(p, wanted)
    assert len(warnings) == len(expect)
    for w, e in zip(warnings, expect, strict=True):
        assert e in w


@pytest.mark.parametrize(
    "line, cli, daemon",
    [
        ("1.86.2", "1.86.2", "1.86.2"),
        ("1.87.0-dev20250810", "1.87.0-dev20250810", "1.87.0-dev20250810"),
    ],
    ids=["release", "dev-build"],
)
def test_probe_versions_cli_and_daemon_apart(line, cli, daemon):
    p = parse_probe(probe_text(pid=42, socket=True, status=status_json("Running", version=f"{daemon}-t2cd5fa3f7"), prefs=prefs_json(), version=line))
    assert (p.version, p.daemon_version) == (cli, daemon)
    p = parse_probe(probe_text(pid=42, socket=True, status=status_json("Running", version="1.80.0-tabc"), prefs=prefs_json(), version=line))
    assert (p.version, p.daemon_version) == (cli, "1.80.0")


@pytest.mark.parametrize(
    "kind, identity",
    [("fresh", False), ("logged-out", False), ("identity", True), ("broken", False)],
)
def test_probe_identity_from_the_state_file(kind, identity):
    p = parse_probe(probe_text(state_file=kind, **DOWN))
    assert p.has_identity is identity
    assert p.state_broken is (kind == "broken")


@pytest.mark.parametrize(
    ("prefs", "version", "args"),
    [(False, False, []), (True, False, ["prefs"]), (False, True, ["version"]), (True, True, ["prefs", "version"])],
)
def test_probe_argv_names_the_optional_cli_calls(prefs, version, args):
    from devc_tasks.core.scripts import PROBE_SCRIPT

    argv = probe.probe_argv(prefs=prefs, version=version)
    assert argv[:3] == ["sh", "-c", PROBE_SCRIPT] and argv[3:] == ["devc-probe", *args]
