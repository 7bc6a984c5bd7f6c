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

import contextlib
import json
import os
import shutil
import stat
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from devc_tasks.core.compose_check import Effective, Requirement, assess, effective_from_service, image_effective, image_fixes, service_of, state_mounts
from devc_tasks.core.compose_merge import merge_service
from devc_tasks.core.compose_render import OVERRIDE_FILENAME, compose_fixes, require_service
from devc_tasks.core.devcontainer import DevcontainerConfig
from devc_tasks.core.errors import ConfigError, UsageError
from devc_tasks.core.yaml_bounded import load_yaml
from devc_tasks.shell.config_files import read_config_text, read_dotenv

__all__ = ["check", "default_override_path", "compose_config_argv", "docker_compose_available", "write_override"]


_COMMAND_TIMEOUT = 60.0
"""``docker compose config`` reads local files only; a minute means something is stuck."""


def default_override_path(config: DevcontainerConfig) -> Path:
    """Where the override goes by default: next to the first compose file, the compose project directory."""
    if not config.compose_files:
        raise ConfigError(
            f"{config.path} is not compose-based (no dockerComposeFile)",
            fix="Add the runArgs and mounts entries that `inv tailscale.compose` prints to devcontainer.json",
        )
    return config.compose_files[0].parent / OVERRIDE_FILENAME


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a file"


def write_override(path: Path, text: str, *, force: bool) -> None:
    """Write the rendered override; an existing file is someone's work, so only ``force`` replaces it.

    Only a regular file (or a symlink) is ever replaced: opening a FIFO to write waits for a reader
    forever, and a device is not an override. With ``force`` the text goes to a new file next to the
    target that is then renamed over it, so a symlink is replaced itself (never written through to
    wherever it points) and an interrupted write leaves the old file whole."""
    try:
        st: os.stat_result | None = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc}", fix=f"Check that {path.parent} exists and is readable") from exc
    if st is not None and not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        raise UsageError(f"{path} is {_kind(st.st_mode)}, not a regular file: --write writes a regular file", fix="Give --write a file name (new, or an existing file with --force) or a folder")
    try:
        if not force:
            with path.open("x", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
            return
        _replace(path, text, st)
    except FileExistsError as exc:
        raise UsageError(
            f"{path} already exists",
            fix="Pass --force to overwrite it, or write the override somewhere else",
        ) from exc
    except OSError as exc:
        raise ConfigError(
            f"cannot write {path}: {exc}", fix=f"Check that {path.parent} exists and is writable"
        ) from exc


def _replace(path: Path, text: str, old: os.stat_result | None) -> None:
    """Write ``text`` to a new file beside ``path`` and rename it over ``path`` (keeping a regular file's mode)."""
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        if old is not None and stat.S_ISREG(old.st_mode):
            mode = stat.S_IMODE(old.st_mode)
        else:
            umask = os.umask(0o022)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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


def _own_merge(config: DevcontainerConfig, service: str, environ: Mapping[str, str]) -> Effective:
    """Our own merger: each compose file read (bounded) as the merge asks for it, and
    interpolated from the project's .env under ``environ``."""
    project_dir = config.compose_files[0].parent
    env = {**read_dotenv(project_dir / ".env"), **environ}
    documents = ((path, _load_yaml(path)) for path in config.compose_files)  # lazy: read in merge order
    return merge_service(documents, service, project_dir, env, config.compose_files, home=str(Path.home()))


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
        effective = image_effective(config)
        return assess(effective, image_fixes(state_mounts(effective.mounts)))
    service = require_service(config)
    for compose_file in config.compose_files:
        if not compose_file.is_file():
            raise ConfigError(
                f"compose file {compose_file} does not exist", fix="Fix dockerComposeFile in devcontainer.json"
            )
    if use_docker is None:
        use_docker = docker_compose_available(environ)
    if use_docker:
        data = _docker_config(config, environ)
        effective = effective_from_service(service_of(data, config, service), "docker compose config")
    else:
        effective = _own_merge(config, service, environ)
    return assess(effective, compose_fixes(service))
