"""The Tailscale API on the host, for ``up`` (and the ``prune`` task): a ``HostApi``
when the host has credentials, and what must happen before a login."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from devc_tasks.core.errors import UsageError
from devc_tasks.core.options import seconds
from devc_tasks.shell.hostapi import HostApi
from devc_tasks.shell.keys import KeySource
from devc_tasks.shell.node import Node

__all__ = ["host_api", "prepare_login"]


def _read_secret_file(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise UsageError(f"cannot read --oauth-secret-file {path}: {e.strerror}", fix="Give a readable file holding the client secret, or - for stdin.") from None


def host_api(
    *,
    section: Mapping[str, Any],
    environ: Mapping[str, str],
    hostname: str,
    tags: tuple[str, ...],
    container: str,
    oauth_secret_file: str | None,
    timeout: float,
    ephemeral: bool = False,
    key_expiry: Any = None,
    warn: Callable[[str], None] = lambda text: None,
    step: Callable[[str], None] = lambda text: None,
) -> HostApi | None:
    """A ``HostApi`` when the host has API credentials (``environ``, ``oauth_secret_file``),
    else None (then nothing is asked). ``section`` is the ``tailscale`` configuration
    (``base_url``, ``tailnet``, ``key_expiry``)."""
    from devc_tasks.core.apirules import api_settings
    from devc_tasks.shell.hostapi import DEFAULT_KEY_EXPIRY

    settings = api_settings(environ, section, secret_file=oauth_secret_file, read_secret_file=_read_secret_file)
    if not settings.available:
        return None
    expiry = seconds(key_expiry if key_expiry is not None else section.get("key_expiry") or DEFAULT_KEY_EXPIRY, "--key-expiry")
    return HostApi(
        settings=settings,
        hostname=hostname,
        tags=tags,
        timeout=timeout,
        ephemeral=ephemeral,
        key_expiry=int(expiry),
        container=container,
        warn=warn,
        step=step,
    )


def prepare_login(api: HostApi, node: Node, key: KeySource, *, replace: bool) -> None:
    """Before anything changes in the container: when the node must log in, deal with its
    stale copies and mint the key (if it comes from the API), so API errors stop `up` first."""
    from devc_tasks.shell.hostapi import must_log_in

    probe = node.probe()
    if not must_log_in(probe):
        return
    if key.available:
        api.before_login(self_node_id=probe.status.self.id if probe.status else None, replace=replace)
    if key.source is not None and key.source.startswith("minted"):
        key.load()
