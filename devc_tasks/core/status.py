"""What tailscale reports, parsed once into frozen dataclasses.

``tailscale status --json`` and ``tailscale debug prefs`` carry many more keys
than we read and change between releases: unknown keys are ignored, missing
optional ones become ``None``, and a wrong type raises ``TailscaleFailed``
naming the field.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from devc_tasks.core.errors import TailscaleFailed

__all__ = ["BACKEND_STATES", "Prefs", "SelfStatus", "Status", "exit_node_ip", "parse_prefs", "parse_status", "prefs_to_flags", "short_version"]

BACKEND_STATES = ("NoState", "InUseOtherUser", "NeedsLogin", "NeedsMachineAuth", "Stopped", "Starting", "Running")
_ZERO_TIME = "0001-01-01T00:00:00Z"


def _field(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], path: str, default: Any = None) -> Any:
    value = obj.get(key, default)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise TailscaleFailed(f"tailscale reported {path}.{key} as {type(value).__name__}, expected {kind}")
    return value


def _strings(obj: dict[str, Any], key: str, path: str) -> tuple[str, ...]:
    items = _field(obj, key, list, path, default=[])
    return tuple(str(i) for i in items)


@dataclass(frozen=True, kw_only=True)
class SelfStatus:
    id: str
    public_key: str
    host_name: str
    dns_name: str  # with the trailing dot, "" before login
    os: str
    online: bool
    tailscale_ips: tuple[str, ...]
    key_expiry: str | None

    @property
    def magic_dns_name(self) -> str:
        return self.dns_name.rstrip(".")

    @property
    def dns_label(self) -> str:
        """The first label of the MagicDNS name: ``name-1`` when another node holds ``name``."""
        return self.magic_dns_name.split(".", 1)[0]


@dataclass(frozen=True, kw_only=True)
class Status:
    backend_state: str
    version: str
    tun: bool
    have_node_key: bool
    tailscale_ips: tuple[str, ...]
    self: SelfStatus
    health: tuple[str, ...]
    tailnet: str | None
    peers: int | None  # None when the document has no "Peer" key; null (zero peers) is 0
    peer_ips: tuple[tuple[str, str], ...] = ()  # (stable ID, Tailscale IP) for each IP of each peer, in order

    @property
    def running(self) -> bool:
        return self.backend_state == "Running"

    @property
    def connecting(self) -> bool:
        """Right after tailscaled starts, a node with a key on disk reports NoState with
        HaveNodeKey until control sends the first network map: it has an identity and
        connects by itself. Never a reason to log in again."""
        return self.backend_state in ("NoState", "Starting") and self.have_node_key

    @property
    def state_label(self) -> str:
        """What a person reads: "connecting" for the window above, else the backend state."""
        return "connecting" if self.backend_state == "NoState" and self.have_node_key else self.backend_state

    @property
    def logged_in(self) -> bool:
        """The node has an identity the control server knows (it can come up without a key)."""
        if self.backend_state == "NoState":
            return self.have_node_key
        return self.backend_state in ("Running", "Stopped", "Starting", "NeedsMachineAuth") and bool(self.self.id or self.have_node_key)


def _json_object(text: str, command: str) -> dict[str, Any]:
    """What a tailscale command printed, as the JSON object it must be."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise TailscaleFailed(f"`{command}` printed something that is not JSON ({e})") from None
    if not isinstance(doc, dict):
        raise TailscaleFailed(f"`{command}` printed JSON that is not an object")
    return doc


def parse_status(text: str) -> Status:
    doc = _json_object(text, "tailscale status --json")
    me = _field(doc, "Self", dict, "status", default={})
    state = _field(doc, "BackendState", str, "status", default="NoState")
    tailnet = _field(doc, "CurrentTailnet", dict, "status")
    peers = doc.get("Peer")
    expiry = _field(me, "KeyExpiry", str, "Self")
    return Status(
        backend_state=state,
        version=_field(doc, "Version", str, "status", default=""),
        tun=bool(_field(doc, "TUN", bool, "status", default=False)),
        have_node_key=bool(_field(doc, "HaveNodeKey", bool, "status", default=False)),
        tailscale_ips=_strings(doc, "TailscaleIPs", "status"),
        self=SelfStatus(
            id=_field(me, "ID", str, "Self", default=""),
            public_key=_field(me, "PublicKey", str, "Self", default=""),
            host_name=_field(me, "HostName", str, "Self", default=""),
            dns_name=_field(me, "DNSName", str, "Self", default=""),
            os=_field(me, "OS", str, "Self", default=""),
            online=bool(_field(me, "Online", bool, "Self", default=False)),
            tailscale_ips=_strings(me, "TailscaleIPs", "Self"),
            key_expiry=None if expiry in (None, _ZERO_TIME) else expiry,
        ),
        health=_strings(doc, "Health", "status"),
        tailnet=(_field(tailnet, "Name", str, "CurrentTailnet") if tailnet else None),
        peers=len(peers) if isinstance(peers, dict) else (0 if "Peer" in doc else None),
        peer_ips=_peer_ips(peers),
    )


def _peer_ips(peers: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(peers, dict):
        return ()
    out: list[tuple[str, str]] = []
    for ps in peers.values():
        if isinstance(ps, dict):
            pid = _field(ps, "ID", str, "Peer", default="")
            out.extend((pid, ip) for ip in _strings(ps, "TailscaleIPs", "Peer"))
    return tuple(out)


@dataclass(frozen=True, kw_only=True)
class Prefs:
    """The node's settings as ``tailscale debug prefs`` names them: the four devc-tasks
    manages and every other one `tailscale up` checks (``prefsToFlags``)."""

    hostname: str = ""
    run_ssh: bool = False
    route_all: bool = False
    advertise_tags: tuple[str, ...] = ()
    logged_out: bool = False
    control_url: str = ""
    corp_dns: bool = True
    shields_up: bool = False
    advertise_routes: tuple[str, ...] = ()
    exit_node_id: str = ""  # the daemon names the exit node by stable ID once its netmap has it
    exit_node_ip: str = ""
    exit_node_allow_lan_access: bool = False
    app_connector: bool = False  # AppConnector.Advertise
    operator_user: str = ""
    no_snat: bool = False
    no_stateful_filtering: str = "true"  # an opt.Bool: "true", "false" or ""
    netfilter_mode: int = 2
    run_web_client: bool = False


_EXIT_ROUTES = ("0.0.0.0/0", "::/0")
_NETFILTER = {0: "off", 1: "nodivert", 2: "on"}
DEFAULT_CONTROL_URLS = ("", "https://controlplane.tailscale.com", "https://login.tailscale.com")


def exit_node_ip(p: Prefs, status: Status | None) -> str:
    """The exit node as an IP, as `tailscale up` names it (cmd/tailscale/cli/up.go
    ``exitNodeIP``): ExitNodeIP when set, else the first Tailscale IP of the status peer
    whose ID is ExitNodeID; "" when no peer has that ID."""
    if p.exit_node_ip or not p.exit_node_id or status is None:
        return p.exit_node_ip
    return next((ip for pid, ip in status.peer_ips if pid == p.exit_node_id), "")


def prefs_to_flags(p: Prefs, cur_exit_node_ip: str = "") -> dict[str, str | bool]:
    """The `tailscale up` flag values that reproduce the prefs (cmd/tailscale/cli/up.go
    ``prefsToFlags``, Linux), for the flags whose value differs from `up`'s default.
    Together with the flags a tool sets itself, these are what `up` must mention to pass
    ``checkForAccidentalSettingReverts``. ``cur_exit_node_ip`` is the exit node's IP from
    the status (``exit_node_ip``; up.go's ``upCheckEnv.curExitNodeIP``), used when the
    prefs name the exit node by ID only."""
    routes = p.advertise_routes
    values: dict[str, str | bool] = {
        "accept-dns": p.corp_dns,
        "accept-routes": p.route_all,
        "advertise-connector": p.app_connector,
        "advertise-exit-node": all(r in routes for r in _EXIT_ROUTES),
        "advertise-routes": ",".join(r for r in routes if r not in _EXIT_ROUTES),
        "advertise-tags": ",".join(p.advertise_tags),
        "exit-node": p.exit_node_ip or (cur_exit_node_ip if p.exit_node_id else ""),
        "exit-node-allow-lan-access": p.exit_node_allow_lan_access,
        "hostname": p.hostname,
        "login-server": p.control_url,
        "netfilter-mode": _NETFILTER.get(p.netfilter_mode, "on"),
        "operator": p.operator_user,
        "shields-up": p.shields_up,
        "snat-subnet-routes": not p.no_snat,
        "ssh": p.run_ssh,
        "stateful-filtering": p.no_stateful_filtering == "false",
        "webclient": p.run_web_client,
    }
    defaults: dict[str, str | bool] = {
        "accept-dns": True,
        "accept-routes": False,
        "advertise-connector": False,
        "advertise-exit-node": False,
        "advertise-routes": "",
        "advertise-tags": "",
        "exit-node": "",
        "exit-node-allow-lan-access": False,
        "hostname": "",
        "login-server": "https://controlplane.tailscale.com",
        "netfilter-mode": "on",
        "operator": "",
        "shields-up": False,
        "snat-subnet-routes": True,
        "ssh": False,
        "stateful-filtering": False,
        "webclient": False,
    }
    out = {k: v for k, v in values.items() if v != defaults[k]}
    if p.control_url in DEFAULT_CONTROL_URLS or p.control_url.rstrip("/") in DEFAULT_CONTROL_URLS:
        out.pop("login-server", None)
    return out


_SHORT_VERSION = re.compile(r"\d+\.\d+\.\d+(?:-dev\d{8})?")


def short_version(long: str) -> str:
    """``1.86.2-t5a2b8c1f0`` gives ``1.86.2``; a development build keeps its date:
    ``1.87.0-dev20250810-t2cd5fa3f7`` gives ``1.87.0-dev20250810``."""
    m = _SHORT_VERSION.match(long.strip())
    return m.group(0) if m else long.strip().split("-", 1)[0]


def parse_prefs(text: str) -> Prefs:
    doc = _json_object(text, "tailscale debug prefs")
    return Prefs(
        hostname=_field(doc, "Hostname", str, "prefs", default=""),
        run_ssh=bool(_field(doc, "RunSSH", bool, "prefs", default=False)),
        route_all=bool(_field(doc, "RouteAll", bool, "prefs", default=False)),
        advertise_tags=_strings(doc, "AdvertiseTags", "prefs"),
        logged_out=bool(_field(doc, "LoggedOut", bool, "prefs", default=False)),
        control_url=_field(doc, "ControlURL", str, "prefs", default=""),
        corp_dns=bool(_field(doc, "CorpDNS", bool, "prefs", default=True)),
        shields_up=bool(_field(doc, "ShieldsUp", bool, "prefs", default=False)),
        advertise_routes=_strings(doc, "AdvertiseRoutes", "prefs"),
        exit_node_id=_field(doc, "ExitNodeID", str, "prefs", default=""),
        exit_node_ip=_field(doc, "ExitNodeIP", str, "prefs", default=""),
        exit_node_allow_lan_access=bool(_field(doc, "ExitNodeAllowLANAccess", bool, "prefs", default=False)),
        operator_user=_field(doc, "OperatorUser", str, "prefs", default=""),
        no_snat=bool(_field(doc, "NoSNAT", bool, "prefs", default=False)),
        no_stateful_filtering=str(_field(doc, "NoStatefulFiltering", (str, bool), "prefs", default="true")).lower(),
        netfilter_mode=int(_field(doc, "NetfilterMode", int, "prefs", default=2)),
        run_web_client=bool(_field(doc, "RunWebClient", bool, "prefs", default=False)),
        app_connector=bool(_field(_field(doc, "AppConnector", dict, "prefs", default={}), "Advertise", bool, "AppConnector", default=False)),
    )
