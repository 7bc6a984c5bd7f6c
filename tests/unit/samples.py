"""Real-shaped `tailscale status --json` / `debug prefs` documents for unit tests."""

from __future__ import annotations

import json
from typing import Any

ZERO = "0001-01-01T00:00:00Z"


def status_doc(state: str = "Running", *, hostname: str = "web-devc-laptop", dns: str | None = None, tun: bool = True, node_id: str = "nAbC123XyZ11CNTRL", node_key: bool | None = None, health: list[str] | None = None, version: str = "1.86.2-t1234abcd", peers: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """``node_key``: HaveNodeKey for NoState (right after a daemon start with an identity);
    ``peers``: stable ID -> Tailscale IPs of each peer."""
    logged_in = state in ("Running", "Stopped", "Starting", "NeedsMachineAuth")
    if dns is None:
        dns = f"{hostname}.tail1234.ts.net." if logged_in else ""
    doc: dict[str, Any] = {
        "Version": version,
        "TUN": tun,
        "BackendState": state,
        "AuthURL": "",
        "TailscaleIPs": ["100.101.102.103", "fd7a:115c:a1e0::1"] if logged_in else None,
        "Self": {
            "ID": node_id if logged_in else "",
            "PublicKey": "nodekey:" + ("ab" * 32 if logged_in else "0" * 64),
            "HostName": hostname if logged_in else "3f2a1b4c5d6e",
            "DNSName": dns,
            "OS": "linux",
            "UserID": 123 if logged_in else 0,
            "TailscaleIPs": ["100.101.102.103"] if logged_in else None,
            "AllowedIPs": None,
            "Online": state == "Running",
            "Active": False,
            "ExitNode": False,
            "Created": ZERO,
            "LastSeen": ZERO,
            "SomethingNew": {"x": 1},
        },
        "Health": health or [],
        "MagicDNSSuffix": "tail1234.ts.net" if logged_in else "",
        "CurrentTailnet": {"Name": "user@example.com", "MagicDNSSuffix": "tail1234.ts.net", "MagicDNSEnabled": True} if logged_in else None,
        "CertDomains": None,
        "Peer": {f"nodekey:{i:064x}": {"ID": pid, "PublicKey": f"nodekey:{i:064x}", "HostName": pid.lower(), "TailscaleIPs": ips, "ExitNodeOption": True}
                 for i, (pid, ips) in enumerate((peers or {}).items())} or None,
        "User": None,
        "ClientVersion": None,
    }
    if logged_in or node_key:
        doc = {**{k: doc[k] for k in ("Version", "TUN", "BackendState")}, "HaveNodeKey": True, **{k: v for k, v in doc.items() if k not in ("Version", "TUN", "BackendState")}}
    return doc


def status_json(*args: Any, **kwargs: Any) -> str:
    return json.dumps(status_doc(*args, **kwargs), indent=2)


def prefs_json(*, hostname: str = "web-devc-laptop", ssh: bool = True, routes: bool = False, tags: list[str] | None = None, want_running: bool = True, **extra: Any) -> str:
    """``extra``: other prefs as `debug prefs` names them (``CorpDNS=False``, ...)."""
    return json.dumps(
        {
            "ControlURL": "https://controlplane.tailscale.com",
            "RouteAll": routes,
            "ExitNodeID": "",
            "CorpDNS": True,
            "RunSSH": ssh,
            "WantRunning": want_running,
            "LoggedOut": False,
            "ShieldsUp": False,
            "AdvertiseTags": tags,
            "Hostname": hostname,
            "NotepadURLs": False,
            "AdvertiseRoutes": None,
            "NoSNAT": False,
            "NetfilterMode": 2,
            **extra,
        },
        indent="\t",
    )


STATE_FILES: dict[str, list[str]] = {
    # what the probe sends for each kind of state file: the file with values blanked, and
    # the decoded _current-profile and _profiles
    "identity": ["--- state", '{\n  "_machinekey": "",\n  "_current-profile": "",\n  "_profiles": "",\n  "profile-a1b2": ""\n}', "",
                 "--- state_current", "a1b2", "--- state_profiles", '{"a1b2": {"ID": "a1b2", "Key": "profile-a1b2"}}', ""],
    "fresh": ["--- state", "{}", "", "--- state_current", "", "--- state_profiles", "", ""],
    "logged-out": ["--- state", '{\n  "_machinekey": "",\n  "_current-profile": "",\n  "_profiles": ""\n}', "",
                   "--- state_current", "a1b2", "--- state_profiles", "{}", ""],
    "broken": ["--- state", "{not json", "", "--- state_current", "", "--- state_profiles", "", ""],
}


def probe_text(*, uid: int = 0, tun: bool = True, ts: bool = True, tsd: bool = True, pid: int | None = None, socket: bool = False, state_file: bool | str = False, status: str | None = None, prefs: str | None = None, status_rc: int = 0, version: str = "1.86.2") -> str:
    """``state_file``: False (none), True (an identity), or a key of ``STATE_FILES``."""
    kind = "identity" if state_file is True else state_file or None
    lines = [
        "devc-probe=1",
        f"tun={int(tun)}",
        f"tailscale={'/usr/local/bin/tailscale' if ts else ''}",
        f"tailscaled={'/usr/local/sbin/tailscaled' if tsd else ''}",
        f"daemon_pid={pid or ''}",
        f"socket={int(socket)}",
        f"state={int(kind is not None)}",
    ]
    lines += [
        "capeff=00000000a80435fb",
        f"uid={uid}",
    ]
    if status is not None:
        lines += [f"status_rc={status_rc}", "--- status", status]
        if prefs is not None:
            lines += ["--- prefs", prefs, ""]
    if ts:
        lines += ["--- version", version]
    if kind is not None:
        lines += STATE_FILES[str(kind)]
    lines.append("--- end")
    return "\n".join(lines) + "\n"
