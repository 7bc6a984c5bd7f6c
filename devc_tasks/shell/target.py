"""Resolving the selectors every task takes into what it acts on.

Options resolve in one place: the task's flags are parsed into a frozen
``Selectors``, and ``resolve`` turns them into a ``Target``: the workspace and
its devcontainer.json (when there is one), the engine, the container and the
executor. ``--local`` skips the engine and runs on this machine.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from devc_tasks.core.container_choice import LABEL_CONFIG_FILE, LABEL_LOCAL_FOLDER, Found
from devc_tasks.core.errors import AmbiguousContainer, ConfigError, ContainerNotFound, ContainerNotRunning, UsageError
from devc_tasks.shell.discovery import logical_cwd
from devc_tasks.shell.engine import Engine
from devc_tasks.shell.executors import Executor, LocalExecutor

if TYPE_CHECKING:
    from devc_tasks.core.devcontainer import DevcontainerConfig
    from devc_tasks.core.hostname import HostnameChoice

__all__ = ["Selectors", "Target", "resolve", "resolve_workspace", "wanted_hostname"]


@dataclass(frozen=True, kw_only=True)
class Selectors:
    container: str | None = None
    workspace: str | None = None
    host: str | None = None
    context: str | None = None
    local: bool = False

    def validate(self) -> None:
        if self.local and (self.container or self.host or self.context):
            raise UsageError("--local runs here, inside the container: it takes no --container, --host or --context")


@dataclass(frozen=True, kw_only=True)
class Target:
    workspace: Path | None
    config: DevcontainerConfig | None  # devcontainer.DevcontainerConfig
    engine: Engine | None
    found: Found | None
    executor: Executor | None  # None only from resolve(optional=True) without a container

    @property
    def label(self) -> str:
        return self.found.container.name if self.found else "this machine"


def resolve_workspace(sel: Selectors, environ: Mapping[str, str] = os.environ) -> tuple[Path | None, DevcontainerConfig | None]:
    """The workspace folder (``--workspace``, else the nearest upward with a config) and its config."""
    from devc_tasks.shell import config_files

    if sel.workspace:
        ws = Path(sel.workspace).expanduser()
        if not ws.is_absolute():
            ws = logical_cwd(environ) / ws
        ws = Path(os.path.normpath(ws))
        if not ws.is_dir():
            raise UsageError(f"--workspace {sel.workspace}: no such folder")
    else:
        found = config_files.find_workspace(logical_cwd(environ))
        if found is None:
            return None, None
        ws = found
    if config_files.find_config(ws) is None:
        return ws, None
    config = config_files.load_config(ws)
    config_files.check_compose_files(config)  # a broken one is a config error (3), not "no container" (11)
    return ws, config


def workspace_from_labels(labels: Mapping[str, str]) -> tuple[Path | None, DevcontainerConfig | None]:
    """The workspace and config the devcontainer CLI recorded on a container, when they
    are readable here: `--container` then names the same node as running from the workspace."""
    from devc_tasks.shell import config_files

    folder = labels.get(LABEL_LOCAL_FOLDER)
    if not folder or not Path(folder).is_dir():
        return None, None
    ws = Path(folder)
    config_file = labels.get(LABEL_CONFIG_FILE)
    try:
        if config_file and Path(config_file).is_file():
            return ws, config_files.load_config(ws, Path(config_file))
        return ws, (config_files.load_config(ws) if config_files.find_config(ws) else None)
    except ConfigError:
        return ws, None


def find(engine: Engine, sel: Selectors, workspace: Path | None, config: DevcontainerConfig | None, environ: Mapping[str, str], *, allow_stopped: bool = False) -> Found:
    """The container the selectors and the workspace's configuration name."""
    from devc_tasks.shell import config_files
    from devc_tasks.shell.discovery import find_container

    project = service = None
    if config is not None and config.is_compose:
        try:
            project = config_files.compose_project_name(config, environ)
        except ConfigError:
            project = None
        service = config.service
    return find_container(
        engine,
        container=sel.container,
        workspace=workspace,
        config_path=config.path if config is not None else None,
        compose_project=project,
        compose_service=service,
        allow_stopped=allow_stopped,
    )


def resolve(sel: Selectors, environ: Mapping[str, str] = os.environ, *, allow_stopped: bool = False, optional: bool = False) -> Target:
    """Workspace, engine, container and executor; ``optional`` tolerates a missing container
    (``hostname`` only needs the engine) and leaves ``found`` and ``executor`` None."""
    from devc_tasks.shell.discovery import executor_for
    from devc_tasks.shell.engine import open_engine

    sel.validate()
    workspace, config = resolve_workspace(sel, environ) if not sel.container or sel.workspace else (None, None)
    if sel.local:
        return Target(workspace=workspace, config=config, engine=None, found=None, executor=LocalExecutor())
    engine = open_engine(host=sel.host, context=sel.context, environ=environ)
    try:
        found = find(engine, sel, workspace, config, environ, allow_stopped=allow_stopped)
    except (ContainerNotFound, AmbiguousContainer, ContainerNotRunning):
        if not optional:
            raise
        return Target(workspace=workspace, config=config, engine=engine, found=None, executor=None)
    if sel.container and not sel.workspace:
        workspace, config = workspace_from_labels(found.container.labels)
    return Target(workspace=workspace, config=config, engine=engine, found=found, executor=executor_for(engine, found))


def wanted_hostname(target: Target, flag: str | None, environ: Mapping[str, str] = os.environ) -> HostnameChoice:
    """The node name `up` would use, with where each part came from."""
    from devc_tasks.core.hostname import choose_hostname

    container_env = target.executor.env() if target.engine is not None and target.executor is not None else {}
    if target.engine is not None:
        host, host_source = target.engine.host_name()
    else:
        host = environ.get("DEVC_HOST_NAME", "")
        host_source = "DEVC_HOST_NAME" if host else "unknown (inside the container)"
        if not host and not (flag or environ.get("TAILSCALE_HOSTNAME")):
            raise UsageError(
                "inside the container (--local) the name of the machine that runs it is unknown",
                fix='Pass --hostname, or set TAILSCALE_HOSTNAME or DEVC_HOST_NAME (e.g. devcontainer.json "containerEnv": {"DEVC_HOST_NAME": "${localEnv:HOSTNAME}"}).',
            )
    config = target.config
    return choose_hostname(
        flag=flag,
        host_env=environ.get("TAILSCALE_HOSTNAME"),
        container_env=container_env.get("TAILSCALE_HOSTNAME"),
        project_name=config.name if config is not None else None,
        workspace_name=target.workspace.name if target.workspace else None,
        engine_host=host,
        engine_host_source=host_source,
    )
