"""The container settings Tailscale needs, rendered: the compose override file and the
fix texts (compose lines or devcontainer.json ``runArgs``/``mounts``). Pure.

``tailscaled`` needs a real TUN device (``/dev/net/tun``), the ``NET_ADMIN``
and ``NET_RAW`` capabilities, and a persistent ``/var/lib/tailscale`` (else
the node's identity dies with the container and every recreate adds a new
node to the tailnet). A compose-based devcontainer gets them from a compose
override file added as the last ``dockerComposeFile`` entry; an image- or
Dockerfile-based one from ``runArgs`` and ``mounts`` in devcontainer.json.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from devc_tasks.core.devcontainer import DevcontainerConfig
from devc_tasks.core.errors import ConfigError
from devc_tasks.core.paths import STATE_DIR

__all__ = ["OVERRIDE_FILENAME", "STATE_VOLUME", "TUN_DEVICE", "render", "fix_text"]

OVERRIDE_FILENAME = "docker-compose.tailscale.yml"
"""Suggested name of the rendered override, next to the first compose file."""

TUN_DEVICE = "/dev/net/tun"
STATE_VOLUME = "tailscale-state"
"""The named volume for the state directory (compose prefixes it with the project name)."""

_IMAGE_STATE_SOURCE = f"{STATE_VOLUME}-${{devcontainerId}}"
"""Image-based volume names are global on the engine, so each devcontainer needs its own.

Without compose there is no project prefix: a plain ``tailscale-state``
would be shared by every image-based devcontainer on the engine, and two
containers running one node identity fight over it. The devcontainer CLI
replaces ``${devcontainerId}`` with an id that is stable across rebuilds.
"""

IMAGE_MOUNT = f"source={_IMAGE_STATE_SOURCE},target={STATE_DIR},type=volume"
CAPS = ("NET_ADMIN", "NET_RAW")


# --- rendering ------------------------------------------------------------------------------------


def require_service(config: DevcontainerConfig) -> str:
    if not config.service:
        raise ConfigError(
            f"{config.path} names compose files but no 'service'",
            fix="Set 'service' in devcontainer.json to the compose service the devcontainer runs in",
        )
    return config.service


def _yaml(data: Mapping[str, Any]) -> str:
    import yaml  # heavy; only compose rendering pays for it

    return str(yaml.safe_dump(dict(data), sort_keys=False, default_flow_style=False))


def _compose_service_settings(
    *, devices: bool = True, caps: Sequence[str] = CAPS, volume: bool = True
) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    if devices:
        settings["devices"] = [f"{TUN_DEVICE}:{TUN_DEVICE}"]
    if caps:
        settings["cap_add"] = list(caps)
    if volume:
        settings["volumes"] = [f"{STATE_VOLUME}:{STATE_DIR}"]
    return settings


def _compose_doc(service: str, settings: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {"services": {service: settings}}
    if "volumes" in settings:
        doc["volumes"] = {STATE_VOLUME: {}}
    return doc


def compose_fixes(service: str) -> dict[str, str]:
    return {
        "tun-device": _yaml(_compose_doc(service, _compose_service_settings(caps=(), volume=False))),
        "cap-net-admin": _yaml(
            _compose_doc(service, _compose_service_settings(devices=False, caps=("NET_ADMIN",), volume=False))
        ),
        "cap-net-raw": _yaml(
            _compose_doc(service, _compose_service_settings(devices=False, caps=("NET_RAW",), volume=False))
        ),
        "state-volume": _yaml(_compose_doc(service, _compose_service_settings(devices=False, caps=()))),
    }


def json_fix(key: str, values: Sequence[str]) -> str:
    return f'"{key}": {json.dumps(list(values))}'


def fix_text(keys: Sequence[str], *, kind: str | None = None, service: str | None = None) -> str:
    """The lines that add these requirements, in the syntax of the config ``kind``
    ("compose" or "image"; both when unknown). One text for `up`, `doctor` and `state`."""
    caps = tuple(cap for cap in CAPS if f"cap-{cap.lower().replace('_', '-')}" in keys)
    compose = _yaml(
        _compose_doc(
            service or "<service>",
            _compose_service_settings(devices="tun-device" in keys, caps=caps, volume="state-volume" in keys),
        )
    )
    image_parts = []
    run_args = ([f"--device={TUN_DEVICE}"] if "tun-device" in keys else []) + [f"--cap-add={c}" for c in caps]
    if run_args:
        image_parts.append(json_fix("runArgs", run_args))
    if "state-volume" in keys:
        image_parts.append(json_fix("mounts", [IMAGE_MOUNT]))
    image = "\n".join(image_parts)
    if kind == "compose":
        return f"In the compose file (service {service or '<service>'}):\n{compose}"
    if kind == "image":
        return f"In devcontainer.json:\n{image}"
    return f"Compose-based devcontainer, in the compose file:\n{compose}or, image/Dockerfile-based, in devcontainer.json:\n{image}"


def render(config: DevcontainerConfig) -> str:
    """What to add so that Tailscale works in ``config``'s container, in the config's own syntax.

    Compose-based: a complete override file for the devcontainer's service,
    meant as the *last* ``dockerComposeFile`` entry (compose merges devices
    and capabilities, and replaces a mount at the same target, so the
    override wins over an anonymous volume in an earlier file). Image-based:
    a JSON snippet with the ``runArgs`` and ``mounts`` entries to merge into
    devcontainer.json by hand, since we never edit it.
    """
    if config.is_compose:
        service = require_service(config)
        header = (
            "# Generated by devc-tasks (inv tailscale.compose): what Tailscale needs in the devcontainer.\n"
            "# Add this file as the last entry of dockerComposeFile in devcontainer.json.\n"
        )
        return header + _yaml(_compose_doc(service, _compose_service_settings()))
    snippet = {
        "runArgs": [f"--device={TUN_DEVICE}", *(f"--cap-add={cap}" for cap in CAPS)],
        "mounts": [IMAGE_MOUNT],
    }
    return json.dumps(snippet, indent=2) + "\n"
