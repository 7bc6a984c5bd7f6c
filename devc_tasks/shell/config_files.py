"""Reading the devcontainer configuration from disk the way the devcontainer CLI does:
its lookup order for devcontainer.json, the compose files and ``.env`` it names,
and compose's project naming. Every read is bounded (``MAX_CONFIG_BYTES``); the
parsing is ``core.devcontainer`` and ``core.yaml_bounded``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devc_tasks.core.devcontainer import CONFIG_CANDIDATES, DevcontainerConfig, config_from_dict, parse_jsonc
from devc_tasks.core.errors import ConfigError
from devc_tasks.core.yaml_bounded import load_yaml

__all__ = ["read_dotenv", "find_workspace", "find_config", "load_config", "compose_project_name", "check_compose_files"]

MAX_CONFIG_BYTES = 16 * 1024 * 1024
"""The most a devcontainer.json, compose or .env file may hold: far past any real one."""



def absolute_path(path: Path) -> Path:
    """Absolute (from the current directory) and lexically normalized, symlinks kept (as
    the CLI's labels record it)."""
    return Path(os.path.abspath(path))

def read_config_text(path: Path, limit: int = MAX_CONFIG_BYTES) -> str:
    """A configuration file's text, read only from a regular file and at most ``limit`` bytes:
    a FIFO would hang the read and ``/dev/zero`` would fill memory. Raises ``OSError`` (or
    ``UnicodeDecodeError``) as ``Path.read_text`` does, for the callers' messages."""
    import errno
    import stat

    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file (a FIFO or a device)", str(path))
        data = f.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than {limit} bytes", str(path))
    return data.decode("utf-8")

_PROJECT_NAME_DROP = re.compile(r"[^-_a-z0-9]")
_WORKSPACE_FIX = "Pass --workspace with the folder that holds the devcontainer configuration"


def _is_file(path: Path) -> bool:
    """``Path.is_file``, but a folder we may not look into (EACCES) is a ``ConfigError``
    that names it, not a traceback."""
    try:
        return path.is_file()
    except OSError as exc:
        raise ConfigError(
            f"cannot look for a devcontainer configuration at {path}: {exc.strerror or exc}",
            fix=f"Check the permissions of {path.parent} (e.g. `ls -ld {path.parent}`), or pass --workspace DIR or --container NAME.",
        ) from None


def _candidates(folder: Path) -> list[Path]:
    """Every config file ``folder`` holds, in the CLI's lookup order."""
    found: list[Path] = []
    for pattern in CONFIG_CANDIDATES:
        if "*" in pattern:
            found.extend(p for p in sorted(folder.glob(pattern)) if _is_file(p))
        else:
            candidate = folder / pattern
            if _is_file(candidate):
                found.append(candidate)
    return found


def find_workspace(start: Path) -> Path | None:
    """The nearest folder upward from ``start`` (inclusive) that holds a devcontainer configuration.

    This lets tasks run from anywhere inside a project, like git does.
    """
    here = absolute_path(start)
    if not here.is_dir():
        here = here.parent
    for folder in (here, *here.parents):
        if _candidates(folder):
            return folder
    return None


def find_config(workspace: Path) -> Path | None:
    """The configuration file of ``workspace``, or None if it has none.

    The two top-level locations win outright. Several subfolder configurations
    and neither top-level file is ambiguous: the CLI would ask which one, so
    we raise ``ConfigError`` listing them rather than guess.
    """
    workspace = absolute_path(workspace)
    found = _candidates(workspace)
    if not found:
        return None
    top_level = [p for p in found if p.parent == workspace / ".devcontainer" or p.parent == workspace]
    if top_level or len(found) == 1:
        return found[0]
    listing = ", ".join(str(p.relative_to(workspace)) for p in found)
    raise ConfigError(
        f"{workspace} has several devcontainer configurations: {listing}",
        fix=(
            "Keep one of them (or add .devcontainer/devcontainer.json), "
            "or name the container with --container"
        ),
    )


def load_config(workspace: Path, config_path: Path | None = None) -> DevcontainerConfig:
    """Read the workspace's devcontainer.json (or ``config_path``), raising ``ConfigError`` if we cannot."""
    workspace = absolute_path(workspace)
    if config_path is None:
        found = find_config(workspace)
        if found is None:
            searched = ", ".join(CONFIG_CANDIDATES)
            raise ConfigError(
                f"no devcontainer configuration in {workspace} (looked for {searched})",
                fix=f"{_WORKSPACE_FIX}, or name the container with --container",
            )
        config_path = found
    path = absolute_path(config_path)
    try:
        text = read_config_text(path)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path} does not exist", fix=_WORKSPACE_FIX) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}", fix=f"Check {path}") from exc
    return config_from_dict(parse_jsonc(text, source=str(path)), path=path, workspace=workspace)


def read_dotenv(path: Path) -> dict[str, str]:
    """A ``.env`` file's plain ``KEY=VALUE`` lines (``export`` allowed, quotes stripped,
    trailing `` # comments`` dropped); empty when unreadable.

    Full dotenv syntax (interpolation, multi-line values) is out of scope: the
    values we read (a project name, compose variables for our keys) are short.
    """
    try:
        lines = read_config_text(path).splitlines()
    except (OSError, UnicodeDecodeError):
        return {}
    values: dict[str, str] = {}
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.removeprefix("export ").partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[name.strip()] = value
    return values


def _load_compose(compose_file: Path) -> Any:
    """One compose file as YAML data, or the ``ConfigError`` that says why it cannot be read."""
    try:
        text = read_config_text(compose_file)
    except FileNotFoundError as exc:
        raise ConfigError(
            f"compose file {compose_file} does not exist",
            fix="Fix dockerComposeFile in devcontainer.json",
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read compose file {compose_file}: {exc}", fix=f"Check {compose_file}") from exc
    return load_yaml(text, source=f"compose file {compose_file}", fix=f"Fix {compose_file}")


def check_compose_files(config: DevcontainerConfig) -> None:
    """Raise ``ConfigError`` when a compose file devcontainer.json names is missing or
    invalid, or names no service: the devcontainer CLI could not have started the
    container, so "no container" would send the user looking in the wrong place."""
    if not config.compose_files:
        return
    if not config.service:
        raise ConfigError(
            f"{config.path} names compose files but no 'service'",
            fix="Set 'service' in devcontainer.json to the compose service the devcontainer runs in",
        )
    for compose_file in config.compose_files:
        data = _load_compose(compose_file)
        if data is not None and not isinstance(data, dict):
            raise ConfigError(f"compose file {compose_file} must hold a mapping at the top level", fix=f"Fix {compose_file}")


def _compose_name(compose_files: tuple[Path, ...]) -> str | None:
    """The top-level ``name:`` compose would use: the last file that sets one wins (compose merges)."""
    name: str | None = None
    for compose_file in compose_files:
        data = _load_compose(compose_file)
        if isinstance(data, dict) and isinstance(data.get("name"), str) and data["name"].strip():
            name = data["name"].strip()
    return name


def compose_project_name(config: DevcontainerConfig, environ: Mapping[str, str]) -> str:
    """The compose project name the devcontainer CLI gives a compose-based devcontainer.

    We need it to find the containers (``com.docker.compose.project``) and the
    real name of the state volume (``<project>_<volume>``). The rules are the
    CLI's, in order: ``COMPOSE_PROJECT_NAME`` in the environment; in ``.env``
    of the folder of the first compose file (the CLI's working directory);
    the compose files' top-level ``name:``; ``<workspace>_devcontainer`` when
    the first compose file sits in ``<workspace>/.devcontainer``; else the
    name of that file's folder. The result is lower-cased with characters
    outside ``[-_a-z0-9]`` removed.
    """
    if not config.compose_files:
        raise ConfigError(
            f"{config.path} is not compose-based (no dockerComposeFile)",
            fix="Name the container with --container",
        )
    working_dir = config.compose_files[0].parent
    name = (
        environ.get("COMPOSE_PROJECT_NAME", "").strip()
        or read_dotenv(working_dir / ".env").get("COMPOSE_PROJECT_NAME")
        or _compose_name(config.compose_files)
    )
    if not name:
        if working_dir == config.workspace / ".devcontainer":
            name = f"{config.workspace.name}_devcontainer"
        else:
            name = working_dir.name
    project = _PROJECT_NAME_DROP.sub("", name.lower())
    if not project:
        raise ConfigError(
            f"the compose project name {name!r} has no usable characters",
            fix="Set COMPOSE_PROJECT_NAME to a name made of letters, digits, '-' and '_'",
        )
    return project
