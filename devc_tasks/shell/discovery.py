"""Finding the devcontainer on an Engine: list by labels, choose (``core.container_choice``),
and hand back an executor for it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devc_tasks.core.container_choice import (
    LABEL_COMPOSE_PROJECT,
    LABEL_COMPOSE_SERVICE,
    LABEL_CONFIG_FILE,
    LABEL_LOCAL_FOLDER,
    NAME_HINT,
    ContainerInfo,
    Found,
    choose_container,
    workspace_candidates,
)
from devc_tasks.core.errors import (
    ContainerNotFound,
)
from devc_tasks.shell.engine import Engine
from devc_tasks.shell.executors import DockerExecutor, sdk_call

__all__ = ["find_container"]

def container_info(c: Any) -> ContainerInfo:
    """A container from either shape: inspect (``State`` an object) or ``docker ps`` (sparse)."""
    attrs = c.attrs
    state = attrs.get("State")
    status = state.get("Status") if isinstance(state, dict) else state
    name = attrs.get("Name") or next(iter(attrs.get("Names") or []), "")
    labels = (attrs.get("Config") or {}).get("Labels") if "Config" in attrs else attrs.get("Labels")
    return ContainerInfo(id=c.id, name=str(name).lstrip("/"), status=str(status or "unknown"), labels=labels or {})


def list_containers(client: Any, labels: list[str]) -> list[ContainerInfo]:
    """One ``docker ps`` call (sparse: no inspect per container)."""
    found = sdk_call("docker ps", lambda: client.containers.list(all=True, sparse=True, filters={"label": labels}))
    return [container_info(c) for c in found]


def logical_cwd(environ: Mapping[str, str] = os.environ) -> Path:
    """The current directory as the shell spells it ($PWD), when that is where we are."""
    cwd = Path.cwd()
    pwd = environ.get("PWD")
    if pwd and os.path.isabs(pwd):
        try:
            if Path(pwd).resolve() == cwd.resolve():
                return Path(pwd)
        except OSError:
            pass
    return cwd


def find_container(
    engine: Engine,
    *,
    container: str | None,
    workspace: Path | None,
    config_path: Path | None,
    compose_project: str | None,
    compose_service: str | None,
    allow_stopped: bool = False,
) -> Found:
    """The design's discovery order: --container, devcontainer labels, compose project/service."""
    client = engine.client
    if container:
        # Docker's own rule for names (daemon/names: ``^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$``), ids and
        # their prefixes included; docker-py puts the value into the URL as is, so `../images`
        # would read GET /images/json.
        if not re.fullmatch(r"/?[A-Za-z0-9][A-Za-z0-9_.-]*", container):
            raise ContainerNotFound(f"no container named {container!r} on {engine.url}: that is no container name or id", fix="See `docker ps -a` for names and ids.")
        try:
            c = sdk_call(f"docker inspect {container}", lambda: client.containers.get(container))
        except ContainerNotFound:
            raise ContainerNotFound(f"no container named {container!r} on {engine.label}", fix="See `docker ps -a` for names and ids.") from None
        info = container_info(c)
        chosen = choose_container([info], f"--container {container}", allow_stopped=allow_stopped)
        assert chosen is not None
        return Found(chosen, "--container", attrs=c.attrs)  # the executor needs no second inspect

    searched: list[str] = []
    if workspace is not None:
        for folder in workspace_candidates(workspace, workspace.resolve()):
            rules = []
            if config_path is not None:
                rules.append([f"{LABEL_LOCAL_FOLDER}={folder}", f"{LABEL_CONFIG_FILE}={config_path}"])
            rules.append([f"{LABEL_LOCAL_FOLDER}={folder}"])
            for labels in rules:
                desc = " and ".join(labels)
                searched.append(f"labels {desc}")
                chosen = choose_container(list_containers(client, labels), f"labels {desc}", allow_stopped=allow_stopped)
                if chosen:
                    return Found(chosen, f"devcontainer labels ({LABEL_LOCAL_FOLDER}={folder})")
    if compose_project and compose_service:
        labels = [f"{LABEL_COMPOSE_PROJECT}={compose_project}", f"{LABEL_COMPOSE_SERVICE}={compose_service}"]
        desc = f"compose project {compose_project!r}, service {compose_service!r}"
        searched.append(desc)
        chosen = choose_container(list_containers(client, labels), desc, allow_stopped=allow_stopped)
        if chosen:
            return Found(chosen, desc)
    if not searched:
        raise ContainerNotFound(
            "no container given and no devcontainer configuration found from the current folder upward",
            fix=NAME_HINT,
        )
    raise ContainerNotFound(
        f"no container on {engine.label} matches:\n" + "\n".join(f"  {s}" for s in searched),
        fix="Start the devcontainer (`devcontainer up --workspace-folder .`) or " + NAME_HINT[0].lower() + NAME_HINT[1:],
    )


def executor_for(engine: Engine, found: Found) -> DockerExecutor:
    attrs = dict(found.attrs) if found.attrs is not None else None
    return DockerExecutor(client=engine.client, container_id=found.container.id, description=f"container {found.container.name}", _attrs=attrs)
