"""Judging an effective container configuration against what Tailscale needs. Pure.

The effective settings (devices, capabilities, mounts, privileged) are read
from one compose service's settings or from an image config's ``runArgs`` and
``mounts``; ``assess`` reports each requirement with what it found and the
exact lines that fix it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from devc_tasks.core.compose_render import CAPS, IMAGE_MOUNT, TUN_DEVICE, json_fix
from devc_tasks.core.devcontainer import DevcontainerConfig
from devc_tasks.core.errors import ConfigError
from devc_tasks.core.paths import STATE_DIR

__all__ = ["REQUIREMENT_KEYS", "Requirement"]

REQUIREMENT_KEYS: tuple[str, ...] = ("tun-device", "cap-net-admin", "cap-net-raw", "state-volume")
"""The order in which ``check`` reports requirements."""

_DESCRIPTIONS: dict[str, str] = {
    "tun-device": f"the TUN device {TUN_DEVICE}",
    "cap-net-admin": "the NET_ADMIN capability",
    "cap-net-raw": "the NET_RAW capability",
    "state-volume": f"a persistent volume at {STATE_DIR} (the node's identity)",
}


@dataclass(frozen=True, kw_only=True)
class Requirement:
    """One thing Tailscale needs from the container, and whether the configuration gives it."""

    key: str
    """One of ``REQUIREMENT_KEYS``."""
    description: str
    """What is needed, for people: "the TUN device /dev/net/tun"."""
    present: bool
    seen: str
    """What the effective configuration has, so a user sees why it is missing."""
    fix: str
    """The exact lines to add, in the config kind's own syntax (compose YAML or devcontainer.json)."""


# --- the effective settings, the same shape for compose and runArgs -----------------------------


@dataclass(frozen=True, kw_only=True)
class Mount:
    kind: str
    """``volume``, ``bind``, ``tmpfs``, ... as compose and docker name mount types."""
    source: str | None
    """The volume name or host path; None for an anonymous volume or a tmpfs."""
    target: str
    """As compose keys it when merging: long syntax keeps ``/x/``, so it does not replace a ``/x`` mount."""
    read_only: bool = False

    @property
    def path(self) -> str:
        """The target as the container sees it (no trailing slash)."""
        return norm_target(self.target)


@dataclass(frozen=True, kw_only=True)
class Device:
    source: str
    target: str

    def __str__(self) -> str:
        return self.source if self.source == self.target else f"{self.source}:{self.target}"


@dataclass(frozen=True, kw_only=True)
class Effective:
    """What the container will get, whichever file or argument it came from."""

    devices: tuple[Device, ...]
    cap_add: tuple[str, ...]
    privileged: bool
    mounts: tuple[Mount, ...]


def norm_target(path: str) -> str:
    """Container paths compare without a trailing slash (compose drops it too)."""
    stripped = path.rstrip("/")
    return stripped or "/"


def norm_cap(cap: str) -> str:
    """Docker accepts ``net_admin`` and ``CAP_NET_ADMIN`` for ``NET_ADMIN``."""
    return cap.strip().upper().removeprefix("CAP_")


def parse_device(spec: str) -> Device:
    """``src[:dst[:perms]]``, the form compose and ``docker run --device`` share."""
    parts = spec.strip().split(":")
    source = parts[0]
    target = parts[1] if len(parts) > 1 and parts[1].startswith("/") else source
    return Device(source=source, target=norm_target(target))


def _is_host_path(source: str) -> bool:
    """In short volume syntax a source that looks like a path is a bind mount, else a volume name."""
    return source.startswith(("/", ".", "~")) or re.match(r"^[A-Za-z]:[\\/]", source) is not None


def parse_short_volume(spec: str) -> Mount:
    """``target``, ``source:target`` or ``source:target:mode`` (compose ``volumes``, ``docker -v``)."""
    parts = spec.split(":")
    if re.match(r"^[A-Za-z]:[\\/]", spec):  # a Windows host path: C:\x:/target
        parts = [parts[0] + ":" + parts[1], *parts[2:]]
    if len(parts) == 1:
        return Mount(kind="volume", source=None, target=norm_target(parts[0]))
    source, target = parts[0], parts[1]
    kind = "bind" if _is_host_path(source) else "volume"
    read_only = len(parts) > 2 and "ro" in parts[2].split(",")
    # compose cleans short-syntax targets but keeps long-syntax ones as written
    return Mount(kind=kind, source=source or None, target=norm_target(target), read_only=read_only)


def _parse_mount_option(spec: str) -> Mount | None:
    """``docker run --mount`` syntax, which devcontainer.json's ``mounts`` strings use too."""
    fields: dict[str, str] = {}
    for item in spec.split(","):
        name, sep, value = item.partition("=")
        fields[name.strip().lower()] = value.strip() if sep else "true"
    target = fields.get("target") or fields.get("destination") or fields.get("dst")
    if not target:
        return None
    source = fields.get("source") or fields.get("src") or None
    read_only = any(fields.get(k, "false").lower() in ("true", "1") for k in ("readonly", "ro"))
    return Mount(kind=fields.get("type", "volume").lower(), source=source, target=target, read_only=read_only)


def _mount_from_long(entry: Mapping[str, Any], where: str) -> Mount:
    """A long-syntax compose volume ``{type, source, target}`` (``docker compose config`` prints only these)."""
    target = entry.get("target")
    if not isinstance(target, str) or not target:
        raise ConfigError(f"{where}: a volume without a target", fix=f"Fix {where}")
    source = entry.get("source")
    kind = entry.get("type", "volume")
    return Mount(
        kind=str(kind).lower(),
        source=source if isinstance(source, str) and source else None,
        target=target,
        read_only=entry.get("read_only") is True,
    )


def state_mounts(mounts: Iterable[Mount]) -> list[Mount]:
    """The mounts that hold ``STATE_DIR``: those at it, else the deepest ones above it.

    More than one at the same path is a configuration docker refuses to
    start ("Duplicate mount point"); the caller reports it.
    """
    best: list[Mount] = []
    for mount in mounts:
        path = mount.path
        if not (path == STATE_DIR or STATE_DIR.startswith(path.rstrip("/") + "/")):
            continue
        if not best or len(path) > len(best[0].path):
            best = [mount]
        elif path == best[0].path:
            best.append(mount)
    return best


# --- assessing the effective settings --------------------------------------------------------------


def _describe_mount(mount: Mount) -> tuple[bool, str]:
    """Whether ``mount`` keeps the state across container recreation, and how to say what it is."""
    where = f"at {mount.path}" if mount.path == STATE_DIR else f"at {mount.path} (holds {STATE_DIR})"
    if mount.read_only:
        return False, f"read-only {mount.kind} mount {where}: tailscaled cannot save the node's identity"
    if mount.kind == "volume" and mount.source:
        return True, f"named volume {mount.source} {where}"
    if mount.kind == "volume":
        return False, f"anonymous volume {where}: it dies with the container"
    if mount.kind == "bind" and mount.source:
        return True, f"bind mount {mount.source} {where}"
    if mount.kind == "tmpfs":
        return False, f"tmpfs {where}: it is lost when the container stops"
    return False, f"{mount.kind} mount {where}: not a volume or a bind mount"


def assess(effective: Effective, fixes: Mapping[str, str]) -> list[Requirement]:
    """The four requirements, judged from the effective settings of either config kind."""
    results: dict[str, tuple[bool, str]] = {}

    devices = ", ".join(str(d) for d in effective.devices)
    has_tun = any(d.source == TUN_DEVICE and d.target == TUN_DEVICE for d in effective.devices)
    if has_tun:
        results["tun-device"] = (True, f"devices: [{devices}]")
    elif effective.privileged:
        results["tun-device"] = (True, "privileged: true (every host device)")
    else:
        results["tun-device"] = (False, f"devices: [{devices}]")

    caps = {norm_cap(c) for c in effective.cap_add}
    cap_list = ", ".join(effective.cap_add)
    for cap in CAPS:
        key = f"cap-{cap.lower().replace('_', '-')}"
        if effective.privileged and not (cap in caps or "ALL" in caps):
            results[key] = (True, "privileged: true (every capability)")
        else:
            results[key] = (cap in caps or "ALL" in caps, f"cap_add: [{cap_list}]")

    mounts = state_mounts(effective.mounts)
    if not mounts:
        results["state-volume"] = (
            False,
            f"nothing mounted at {STATE_DIR}: the node's identity dies with the container",
        )
    elif len(mounts) > 1:
        listing = "; ".join(_describe_mount(m)[1] for m in mounts)
        results["state-volume"] = (
            False,
            f"{len(mounts)} mounts at {mounts[0].path} ({listing}): docker refuses to start the container",
        )
    else:
        results["state-volume"] = _describe_mount(mounts[0])

    return [
        Requirement(
            key=key,
            description=_DESCRIPTIONS[key],
            present=results[key][0],
            seen=results[key][1],
            fix=fixes[key],
        )
        for key in REQUIREMENT_KEYS
    ]


def image_fixes(state_mounts: Sequence[Mount]) -> dict[str, str]:
    volume_fix = json_fix("mounts", [IMAGE_MOUNT])
    if state_mounts and state_mounts[0].path == STATE_DIR:
        # Docker refuses two mounts at one target, so the old one has to go.
        volume_fix = f"replace the mount at {STATE_DIR} in devcontainer.json with\n{volume_fix}"
    return {
        "tun-device": json_fix("runArgs", [f"--device={TUN_DEVICE}"]),
        "cap-net-admin": json_fix("runArgs", ["--cap-add=NET_ADMIN"]),
        "cap-net-raw": json_fix("runArgs", ["--cap-add=NET_RAW"]),
        "state-volume": volume_fix,
    }


# --- image-based: runArgs and mounts ---------------------------------------------------------------

_VALUE_OPTIONS = {"--device", "--cap-add", "--mount", "--volume", "-v"}


def _run_arg_options(run_args: Sequence[str]) -> list[tuple[str, str | None]]:
    """``(option, value)`` pairs from ``runArgs``, whichever way each option was spelled.

    ``--opt=value``, ``--opt value`` as two entries, and (leniently) as one
    entry with a space, which people write although docker would want two.
    """
    pairs: list[tuple[str, str | None]] = []
    args = list(run_args)
    index = 0
    while index < len(args):
        arg = args[index].strip()
        index += 1
        if "=" in arg and arg.startswith("-"):
            name, _, value = arg.partition("=")
            pairs.append((name, value))
            continue
        name, _, rest = arg.partition(" ")
        if name in _VALUE_OPTIONS:
            if rest.strip():
                pairs.append((name, rest.strip()))
            elif index < len(args):
                pairs.append((name, args[index].strip()))
                index += 1
            else:
                pairs.append((name, None))
        else:
            pairs.append((arg, None))
    return pairs


def image_effective(config: DevcontainerConfig) -> Effective:
    devices: list[Device] = []
    caps: list[str] = []
    mounts: list[Mount] = []
    privileged = False
    for name, value in _run_arg_options(config.run_args):
        if name == "--privileged":
            privileged = value is None or value.lower() == "true"
        elif value is None:
            continue
        elif name == "--device":
            devices.append(parse_device(value))
        elif name == "--cap-add":
            caps.append(value)
        elif name in ("-v", "--volume"):
            mounts.append(parse_short_volume(value))
        elif name == "--mount":
            if (mount := _parse_mount_option(value)) is not None:
                mounts.append(mount)
    for spec in config.mounts:
        if (mount := _parse_mount_option(spec)) is not None:
            mounts.append(mount)
    return Effective(devices=tuple(devices), cap_add=tuple(caps), privileged=privileged, mounts=tuple(mounts))


def service_of(data: Mapping[str, Any], config: DevcontainerConfig, service: str) -> Mapping[str, Any]:
    services = data.get("services") or {}
    if not isinstance(services, dict) or service not in services:
        known = ", ".join(sorted(services)) if isinstance(services, dict) and services else "none"
        files = ", ".join(str(f) for f in config.compose_files)
        raise ConfigError(
            f"service {service!r} is not in the compose files ({files}); services: {known}",
            fix="Set 'service' in devcontainer.json to one of the compose services",
        )
    settings = services[service]
    return settings if isinstance(settings, dict) else {}


def effective_from_service(settings: Mapping[str, Any], where: str) -> Effective:
    """Normalize a merged service: devices and volumes as strings or objects, whatever the compose version."""
    devices: list[Device] = []
    for entry in _as_list(settings.get("devices"), f"{where}: devices"):
        if isinstance(entry, str):
            devices.append(parse_device(entry))
        elif isinstance(entry, dict) and isinstance(entry.get("source"), str):
            source = entry["source"]
            target = entry["target"] if isinstance(entry.get("target"), str) else source
            devices.append(Device(source=source, target=norm_target(target)))
    mounts: list[Mount] = []
    for entry in _as_list(settings.get("volumes"), f"{where}: volumes"):
        if isinstance(entry, str):
            mounts.append(parse_short_volume(entry))
        elif isinstance(entry, dict):
            mounts.append(_mount_from_long(entry, where))
    privileged = settings.get("privileged")
    if isinstance(privileged, str):
        privileged = privileged.strip().lower() in ("true", "yes", "1")
    return Effective(
        devices=tuple(devices),
        cap_add=tuple(str(c) for c in _as_list(settings.get("cap_add"), f"{where}: cap_add")),
        privileged=bool(privileged),
        mounts=tuple(mounts),
    )


def _as_list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise ConfigError(f"{where} must be a list", fix=f"Fix {where.partition(':')[0]}")
