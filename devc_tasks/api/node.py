"""The node operations of the Python API: up (and its plan), down, logout, restart, status.

Each takes the tasks' selectors as keyword arguments and returns the dataclass
the task renders; failures are the typed errors of ``core.errors``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from devc_tasks.api.types import ChangeReport, OnEvent, Progress, StatusReport, UpReport
from devc_tasks.core.errors import UsageError
from devc_tasks.core.options import check_tags, parse_tags, seconds
from devc_tasks.core.secrets import Secret
from devc_tasks.shell.keys import KeySource
from devc_tasks.shell.node import Node, UpResult
from devc_tasks.shell.target import Selectors, Target, resolve

if TYPE_CHECKING:  # `status` and `down` load no Tailscale API client, planner or hostname rules
    from devc_tasks.core.hostname import HostnameChoice
    from devc_tasks.core.plan import UpWish
    from devc_tasks.core.probe import Probe
    from devc_tasks.shell.hostapi import HostApi

__all__ = ["up", "down", "logout", "restart", "status", "target"]

PathArg = str | os.PathLike[str]


def target(container: str | None, workspace: PathArg | None, host: str | None, context: str | None, local: bool,
           environ: Mapping[str, str] | None, **kw: bool) -> Target:
    """The container the selectors name (the tasks' --container, --workspace, --host, --context, --local)."""
    sel = Selectors(container=container, workspace=os.fspath(workspace) if workspace is not None else None, host=host, context=context, local=local)
    return resolve(sel, os.environ if environ is None else environ, **kw)


def _node(t: Target, progress: Progress | None = None) -> Node:
    """The node in the resolved container (``resolve`` without ``optional`` always has an executor)."""
    if t.executor is None:  # pragma: no cover - resolve() raises ContainerNotFound first
        raise AssertionError("no executor")
    return Node(t.executor, on_step=progress.step if progress is not None else (lambda text: None))


def _ssh_user(t: Target) -> str:
    return getattr(t.config, "remote_user", None) or "root"


def _host_peer(result: UpResult, environ: Mapping[str, str]) -> dict[str, Any] | None:
    from devc_tasks.shell.hostpeer import host_peer

    status = result.probe.status if result.probe else None
    if result.outcome == "skipped" or status is None:
        return None
    return host_peer(status.self.id, status.self.public_key, env=environ)


def _key(authkey_file: PathArg | None, authkey: Secret | None, environ: Mapping[str, str], t: Target, api: HostApi | None, local: bool) -> KeySource:
    """Where the key comes from: ``authkey`` (a ``Secret`` held in memory), else the tasks'
    order (``authkey_file``, ``-`` for stdin; TAILSCALE_AUTHKEY on the host; the API; the container)."""
    from devc_tasks.shell.keys import resolve_key

    if authkey is not None:
        if not isinstance(authkey, Secret):  # never echoed: it may be the key itself
            raise UsageError("authkey takes a devc_tasks.api.Secret (never a plain string, which could end up in a log)",
                             fix="Wrap it: authkey=Secret(value), or pass authkey_file=PATH.")
        if authkey_file is not None:
            raise UsageError("authkey and authkey_file cannot both be given", fix="Give one key source.")
        return KeySource("authkey (Secret)", authkey.reveal)
    minter = (f"minted through the Tailscale API ({api.settings.describe()})", api.mint) if api is not None else None
    return resolve_key(authkey_file=os.fspath(authkey_file) if authkey_file is not None else None, host_env=environ,
                       container_env=t.executor.env() if t.executor is not None and not local else {}, minter=minter)


@dataclass
class _Up:
    """An ``up`` made ready: everything resolved and checked, nothing changed yet."""

    target: Target
    choice: HostnameChoice
    api: HostApi | None
    key: KeySource
    wish: UpWish
    node: Node
    progress: Progress


def _prepare(a: dict[str, Any]) -> _Up:
    from devc_tasks.api.login import host_api
    from devc_tasks.shell.target import wanted_hostname

    environ: Mapping[str, str] = os.environ if a["environ"] is None else a["environ"]
    wait = seconds(a["timeout"], "--timeout")
    seconds(a["daemon_wait"], "daemon_wait")
    raw_tags = a["advertise_tags"]
    # "tag:a,tag:b" as one string is what the command line takes: never its characters
    tags = parse_tags(raw_tags) if isinstance(raw_tags, str) else check_tags(tuple(raw_tags))
    if a["authkey_file"] == "-" and a["oauth_secret_file"] == "-":
        raise UsageError("--authkey-file and --oauth-secret-file cannot both read stdin", fix="Give one of them a file.")
    progress = Progress(a["on_event"])
    t = target(a["container"], a["workspace"], a["host"], a["context"], a["local"], environ)
    progress.container = t.label
    choice = wanted_hostname(t, a["hostname"], environ)
    progress.emit("resolve", f"found {t.label}", hostname=choice.name)
    for w in choice.warnings:
        progress.warn(w)
    api = host_api(section=a["api_config"] or {}, environ=environ, hostname=choice.name, tags=tags, container=t.label,
                   oauth_secret_file=a["oauth_secret_file"], timeout=wait, ephemeral=a["ephemeral"], key_expiry=a["key_expiry"],
                   warn=progress.warn, step=progress.step)
    key = _key(a["authkey_file"], a["authkey"], environ, t, api, a["local"])
    from devc_tasks.core.plan import UpWish

    wish = UpWish(hostname=choice.name, ssh=a["ssh"], accept_routes=a["accept_routes"], advertise_tags=tags, timeout=wait,
                  require_key=a["require_key"], userspace=a["userspace"], have_key=key.available)
    return _Up(t, choice, api, key, wish, _node(t, progress), progress)


def up(
    *,
    container: str | None = None,
    workspace: PathArg | None = None,
    host: str | None = None,
    context: str | None = None,
    local: bool = False,
    hostname: str | None = None,
    authkey_file: PathArg | None = None,
    authkey: Secret | None = None,
    ssh: bool = True,
    accept_routes: bool = False,
    advertise_tags: Sequence[str] = (),
    timeout: float = 60.0,
    daemon_wait: float = 20.0,
    require_key: bool = False,
    userspace: bool = False,
    key_expiry: float | None = None,
    ephemeral: bool = False,
    replace: bool = False,
    oauth_secret_file: str | None = None,
    api_config: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    on_event: OnEvent | None = None,
) -> UpReport:
    """Connect the devcontainer to the tailnet; idempotent, opt-in through a key.

    The key is read only when the node must log in, from ``authkey`` (a ``Secret``),
    ``authkey_file`` (a path, ``-`` for stdin), TAILSCALE_AUTHKEY in ``environ`` (the
    host's, default ``os.environ``), a key minted through the Tailscale API (host
    credentials in ``environ``, ``oauth_secret_file``; ``api_config`` is the
    ``tailscale`` configuration section), or TAILSCALE_AUTHKEY in the container.
    Without any, a node with no identity is skipped (``outcome == "skipped"``), or
    ``KeyRequired`` with ``require_key``. Raises ``DevcError`` subclasses.
    """
    p = _prepare(dict(locals()))
    p.progress.emit("probe", "probe the container")
    try:
        if p.api is not None:
            from devc_tasks.api.login import prepare_login

            prepare_login(p.api, p.node, p.key, replace=replace)
        result = p.node.up(p.wish, p.key.load, daemon_wait=seconds(daemon_wait, "daemon_wait"))
    finally:
        if p.api is not None:
            p.api.revoke()
    from devc_tasks.shell.state.mount import target_persistence_warning

    result.warnings[:0] = [w for w in (target_persistence_warning(p.target),) if w]
    extra = None
    if p.api is not None:
        node_id = result.probe.status.self.id if result.probe and result.probe.status else None
        extra = {**p.api.report(), "device": p.api.confirm(node_id)}
        p.api.close()
    p.progress.emit("done", result.outcome)
    environ_ = os.environ if environ is None else environ
    return UpReport(p.target.label, result, p.key.source if result.used_key else None, p.choice, _ssh_user(p.target), extra, _host_peer(result, environ_))


def restart(
    *,
    container: str | None = None,
    workspace: PathArg | None = None,
    host: str | None = None,
    context: str | None = None,
    local: bool = False,
    hostname: str | None = None,
    timeout: float = 60.0,
    daemon_wait: float = 20.0,
    userspace: bool = False,
    environ: Mapping[str, str] | None = None,
    on_event: OnEvent | None = None,
) -> UpReport:
    """Restart tailscaled and reconnect from the state volume: no key, the same node.
    It keeps its name unless ``hostname`` is given; a changed node ID is a warning."""
    from devc_tasks.shell.target import wanted_hostname

    environ_ = os.environ if environ is None else environ
    wait = seconds(timeout, "--timeout")
    settle = seconds(daemon_wait, "daemon_wait")
    progress = Progress(on_event)
    t = target(container, workspace, host, context, local, environ_)
    progress.container = t.label
    progress.emit("resolve", f"found {t.label}")
    choice = wanted_hostname(t, hostname, environ_)
    if hostname is not None:
        for w in choice.warnings:
            progress.warn(w)
    node = _node(t, progress)
    progress.emit("probe", "probe the container")
    from devc_tasks.core.plan import UpWish

    before, result = node.restart(UpWish(hostname=choice.name, timeout=wait, userspace=userspace), rename=hostname is not None, daemon_wait=settle)
    old_id = before.status.self.id if before.status else None
    new_id = result.probe.status.self.id if result.probe and result.probe.status else None
    if old_id and new_id and old_id != new_id:
        result.warnings.append(f"the node ID changed from {old_id} to {new_id}: the state volume did not keep the identity")
    progress.emit("done", result.outcome)
    return UpReport(t.label, result, None, choice, _ssh_user(t), None, _host_peer(result, environ_))


def _change(t: Target, on_event: OnEvent | None, act: Callable[[Node], tuple[Probe, list[str]]]) -> ChangeReport:
    """``down`` or ``logout`` on the resolved node, reported step by step."""
    progress = Progress(on_event)
    progress.container = t.label
    after, done = act(_node(t, progress))
    progress.emit("done", ", ".join(done))
    return ChangeReport(t.label, after, done)


def down(
    *,
    container: str | None = None,
    workspace: PathArg | None = None,
    host: str | None = None,
    context: str | None = None,
    local: bool = False,
    logout: bool = False,
    environ: Mapping[str, str] | None = None,
    on_event: OnEvent | None = None,
) -> ChangeReport:
    """Disconnect the node (`tailscale down`); it keeps its identity, so ``up`` needs no
    key. ``logout`` also leaves the tailnet (a key is then needed to come back)."""
    return _change(target(container, workspace, host, context, local, environ), on_event, lambda node: node.down(logout=logout))


def logout(
    *,
    container: str | None = None,
    workspace: PathArg | None = None,
    host: str | None = None,
    context: str | None = None,
    local: bool = False,
    environ: Mapping[str, str] | None = None,
    on_event: OnEvent | None = None,
) -> ChangeReport:
    """Log the node out: it leaves the tailnet (an ephemeral node is deleted)."""
    return _change(target(container, workspace, host, context, local, environ), on_event, lambda node: node.logout())


def status(
    *,
    container: str | None = None,
    workspace: PathArg | None = None,
    host: str | None = None,
    context: str | None = None,
    local: bool = False,
    environ: Mapping[str, str] | None = None,
) -> StatusReport:
    """The node's state, in one probe. A node that is not Running is no exception: the
    report's ``error`` says why (the task exits with its code)."""
    from devc_tasks.core.status_error import status_error

    t = target(container, workspace, host, context, local, environ)
    probe = _node(t).probe()
    return StatusReport(t.label, probe, status_error(probe))
