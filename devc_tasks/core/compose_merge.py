"""Our own compose merger, for when the ``docker compose`` CLI is not installed: compose's
interpolation and merge rules for the few keys we read. Pure: the shell reads the
files (``shell/compose.py``) and hands their documents here in order.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from devc_tasks.core.compose_check import Device, Effective, Mount, effective_from_service, norm_cap
from devc_tasks.core.errors import ConfigError

# --- compose: our own merger, when the docker CLI is not there ------------------------------------

_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


def _interpolate(text: str, env: Mapping[str, str], where: str) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}``, ``${VAR:+alt}`` and ``$$``."""

    def substitute(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("braced") or match.group("named")
        value = env.get(name)
        op, arg = match.group("op"), match.group("arg") or ""
        unset = value is None or (op is not None and op.startswith(":") and value == "")
        if op in ("-", ":-"):
            return arg if unset else str(value)
        if op in ("?", ":?"):
            if unset:
                raise ConfigError(f"{where}: required variable {name} is missing: {arg}", fix=f"Set {name}")
            return str(value)
        if op in ("+", ":+"):
            return "" if unset else arg
        return value or ""

    return _INTERPOLATION.sub(substitute, text)


def interpolate_tree(value: Any, env: Mapping[str, str], where: str) -> Any:
    if isinstance(value, str):
        return _interpolate(value, env, where)
    if isinstance(value, list):
        return [interpolate_tree(v, env, where) for v in value]
    if isinstance(value, dict):
        return {k: interpolate_tree(v, env, where) for k, v in value.items()}
    return value


def resolve_bind(mount: Mount, project_dir: Path, env: Mapping[str, str], home: str = "") -> Mount:
    """Relative and ``~`` bind sources become absolute, as compose prints them (relative to
    the project; ``~`` is HOME, else ``home``, the user's home folder the shell looked up)."""
    if mount.kind != "bind" or not mount.source:
        return mount
    source = mount.source
    if source.startswith("~"):
        source = (env.get("HOME") or home) + source[1:]
    elif not os.path.isabs(source):
        source = os.path.normpath(project_dir / source)
    return Mount(kind=mount.kind, source=source, target=mount.target)


def merge_service(
    documents: Iterable[tuple[Path, Any]], service: str, project_dir: Path, env: Mapping[str, str], compose_files: Sequence[Path], home: str = ""
) -> Effective:
    """Merge the compose files with compose's rules for the keys we read.

    ``devices`` and ``cap_add`` are unions (devices keyed by target), service
    ``volumes`` merge by target with the later file winning, top-level
    ``volumes`` merge by key, ``privileged`` is replaced. ``extends`` and
    ``include`` are not followed: that is what ``docker compose config`` is for.
    """
    devices: dict[str, Device] = {}
    caps: dict[str, str] = {}
    mounts: dict[str, Mount] = {}
    declared: set[str] = set()
    privileged = False
    found = False
    known: set[str] = set()
    for path, document in documents:
        data = interpolate_tree(document, env, str(path))
        top_volumes = data.get("volumes") or {}
        if isinstance(top_volumes, dict):
            declared.update(str(k) for k in top_volumes)
        services = data.get("services") or {}
        if not isinstance(services, dict):
            raise ConfigError(f"compose file {path}: 'services' must be a mapping", fix=f"Fix {path}")
        known.update(str(s) for s in services)
        if service not in services:
            continue
        found = True
        settings = services[service] if isinstance(services[service], dict) else {}
        part = effective_from_service(settings, f"compose file {path}")
        for device in part.devices:
            devices[device.target] = device
        for cap in part.cap_add:
            caps.setdefault(norm_cap(cap), cap)
        for mount in part.mounts:
            mounts[mount.target] = resolve_bind(mount, project_dir, env, home)
        if "privileged" in settings:
            privileged = part.privileged
    if not found:
        files = ", ".join(str(f) for f in compose_files)
        services = ", ".join(sorted(known)) or "none"
        raise ConfigError(
            f"service {service!r} is not in the compose files ({files}); services: {services}",
            fix="Set 'service' in devcontainer.json to one of the compose services",
        )
    for mount in mounts.values():
        if mount.kind == "volume" and mount.source and mount.source not in declared:
            # compose itself refuses this ("refers to undefined volume"); say so the same way
            raise ConfigError(
                f"service {service!r} refers to undefined volume {mount.source}",
                fix=f"Declare it under the top-level volumes: of a compose file:\nvolumes:\n  {mount.source}: {{}}",
            )
    return Effective(
        devices=tuple(devices.values()),
        cap_add=tuple(caps.values()),
        privileged=privileged,
        mounts=tuple(mounts.values()),
    )
