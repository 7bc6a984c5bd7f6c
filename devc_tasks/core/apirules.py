"""Pure decisions for the Tailscale API side: credentials, key requests, stale copies.

Nothing here does I/O. ``api_settings`` reads credentials from a mapping (the
host environment) and the ``tailscale`` config section; ``key_request`` builds
the body of ``POST /api/v2/tailnet/{tailnet}/keys``; ``judge`` is the one safety
rule that decides whether a device is a stale copy of this node, used by
``up --replace`` and by ``prune`` alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from devc_tasks.core.errors import ConfigError, UsageError
from devc_tasks.core.secrets import ENV_AUTHKEY, Secret

__all__ = [
    "check_no_secret",
    "ENV_CLIENT_ID",
    "ENV_CLIENT_SECRET",
    "ENV_API_KEY",
    "ENV_TAILNET",
    "ENV_BASE_URL",
    "DEFAULT_BASE_URL",
    "ApiSettings",
    "api_settings",
    "Device",
    "name_matches",
    "uses_name",
    "judge",
    "stale_copies",
    "key_request",
    "key_description",
    "SCOPE_KEYS",
    "SCOPE_DEVICES",
]

# The names Tailscale's Terraform provider reads (provider.go in tailscale/terraform-provider-tailscale).
ENV_CLIENT_ID = "TAILSCALE_OAUTH_CLIENT_ID"
ENV_CLIENT_SECRET = "TAILSCALE_OAUTH_CLIENT_SECRET"
ENV_API_KEY = "TAILSCALE_API_KEY"
ENV_TAILNET = "TAILSCALE_TAILNET"
ENV_BASE_URL = "TAILSCALE_BASE_URL"
DEFAULT_BASE_URL = "https://api.tailscale.com"
SCOPE_KEYS = "auth_keys"
SCOPE_DEVICES = "devices:core"

# Config keys that would hold a secret: refused with a pointer to the right place.
_SECRET_WORDS = ("secret", "api_key", "apikey", "token", "authkey", "auth_key", "password")


@dataclass(frozen=True, kw_only=True)
class ApiSettings:
    """Where the API is and how to authenticate; secrets are read lazily, once."""

    client_id: str | None = None
    client_secret: Callable[[], Secret] | None = None
    client_secret_source: str | None = None
    api_key: Secret | None = None
    tailnet: str = "-"
    base_url: str = DEFAULT_BASE_URL

    @property
    def kind(self) -> str | None:
        """``oauth``, ``api-key`` or None (no API credentials on this host)."""
        if self.client_id and self.client_secret is not None:
            return "oauth"
        if self.api_key is not None:
            return "api-key"
        return None

    @property
    def available(self) -> bool:
        return self.kind is not None

    def describe(self) -> str:
        if self.kind == "oauth":
            return f"OAuth client {self.client_id} ({self.client_secret_source})"
        if self.kind == "api-key":
            return f"API access token ({ENV_API_KEY})"
        return "no API credentials"


def check_no_secret(section: Mapping[str, Any]) -> None:
    """Refuse a ``tailscale`` config section that holds a secret (a key named like one, or a
    ``tskey-`` value): config files get committed and copied around. Checked wherever the
    section is read, not only when the API is used; the value is never echoed."""
    for key, value in section.items():
        lowered = str(key).lower()
        text = value.strip() if isinstance(value, str) else ""
        looks_secret = any(w in lowered for w in _SECRET_WORDS) or text.startswith("tskey-")
        if not (looks_secret and value):
            continue
        if "authkey" in lowered or "auth_key" in lowered or text.startswith("tskey-auth-"):
            fix = f"Remove it from invoke.yaml and give the key with --authkey-file PATH (or - for stdin), or set {ENV_AUTHKEY} on the host."
        else:
            target = ENV_API_KEY if "api" in lowered or text.startswith("tskey-api-") else ENV_CLIENT_SECRET
            fix = f"Remove it from invoke.yaml and put it in the host environment ({target}), or in a file given with --oauth-secret-file PATH (or - for stdin)."
        raise ConfigError(f"a secret is in the configuration file (tailscale.{key}); config files get committed and copied around", fix=fix)


_LOOPBACK = ("localhost", "127.0.0.1", "::1")


def _check_base_url(base_url: str) -> None:
    """https, or plain http to this machine only: the Authorization header carries the
    access token, and the URL is quoted in messages, so it holds no user or password."""
    from urllib.parse import urlsplit

    fix = f"Set {ENV_BASE_URL} (or tailscale.base_url) to e.g. {DEFAULT_BASE_URL}."
    if not re.match(r"https?://[^/\s]+", base_url):
        raise UsageError(f"the Tailscale API base URL {base_url[:100]!r} is not an http(s) URL", fix=fix)
    parts = urlsplit(base_url)
    if "@" in parts.netloc:
        raise UsageError("the Tailscale API base URL holds a user name or password; credentials go in the environment, never in the URL", fix=fix)
    host = (parts.hostname or "").lower()
    if parts.scheme == "http" and host not in _LOOPBACK and not host.startswith("127."):
        raise UsageError(
            f"the Tailscale API base URL {base_url!r} is plain http to another machine: the access token would cross the network in clear",
            fix=f"Use https (e.g. {DEFAULT_BASE_URL}); plain http is only for a server on this machine (localhost).",
        )


def api_settings(
    env: Mapping[str, str],
    config: Mapping[str, Any],
    *,
    secret_file: str | None = None,
    read_secret_file: Callable[[str], str] | None = None,
) -> ApiSettings:
    """Credentials from the host environment (and ``--oauth-secret-file``); non-secret
    defaults (tailnet, base_url) from the config section, the environment winning."""
    check_no_secret(config)
    client_id = (env.get(ENV_CLIENT_ID) or "").strip() or None
    secret_value = (env.get(ENV_CLIENT_SECRET) or "").strip()
    secret: Callable[[], Secret] | None = None
    source: str | None = None
    if secret_file:
        if read_secret_file is None:  # pragma: no cover - the task always passes one
            raise UsageError("--oauth-secret-file cannot be read here")
        reader = read_secret_file
        where = "standard input" if secret_file == "-" else secret_file
        cache: list[Secret] = []

        def load() -> Secret:
            if not cache:
                value = reader(secret_file).strip()
                if not value or any(c.isspace() for c in value):
                    raise UsageError(f"--oauth-secret-file {where}: expected exactly one OAuth client secret (tskey-client-...)")
                cache.append(Secret(value))
            return cache[0]

        secret, source = load, f"--oauth-secret-file {secret_file}"
    elif secret_value:
        held = Secret(secret_value)
        secret, source = (lambda: held), ENV_CLIENT_SECRET
    if secret is not None and client_id is None:
        raise UsageError(
            f"an OAuth client secret was given ({source}) but no client id",
            fix=f"Set {ENV_CLIENT_ID} on the host as well (the id shown next to the secret in the admin console).",
        )
    if client_id is not None and secret is None:
        raise UsageError(
            f"{ENV_CLIENT_ID} is set but the OAuth client secret is missing",
            fix=f"Set {ENV_CLIENT_SECRET} on the host, or give --oauth-secret-file PATH (or - for stdin).",
        )
    api_key_value = (env.get(ENV_API_KEY) or "").strip()
    base_url = (env.get(ENV_BASE_URL) or str(config.get("base_url") or "") or DEFAULT_BASE_URL).rstrip("/")
    _check_base_url(base_url)
    tailnet = (env.get(ENV_TAILNET) or str(config.get("tailnet") or "") or "-").strip()
    return ApiSettings(
        client_id=client_id,
        client_secret=secret,
        client_secret_source=source,
        api_key=Secret(api_key_value) if api_key_value else None,
        tailnet=tailnet,
        base_url=base_url,
    )


# --- devices -----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Device:
    """One entry of ``GET /api/v2/tailnet/{tailnet}/devices`` (the fields used here)."""

    id: str
    node_id: str
    name: str  # MagicDNS FQDN
    hostname: str
    tags: tuple[str, ...] = ()
    last_seen: str | None = None
    connected: bool = False
    authorized: bool = True
    ephemeral: bool = False

    @classmethod
    def from_api(cls, d: Mapping[str, Any]) -> Device:
        """Raises TypeError for an entry of the wrong shape: a device judged on a field
        that is not what the API documents could be deleted by mistake."""
        if not isinstance(d, Mapping):
            raise TypeError("a device entry is not an object")

        def text(key: str) -> str:
            value = d.get(key)
            if value is None:
                return ""
            if not isinstance(value, str):
                raise TypeError(f"the device field {key} is not a string")
            return value

        tags = d.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise TypeError("the device field tags is not a list of strings")
        return cls(
            id=text("id"),
            node_id=text("nodeId") or text("id"),
            name=text("name").rstrip("."),
            hostname=text("hostname"),
            tags=tuple(tags),
            last_seen=d.get("lastSeen") or None,
            connected=bool(d.get("connectedToControl")),
            authorized=bool(d.get("authorized", True)),
            ephemeral=bool(d.get("isEphemeral")),
        )

    @property
    def label(self) -> str:
        """The MagicDNS label (``web-1`` of ``web-1.tailnet.ts.net``)."""
        return self.name.split(".", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "hostname": self.hostname,
            "node_id": self.node_id,
            "last_seen": self.last_seen,
            "connected": self.connected,
            "tags": list(self.tags),
        }


def name_matches(candidate: str, wanted: str) -> bool:
    """``wanted`` itself or ``wanted-N`` (what the control server makes of a taken name);
    case-insensitive, as MagicDNS names are."""
    return bool(wanted) and re.fullmatch(re.escape(wanted.lower()) + r"(-[0-9]+)?", candidate.lower()) is not None


def uses_name(device: Device, wanted: str) -> bool:
    """The device holds the wanted name or a ``-N`` of it (hostname or MagicDNS label)."""
    return name_matches(device.hostname, wanted) or name_matches(device.label, wanted)


def judge(device: Device, *, hostname: str, tags: Iterable[str], self_node_id: str | None) -> str | None:
    """Why ``device`` must not be deleted as a stale copy of this node, or None when it
    may: offline, not this node, the same hostname (the MagicDNS name may be name-N),
    exactly this node's tags."""
    if self_node_id and device.node_id == self_node_id:
        return "this node"
    if device.connected:
        return "online (connected to the control server)"
    # The control server adds -N to the MagicDNS name only; a device whose own hostname
    # is `name-2` is another machine that chose that name, never a copy of this node.
    if device.hostname.lower() != hostname.lower():
        return f"another hostname ({device.hostname})"
    if set(device.tags) != set(tags):
        return f"other tags ({', '.join(sorted(device.tags)) or 'none'})"
    return None


def stale_copies(
    devices: Sequence[Device], *, hostname: str, tags: Iterable[str], self_node_id: str | None
) -> tuple[list[Device], list[tuple[Device, str]]]:
    """(stale copies that may be deleted, other devices using the name with the reason they stay)."""
    wanted_tags = tuple(tags)
    stale: list[Device] = []
    kept: list[tuple[Device, str]] = []
    for d in devices:
        if not uses_name(d, hostname):
            continue
        why = judge(d, hostname=hostname, tags=wanted_tags, self_node_id=self_node_id)
        if why is None:
            stale.append(d)
        else:
            kept.append((d, why))
    return stale, kept


def describe_device(d: Device) -> str:
    return f"{d.name or d.hostname} (node {d.node_id}, last seen {d.last_seen or 'unknown'})"


# --- keys --------------------------------------------------------------------


def key_description(container: str) -> str:
    """At most 50 characters of letters, digits, spaces and hyphens (the API's rule)."""
    text = re.sub(r"[^A-Za-z0-9 -]+", "-", f"devc-tasks {container}")
    text = re.sub(r"-{2,}", "-", text).strip(" -")
    return text[:50].rstrip(" -")


def key_request(*, tags: Sequence[str], ephemeral: bool, expiry_seconds: int, description: str) -> dict[str, Any]:
    """Body of ``POST /api/v2/tailnet/{tailnet}/keys``: single use, pre-authorized."""
    return {
        "capabilities": {
            "devices": {
                "create": {
                    "reusable": False,
                    "ephemeral": ephemeral,
                    "preauthorized": True,
                    "tags": list(tags),
                }
            }
        },
        "expirySeconds": int(expiry_seconds),
        "description": description,
    }


CLOCK_SKEW = timedelta(seconds=60)
"""How far the API's clock may be behind ours when we look for a key created "since" a request."""


def unanswered_mint(key: Mapping[str, Any], *, description: str, since: datetime) -> bool:
    """A key (``GET .../keys/{id}``) that a create request left unanswered may have made: our
    description, still valid, created at or after the request (less ``CLOCK_SKEW``). Another
    key of the tailnet, one of ours that is used or deleted, or an older one is never it."""
    if key.get("description") != description or key.get("invalid") is True:
        return False
    created = key.get("created")
    if not isinstance(created, str):
        return False
    try:
        when = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return False
    if when.tzinfo is None:
        return False
    return when >= since - CLOCK_SKEW
