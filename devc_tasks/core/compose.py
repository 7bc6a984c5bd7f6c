"""The container settings Tailscale needs: render them, and check a configuration for them.

``tailscaled`` needs a real TUN device (``/dev/net/tun``), the ``NET_ADMIN``
and ``NET_RAW`` capabilities, and a persistent ``/var/lib/tailscale`` (else
the node's identity dies with the container and every recreate adds a new
node to the tailnet). A compose-based devcontainer gets them from a compose
override file added as the last ``dockerComposeFile`` entry; an image- or
Dockerfile-based one from ``runArgs`` and ``mounts`` in devcontainer.json.

``render`` produces that text. ``check`` reads the *effective* configuration
(what compose would run after merging every file, not what one file says)
and reports each requirement with what it found and the exact lines that fix
it. The effective compose configuration comes from ``docker compose config``
when the CLI is installed (it needs no engine), so interpolation, ``extends``
and the merge rules are compose's own; without it we merge the files
ourselves with compose's rules for the few keys we read. Nothing here edits
devcontainer.json or the user's compose files.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devc_tasks.core.devcontainer import DevcontainerConfig, load_yaml, read_config_text, read_dotenv
from devc_tasks.core.errors import ConfigError, UsageError
from devc_tasks.core.paths import STATE_DIR

__all__ = [
    "OVERRIDE_FILENAME",
    "STATE_DIR",
    "STATE_VOLUME",
    "TUN_DEVICE",
    "REQUIREMENT_KEYS",
    "Requirement",
    "render",
    "fix_text",
    "check",
    "default_override_path",
    "compose_config_argv",
    "docker_compose_available",
    "write_override",
]

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

_IMAGE_MOUNT = f"source={_IMAGE_STATE_SOURCE},target={STATE_DIR},type=volume"
_CAPS = ("NET_ADMIN", "NET_RAW")

REQUIREMENT_KEYS: tuple[str, ...] = ("tun-device", "cap-net-admin", "cap-net-raw", "state-volume")
"""The order in which ``check`` reports requirements."""

_DESCRIPTIONS: dict[str, str] = {
    "tun-device": f"the TUN device {TUN_DEVICE}",
    "cap-net-admin": "the NET_ADMIN capability",
    "cap-net-raw": "the NET_RAW capability",
    "state-volume": f"a persistent volume at {STATE_DIR} (the node's identity)",
}

_COMMAND_TIMEOUT = 60.0
"""``docker compose config`` reads local files only; a minute means something is stuck."""


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
class _Mount:
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
        return _norm_target(self.target)


@dataclass(frozen=True, kw_only=True)
class _Device:
    source: str
    target: str

    def __str__(self) -> str:
        return self.source if self.source == self.target else f"{self.source}:{self.target}"


@dataclass(frozen=True, kw_only=True)
class _Effective:
    """What the container will get, whichever file or argument it came from."""

    devices: tuple[_Device, ...]
    cap_add: tuple[str, ...]
    privileged: bool
    mounts: tuple[_Mount, ...]


def _norm_target(path: str) -> str:
    """Container paths compare without a trailing slash (compose drops it too)."""
    stripped = path.rstrip("/")
    return stripped or "/"


def _norm_cap(cap: str) -> str:
    """Docker accepts ``net_admin`` and ``CAP_NET_ADMIN`` for ``NET_ADMIN``."""
    return cap.strip().upper().removeprefix("CAP_")


def _parse_device(spec: str) -> _Device:
    """``src[:dst[:perms]]``, the form compose and ``docker run --device`` share."""
    parts = spec.strip().split(":")
    source = parts[0]
    target = parts[1] if len(parts) > 1 and parts[1].startswith("/") else source
    return _Device(source=source, target=_norm_target(target))


def _is_host_path(source: str) -> bool:
    """In short volume syntax a source that looks like a path is a bind mount, else a volume name."""
    return source.startswith(("/", ".", "~")) or re.match(r"^[A-Za-z]:[\\/]", source) is not None


def _parse_short_volume(spec: str) -> _Mount:
    """``target``, ``source:target`` or ``source:target:mode`` (compose ``volumes``, ``docker -v``)."""
    parts = spec.split(":")
    if re.match(r"^[A-Za-z]:[\\/]", spec):  # a Windows host path: C:\x:/target
        parts = [parts[0] + ":" + parts[1], *parts[2:]]
    if len(parts) == 1:
        return _Mount(kind="volume", source=None, target=_norm_target(parts[0]))
    source, target = parts[0], parts[1]
    kind = "bind" if _is_host_path(source) else "volume"
    read_only = len(parts) > 2 and "ro" in parts[2].split(",")
    # compose cleans short-syntax targets but keeps long-syntax ones as written
    return _Mount(kind=kind, source=source or None, target=_norm_target(target), read_only=read_only)


def _parse_mount_option(spec: str) -> _Mount | None:
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
    return _Mount(kind=fields.get("type", "volume").lower(), source=source, target=target, read_only=read_only)


def _mount_from_long(entry: Mapping[str, Any], where: str) -> _Mount:
    """A long-syntax compose volume ``{type, source, target}`` (``docker compose config`` prints only these)."""
    target = entry.get("target")
    if not isinstance(target, str) or not target:
        raise ConfigError(f"{where}: a volume without a target", fix=f"Fix {where}")
    source = entry.get("source")
    kind = entry.get("type", "volume")
    return _Mount(
        kind=str(kind).lower(),
        source=source if isinstance(source, str) and source else None,
        target=target,
        read_only=entry.get("read_only") is True,
    )


def _state_mounts(mounts: Iterable[_Mount]) -> list[_Mount]:
    """The mounts that hold ``STATE_DIR``: those at it, else the deepest ones above it.

    More than one at the same path is a configuration docker refuses to
    start ("Duplicate mount point"); the caller reports it.
    """
    best: list[_Mount] = []
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


def _describe_mount(mount: _Mount) -> tuple[bool, str]:
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


def _assess(effective: _Effective, fixes: Mapping[str, str]) -> list[Requirement]:
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

    caps = {_norm_cap(c) for c in effective.cap_add}
    cap_list = ", ".join(effective.cap_add)
    for cap in _CAPS:
        key = f"cap-{cap.lower().replace('_', '-')}"
        if effective.privileged and not (cap in caps or "ALL" in caps):
            results[key] = (True, "privileged: true (every capability)")
        else:
            results[key] = (cap in caps or "ALL" in caps, f"cap_add: [{cap_list}]")

    mounts = _state_mounts(effective.mounts)
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


# --- rendering ------------------------------------------------------------------------------------


def _require_service(config: DevcontainerConfig) -> str:
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
    *, devices: bool = True, caps: Sequence[str] = _CAPS, volume: bool = True
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


def _compose_fixes(service: str) -> dict[str, str]:
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


def _json_fix(key: str, values: Sequence[str]) -> str:
    return f'"{key}": {json.dumps(list(values))}'


def _image_fixes(state_mounts: Sequence[_Mount]) -> dict[str, str]:
    volume_fix = _json_fix("mounts", [_IMAGE_MOUNT])
    if state_mounts and state_mounts[0].path == STATE_DIR:
        # Docker refuses two mounts at one target, so the old one has to go.
        volume_fix = f"replace the mount at {STATE_DIR} in devcontainer.json with\n{volume_fix}"
    return {
        "tun-device": _json_fix("runArgs", [f"--device={TUN_DEVICE}"]),
        "cap-net-admin": _json_fix("runArgs", ["--cap-add=NET_ADMIN"]),
        "cap-net-raw": _json_fix("runArgs", ["--cap-add=NET_RAW"]),
        "state-volume": volume_fix,
    }


def fix_text(keys: Sequence[str], *, kind: str | None = None, service: str | None = None) -> str:
    """The lines that add these requirements, in the syntax of the config ``kind``
    ("compose" or "image"; both when unknown). One text for `up`, `doctor` and `state`."""
    caps = tuple(cap for cap in _CAPS if f"cap-{cap.lower().replace('_', '-')}" in keys)
    compose = _yaml(
        _compose_doc(
            service or "<service>",
            _compose_service_settings(devices="tun-device" in keys, caps=caps, volume="state-volume" in keys),
        )
    )
    image_parts = []
    run_args = ([f"--device={TUN_DEVICE}"] if "tun-device" in keys else []) + [f"--cap-add={c}" for c in caps]
    if run_args:
        image_parts.append(_json_fix("runArgs", run_args))
    if "state-volume" in keys:
        image_parts.append(_json_fix("mounts", [_IMAGE_MOUNT]))
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
        service = _require_service(config)
        header = (
            "# Generated by devc-tasks (inv tailscale.compose): what Tailscale needs in the devcontainer.\n"
            "# Add this file as the last entry of dockerComposeFile in devcontainer.json.\n"
        )
        return header + _yaml(_compose_doc(service, _compose_service_settings()))
    snippet = {
        "runArgs": [f"--device={TUN_DEVICE}", *(f"--cap-add={cap}" for cap in _CAPS)],
        "mounts": [_IMAGE_MOUNT],
    }
    return json.dumps(snippet, indent=2) + "\n"


def default_override_path(config: DevcontainerConfig) -> Path:
    """Where the override goes by default: next to the first compose file, the compose project directory."""
    if not config.compose_files:
        raise ConfigError(
            f"{config.path} is not compose-based (no dockerComposeFile)",
            fix="Add the runArgs and mounts entries that `inv tailscale.compose` prints to devcontainer.json",
        )
    return config.compose_files[0].parent / OVERRIDE_FILENAME


def write_override(path: Path, text: str, *, force: bool) -> None:
    """Write the rendered override; an existing file is someone's work, so only ``force`` replaces it."""
    try:
        with path.open("w" if force else "x", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
    except FileExistsError as exc:
        raise UsageError(
            f"{path} already exists",
            fix="Pass --force to overwrite it, or write the override somewhere else",
        ) from exc
    except OSError as exc:
        raise ConfigError(
            f"cannot write {path}: {exc}", fix=f"Check that {path.parent} exists and is writable"
        ) from exc


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


def _image_effective(config: DevcontainerConfig) -> _Effective:
    devices: list[_Device] = []
    caps: list[str] = []
    mounts: list[_Mount] = []
    privileged = False
    for name, value in _run_arg_options(config.run_args):
        if name == "--privileged":
            privileged = value is None or value.lower() == "true"
        elif value is None:
            continue
        elif name == "--device":
            devices.append(_parse_device(value))
        elif name == "--cap-add":
            caps.append(value)
        elif name in ("-v", "--volume"):
            mounts.append(_parse_short_volume(value))
        elif name == "--mount":
            if (mount := _parse_mount_option(value)) is not None:
                mounts.append(mount)
    for spec in config.mounts:
        if (mount := _parse_mount_option(spec)) is not None:
            mounts.append(mount)
    return _Effective(devices=tuple(devices), cap_add=tuple(caps), privileged=privileged, mounts=tuple(mounts))


# --- compose: docker compose config ------------------------------------------------------------------


def _find_docker(environ: Mapping[str, str]) -> str | None:
    return shutil.which("docker", path=environ.get("PATH", os.defpath))


def docker_compose_available(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether ``docker compose`` runs here (``docker compose version`` succeeds); no engine needed."""
    docker = _find_docker(environ)
    if docker is None:
        return False
    try:
        result = subprocess.run(
            [docker, "compose", "version"],
            env=dict(environ),
            capture_output=True,
            timeout=15,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def compose_config_argv(docker: str, compose_files: Sequence[Path]) -> list[str]:
    """The ``docker compose config`` command over ``compose_files``, in order, as the CLI runs them.

    The project directory is the first file's folder, as for the devcontainer
    CLI, so relative paths and ``.env`` resolve the same way.
    """
    argv = [docker, "compose"]
    for compose_file in compose_files:
        argv += ["-f", str(compose_file)]
    argv += ["--project-directory", str(compose_files[0].parent), "config", "--format", "json"]
    return argv


def _docker_config(config: DevcontainerConfig, environ: Mapping[str, str]) -> dict[str, Any]:
    docker = _find_docker(environ)
    if docker is None:
        raise ConfigError("docker is not installed", fix="Install the Docker CLI with the compose plugin")
    argv = compose_config_argv(docker, config.compose_files)
    try:
        result = subprocess.run(
            argv, env=dict(environ), capture_output=True, text=True, timeout=_COMMAND_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise ConfigError(
            f"`docker compose config` did not finish within {_COMMAND_TIMEOUT:.0f} s",
            fix="Run `docker compose config` by hand over the files devcontainer.json lists to see why",
        ) from exc
    except OSError as exc:
        raise ConfigError(f"cannot run docker compose: {exc}") from exc
    if result.returncode != 0:
        files = ", ".join(str(f) for f in config.compose_files)
        raise ConfigError(
            f"docker compose rejects the compose files ({files}): {result.stderr.strip()}",
            fix="Fix the compose files that devcontainer.json lists in dockerComposeFile",
        )
    try:
        data = json.loads(result.stdout)
    except ValueError as exc:
        raise ConfigError(f"`docker compose config` printed something that is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError("`docker compose config` printed JSON that is not an object")
    return data


def _service_of(data: Mapping[str, Any], config: DevcontainerConfig, service: str) -> Mapping[str, Any]:
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


def _effective_from_service(settings: Mapping[str, Any], where: str) -> _Effective:
    """Normalize a merged service: devices and volumes as strings or objects, whatever the compose version."""
    devices: list[_Device] = []
    for entry in _as_list(settings.get("devices"), f"{where}: devices"):
        if isinstance(entry, str):
            devices.append(_parse_device(entry))
        elif isinstance(entry, dict) and isinstance(entry.get("source"), str):
            source = entry["source"]
            target = entry["target"] if isinstance(entry.get("target"), str) else source
            devices.append(_Device(source=source, target=_norm_target(target)))
    mounts: list[_Mount] = []
    for entry in _as_list(settings.get("volumes"), f"{where}: volumes"):
        if isinstance(entry, str):
            mounts.append(_parse_short_volume(entry))
        elif isinstance(entry, dict):
            mounts.append(_mount_from_long(entry, where))
    privileged = settings.get("privileged")
    if isinstance(privileged, str):
        privileged = privileged.strip().lower() in ("true", "yes", "1")
    return _Effective(
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


def _interpolate_tree(value: Any, env: Mapping[str, str], where: str) -> Any:
    if isinstance(value, str):
        return _interpolate(value, env, where)
    if isinstance(value, list):
        return [_interpolate_tree(v, env, where) for v in value]
    if isinstance(value, dict):
        return {k: _interpolate_tree(v, env, where) for k, v in value.items()}
    return value


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        text = read_config_text(path)
    except FileNotFoundError as exc:
        raise ConfigError(
            f"compose file {path} does not exist", fix="Fix dockerComposeFile in devcontainer.json"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read compose file {path}: {exc}", fix=f"Check {path}") from exc
    data = load_yaml(text, source=f"compose file {path}", fix=f"Fix {path}")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"compose file {path} must hold a mapping at the top level", fix=f"Fix {path}")
    return data


def _resolve_bind(mount: _Mount, project_dir: Path, env: Mapping[str, str]) -> _Mount:
    """Relative and ``~`` bind sources become absolute, as compose prints them (relative to the project)."""
    if mount.kind != "bind" or not mount.source:
        return mount
    source = mount.source
    if source.startswith("~"):
        home = env.get("HOME") or str(Path.home())
        source = home + source[1:]
    elif not os.path.isabs(source):
        source = os.path.normpath(project_dir / source)
    return _Mount(kind=mount.kind, source=source, target=mount.target)


def _own_merge(config: DevcontainerConfig, service: str, environ: Mapping[str, str]) -> _Effective:
    """Merge the compose files with compose's rules for the keys we read.

    ``devices`` and ``cap_add`` are unions (devices keyed by target), service
    ``volumes`` merge by target with the later file winning, top-level
    ``volumes`` merge by key, ``privileged`` is replaced. ``extends`` and
    ``include`` are not followed: that is what ``docker compose config`` is for.
    """
    project_dir = config.compose_files[0].parent
    env = {**read_dotenv(project_dir / ".env"), **environ}
    devices: dict[str, _Device] = {}
    caps: dict[str, str] = {}
    mounts: dict[str, _Mount] = {}
    declared: set[str] = set()
    privileged = False
    found = False
    known: set[str] = set()
    for path in config.compose_files:
        data = _interpolate_tree(_load_yaml(path), env, str(path))
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
        part = _effective_from_service(settings, f"compose file {path}")
        for device in part.devices:
            devices[device.target] = device
        for cap in part.cap_add:
            caps.setdefault(_norm_cap(cap), cap)
        for mount in part.mounts:
            mounts[mount.target] = _resolve_bind(mount, project_dir, env)
        if "privileged" in settings:
            privileged = part.privileged
    if not found:
        files = ", ".join(str(f) for f in config.compose_files)
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
    return _Effective(
        devices=tuple(devices.values()),
        cap_add=tuple(caps.values()),
        privileged=privileged,
        mounts=tuple(mounts.values()),
    )


# --- check ----------------------------------------------------------------------------------------------


def check(
    config: DevcontainerConfig,
    environ: Mapping[str, str] = os.environ,
    *,
    use_docker: bool | None = None,
) -> list[Requirement]:
    """Each requirement, judged from the effective configuration, with what was seen and its fix.

    Compose-based configs are read through ``docker compose config`` when
    ``use_docker`` is true, or None and ``docker compose version`` works;
    otherwise through our own merger. ``environ`` is the environment compose
    interpolates from. Image-based configs are read from ``runArgs`` and
    ``mounts``. Raises ``ConfigError`` when a compose file cannot be read or
    the service is not in them.
    """
    if not config.is_compose:
        effective = _image_effective(config)
        return _assess(effective, _image_fixes(_state_mounts(effective.mounts)))
    service = _require_service(config)
    for compose_file in config.compose_files:
        if not compose_file.is_file():
            raise ConfigError(
                f"compose file {compose_file} does not exist", fix="Fix dockerComposeFile in devcontainer.json"
            )
    if use_docker is None:
        use_docker = docker_compose_available(environ)
    if use_docker:
        data = _docker_config(config, environ)
        effective = _effective_from_service(_service_of(data, config, service), "docker compose config")
    else:
        effective = _own_merge(config, service, environ)
    return _assess(effective, _compose_fixes(service))
