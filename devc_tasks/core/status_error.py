"""Why `status` does not exit 0, from one probe: a pure verdict the API and the task share."""

from __future__ import annotations

from devc_tasks.core.errors import DevcError, NotConnected, TailscaleNotInstalled
from devc_tasks.core.identity import BROKEN_STATE_FIX
from devc_tasks.core.probe import Probe

__all__ = ["status_error"]


def status_error(probe: Probe) -> DevcError | None:
    """Why `status` does not exit 0: not installed (21), or not Running (5)."""
    from devc_tasks.core.outcome import INSTALL_FIX  # only when a status is rendered

    if probe.tailscale is None:
        return TailscaleNotInstalled("the `tailscale` CLI is not installed in the container", fix=INSTALL_FIX)
    if probe.status is None:
        return NotConnected("not connected: tailscaled is not running", fix="Run `up` to start it and connect.")
    if probe.status.connecting:
        return NotConnected(
            f"connecting: the node has its identity and waits for control's first network map (backend state {probe.status.backend_state})",
            fix="Wait a moment and check again; `up` waits for it (no key needed).",
        )
    if probe.state_broken:
        return NotConnected("not connected: the state file is not valid JSON", fix=BROKEN_STATE_FIX)
    if not probe.status.running:
        return NotConnected(f"not connected: the backend state is {probe.status.backend_state}", fix="Run `up` to connect.")
    return None
