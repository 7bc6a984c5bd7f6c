"""Does this machine (the host) see the container's node as an online peer?

Only when the host runs a tailscale client: a ``tailscale`` binary on the host PATH
that answers ``tailscale status --json`` within a few seconds (``--socket`` from
``DEVC_HOST_TAILSCALE_SOCKET`` when set). Anything else (no binary, no daemon,
not logged in, garbage) is a quiet skip: None. The node is matched by its stable
node ID or its public key, never by name (names repeat: ``web``, ``web-1``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["ENV_HOST_SOCKET", "peer_view", "host_peer"]

ENV_HOST_SOCKET = "DEVC_HOST_TAILSCALE_SOCKET"
_TIMEOUT = 5.0
_MAX_BYTES = 8 * 1024 * 1024


def peer_view(doc: Any, *, node_id: str, public_key: str) -> dict[str, Any] | None:
    """What the host's ``tailscale status --json`` says of the node; None when the host's
    client is not on a tailnet (then it has nothing to say)."""
    if not isinstance(doc, Mapping) or doc.get("BackendState") != "Running":
        return None
    me = doc.get("Self")

    def same(p: Any) -> bool:
        if not isinstance(p, Mapping):
            return False
        return bool((node_id and p.get("ID") == node_id) or (public_key and p.get("PublicKey") == public_key))

    if same(me):
        return {"seen": True, "online": True, "self": True}
    peers = doc.get("Peer")
    for p in peers.values() if isinstance(peers, Mapping) else ():
        if same(p):
            return {"seen": True, "online": p.get("Online") is True, "self": False}
    return {"seen": False, "online": False, "self": False}


def child_env(env: Mapping[str, str]) -> dict[str, str]:
    """The host environment without the secrets this process holds: the host's tailscale
    needs none of them, and a child's environment is readable in /proc/PID/environ."""
    from devc_tasks.core.apirules import ENV_API_KEY, ENV_CLIENT_SECRET
    from devc_tasks.core.secrets import ENV_AUTHKEY

    return {k: v for k, v in env.items() if k not in (ENV_CLIENT_SECRET, ENV_API_KEY, ENV_AUTHKEY)}


def host_peer(
    node_id: str,
    public_key: str,
    *,
    env: Mapping[str, str],
    which: Callable[[str], str | None] | None = None,
    run: Callable[..., Any] | None = None,
) -> dict[str, Any] | None:
    """``peer_view`` of the host's own tailscale client, or None (quietly) when there is none."""
    import shutil
    import subprocess

    if not node_id and not public_key:
        return None
    exe = (which or shutil.which)("tailscale")
    if not exe:
        return None
    argv = [exe]
    sock = (env.get(ENV_HOST_SOCKET) or "").strip()
    if sock:
        argv.append(f"--socket={sock}")
    argv += ["status", "--json"]
    try:
        r = (run or subprocess.run)(argv, capture_output=True, timeout=_TIMEOUT, stdin=subprocess.DEVNULL, check=False, env=child_env(env))
    except (OSError, subprocess.SubprocessError):
        return None
    if r.returncode != 0 or len(r.stdout) > _MAX_BYTES:
        return None
    try:
        doc = json.loads(r.stdout)
    except ValueError:
        return None
    return peer_view(doc, node_id=node_id, public_key=public_key)
