"""What tailscale reports, parsed once into frozen dataclasses.

``tailscale status --json`` and ``tailscale debug prefs`` carry many more keys
than we read and change between releases: unknown keys are ignored, missing
optional ones become ``None``, and a wrong type raises ``TailscaleFailed``
naming the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import TailscaleFailed

__all__ = ["BACKEND_STATES", "Prefs", "SelfStatus", "Status", "parse_prefs", "parse_status"]

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
    auth_url: str
    tailscale_ips: tuple[str, ...]
    self: SelfStatus
    health: tuple[str, ...]
    magic_dns_suffix: str
    tailnet: str | None
    peers: int | None  # None when asked with --peers=false

    @property
    def running(self) -> bool:
        return self.backend_state == "Running"

    @property
    def logged_in(self) -> bool:
        """The node has an identity the control server knows (it can come up without a key)."""
        return self.backend_state in ("Running", "Stopped", "Starting", "NeedsMachineAuth") and bool(self.self.id or self.have_node_key)


def parse_status(text: str) -> Status:
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise TailscaleFailed(f"`tailscale status --json` printed something that is not JSON ({e})") from None
    if not isinstance(doc, dict):
        raise TailscaleFailed("`tailscale status --json` printed JSON that is not an object")
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
        auth_url=_field(doc, "AuthURL", str, "status", default=""),
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
        magic_dns_suffix=_field(doc, "MagicDNSSuffix", str, "status", default=""),
        tailnet=(_field(tailnet, "Name", str, "CurrentTailnet") if tailnet else None),
        peers=len(peers) if isinstance(peers, dict) else None,
    )


@dataclass(frozen=True, kw_only=True)
class Prefs:
    """The settings ``up``/``set`` manage, as ``tailscale debug prefs`` names them."""

    hostname: str = ""
    run_ssh: bool = False
    route_all: bool = False
    advertise_tags: tuple[str, ...] = ()
    want_running: bool = False
    logged_out: bool = False


def parse_prefs(text: str) -> Prefs:
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise TailscaleFailed(f"`tailscale debug prefs` printed something that is not JSON ({e})") from None
    if not isinstance(doc, dict):
        raise TailscaleFailed("`tailscale debug prefs` printed JSON that is not an object")
    return Prefs(
        hostname=_field(doc, "Hostname", str, "prefs", default=""),
        run_ssh=bool(_field(doc, "RunSSH", bool, "prefs", default=False)),
        route_all=bool(_field(doc, "RouteAll", bool, "prefs", default=False)),
        advertise_tags=_strings(doc, "AdvertiseTags", "prefs"),
        want_running=bool(_field(doc, "WantRunning", bool, "prefs", default=False)),
        logged_out=bool(_field(doc, "LoggedOut", bool, "prefs", default=False)),
    )
