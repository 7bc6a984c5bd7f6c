"""What tailscale's answers mean, as data: the class of an error text, the warnings
about a connected node, whether tailscaled died under a step.

Pure; ``shell/node.py`` and ``shell/control.py`` act on these verdicts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devc_tasks.core.errors import DevcError, LoginRejected, SshRefused, TailscaleFailed
from devc_tasks.core.probe import Probe

if TYPE_CHECKING:
    from devc_tasks.core.status import Status

__all__ = ["classify_tailscale_error", "is_tun_error", "collision", "connect_warnings", "daemon_died", "SSH_REFUSED_FIX", "APPROVAL_FIX", "INSTALL_FIX"]

SSH_REFUSED_FIX = (
    "Run it with --no-ssh (the node then has no Tailscale SSH server), or let the tailnet policy grant "
    "Tailscale SSH to this node (https://tailscale.com/s/ssh), then run it again."
)
APPROVAL_FIX = "Approve the machine in the Tailscale admin console (https://login.tailscale.com/admin/machines), then run up again; or use a pre-approved auth key."
INSTALL_FIX = (
    "Install Tailscale in the devcontainer image (e.g. the ghcr.io/tailscale/codespace feature "
    "or the official install script), then rebuild."
)


def is_tun_error(log: str) -> bool:
    """tailscaled's TUN failures: a missing device comes wrapped by CreateTUN, a permission
    error (no NET_ADMIN, device cgroup) comes bare: ``tstun.New("tailscale0"): operation not permitted``."""
    return "CreateTUN" in log or "/dev/net/tun" in log or ("tstun.New(" in log and "operation not permitted" in log)


def classify_tailscale_error(text: str, *, what: str) -> DevcError | None:
    """The failure class of what `tailscale up`/`set` printed, by what the message says
    (already redacted). None: no class of its own."""
    flat = " ".join(text.split())  # tailscale wraps some messages over several lines
    low = flat.lower()
    if "unable to enable local tailscale ssh server" in low:
        return SshRefused(f"`tailscale {what}` refused Tailscale SSH: the tailnet policy does not allow it on this node: {text}", fix=SSH_REFUSED_FIX)
    if "aborted, no changes made" in low:
        return TailscaleFailed(
            f"`tailscale {what}` asked for a confirmation and aborted: {text}",
            fix="It runs inside an SSH session over Tailscale; devc-tasks clears SSH_CLIENT for the commands it runs, so run it through devc-tasks, or add --accept-risk=lose-ssh.",
        )
    if "backend error" in low or "invalid key" in low:
        said = flat.split("backend error:", 1)[-1].strip() if "backend error:" in flat else flat
        if "invalid key" in low or "not valid" in low or "expired" in low:
            return LoginRejected(f"the control server rejected the auth key: {said}", fix="Create a new auth key in the Tailscale admin console and try again.")
        if "429" in flat or "rate limit" in low or "too many" in low:
            return LoginRejected(f"the control server is rate-limiting logins: {said}", fix="Wait a few minutes, then run up again.")
        return LoginRejected(f"the control server refused the login: {said}", fix="Read the control server's reason above; check the key's tailnet, tags and the tailnet policy.")
    if "requires mentioning all non-default flags" in flat:
        return TailscaleFailed(
            f"tailscale up refused: the node has settings devc-tasks does not manage: {text}",
            fix="Run `tailscale up --reset` in the container, or undo those settings with `tailscale set`.",
        )
    return None


def daemon_died(before: Probe, after: Probe) -> bool:
    """The daemon answered when the step began and no tailscaled runs now."""
    return before.status is not None and after.status is None and after.daemon_pid is None


def collision(status: Status, wanted: str) -> str | None:
    """The MagicDNS label when it is not the wanted name (``name-1``: another node holds
    ``name``). Labels are case-insensitive; the control server lowercases them."""
    label = status.self.dns_label
    return label if label and label.lower() != wanted.lower() else None


def connect_warnings(probe: Probe, hostname: str) -> list[str]:
    """What the user should know about a node connected under the wanted ``hostname``."""
    out: list[str] = []
    st = probe.status
    if st is None:
        return out
    if collision(st, hostname):
        out.append(
            f"the MagicDNS name is {st.self.magic_dns_name}, not {hostname}: another node already holds "
            f"the name {hostname!r} (often an old copy of this container whose state was lost). "
            "Remove the stale node (`tailscale.prune --yes` with API credentials on the host, or the admin console), "
            "then run `tailscale.restart` or `up` again."
        )
    if not st.tun:
        out.append("tailscaled runs in userspace-networking mode: other processes reach the tailnet only through its SOCKS5/HTTP proxy")
    return out
