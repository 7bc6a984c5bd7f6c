"""Doctor's I/O, done once: open the engine, read the devcontainer configuration, find
the container, inspect its mounts, run the one probe exec, and resolve the wanted
hostname and the key source. Each stage records its value or the library error it
raised, so a missing engine or a stopped container still yields ``Facts`` that go
as far as they can; ``core/doctor_checks.py`` judges them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devc_tasks.core.doctor_facts import ConfigFacts, ContainerFacts, EngineFacts, Facts
from devc_tasks.core.errors import DevcError, UsageError
from devc_tasks.core.persistence import StateMount

__all__ = ["gather"]

# --- gathering (the I/O) ---------------------------------------------------------------------------


def gather(
    sel: Any,
    *,
    hostname: str | None = None,
    userspace: bool = False,
    environ: Mapping[str, str] = os.environ,
) -> Facts:
    """Learn everything the checks need, stage by stage; a failed stage is recorded, not raised.

    ``sel`` is a validated ``target.Selectors``. Only a usage error (a bad
    option) escapes. The container is probed in one exec.
    """
    from devc_tasks.shell import discovery, executors
    from devc_tasks.shell import engine as eng
    from devc_tasks.shell.keys import resolve_key
    from devc_tasks.shell.node import Node
    from devc_tasks.shell.target import Target, resolve_workspace, wanted_hostname, workspace_from_labels

    sel.validate()
    facts: dict[str, Any] = {"local": sel.local, "userspace": userspace}

    # the workspace and its configuration, read when `up` would read them
    config: Any = None
    workspace: Path | None = None
    facts["config_read"] = not sel.container or bool(sel.workspace)
    if facts["config_read"]:
        try:
            workspace, config = resolve_workspace(sel, environ)
        except UsageError:
            raise
        except DevcError as e:
            facts["config_error"] = e
            if sel.workspace:
                workspace = Path(sel.workspace)
        facts["workspace"] = workspace
        if config is not None:
            facts["config"] = ConfigFacts(path=config.path, name=config.name, service=config.service, is_compose=config.is_compose)

    engine = None
    found = None
    executor: Any = None
    if sel.local:
        executor = executors.LocalExecutor()
    else:
        try:
            engine = eng.open_engine(host=sel.host, context=sel.context, environ=environ)
        except DevcError as e:
            facts["engine_error"] = e
        if engine is not None:
            version = None
            try:
                version = str(executors.sdk_call("docker version", engine.client.version).get("Version") or "") or None
            except DevcError:
                pass
            facts["engine"] = EngineFacts(url=engine.url, local=engine.local, version=version, context=engine.context)
            found, facts["container"], facts["container_error"] = _find(engine, sel, workspace, config, environ)
            if found is not None:
                executor = discovery.executor_for(engine, found)
                facts["state_mount"] = _state_mount(engine.client, executor)
                if not facts["config_read"]:
                    # the workspace the devcontainer CLI recorded on the container, as `up` uses it
                    workspace, config = workspace_from_labels(found.container.labels)
                    if config is not None:
                        facts["config_read"] = True
                        facts["workspace"] = workspace
                        facts["config"] = ConfigFacts(path=config.path, name=config.name, service=config.service, is_compose=config.is_compose)

    if executor is not None and (found is None or found.container.running):
        try:
            facts["probe"] = Node(executor).probe(prefs=True, version=True)
        except DevcError as e:
            facts["probe_error"] = e
        target = Target(workspace=workspace, config=config, engine=engine, found=found, executor=executor)
        try:
            facts["wanted"] = wanted_hostname(target, hostname, environ)
        except DevcError as e:
            facts["wanted_error"] = e

    container_env: Mapping[str, str] = {}
    if executor is not None and not sel.local:
        try:
            container_env = executor.env()
        except DevcError:
            container_env = {}
    try:
        key = resolve_key(authkey_file=None, host_env=environ, container_env=container_env)
        if key.available:
            key.load()  # a malformed key is a finding; its value goes nowhere
        facts["key_source"] = key.source
    except DevcError as e:
        facts["key_error"] = e
    return Facts(**facts)


def _find(engine: Any, sel: Any, workspace: Path | None, config: Any, environ: Mapping[str, str]) -> tuple[Any, ContainerFacts | None, DevcError | None]:
    """The container as ``resolve`` would find it, a stopped one included (the checks say it is stopped)."""
    from devc_tasks.shell.target import find

    try:
        found = find(engine, sel, workspace, config, environ, allow_stopped=True)
    except DevcError as e:
        return None, None, e
    c = found.container
    return found, ContainerFacts(name=c.name, id=c.id, status=c.status, how=found.how), None


def _state_mount(client: Any, executor: Any) -> StateMount | None:
    """What holds the state directory (a stopped container can be inspected too); None when inspect fails."""
    from devc_tasks.shell.state.mount import state_mount_of

    try:
        return state_mount_of(client, executor.inspect())
    except DevcError:
        return None
