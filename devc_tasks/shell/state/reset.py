"""Reset: log the node out and empty its state directory (after an optional backup).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devc_tasks.core.errors import ContainerNotRunning, StateVolumeError
from devc_tasks.core.paths import STATE_DIR
from devc_tasks.core.scripts import EMPTY_SCRIPT, PRESENT_SCRIPT
from devc_tasks.shell.state.backup import BackupResult, backup
from devc_tasks.shell.state.transport import StateContainer, check_locked, exec_script, run_locked

__all__ = ["ResetResult", "require_running", "reset"]

# -- reset ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ResetResult:
    steps: tuple[str, ...]
    backup: BackupResult | None
    node_id: str | None  # the node that was there before
    logged_out: bool
    removed: int  # entries removed from the state directory
    warnings: tuple[str, ...] = ()


def require_running(sc: StateContainer, what: str) -> None:
    if not sc.running:
        raise ContainerNotRunning(
            f"container {sc.name} is {sc.status}: {what} needs it running (to log the node out and empty {STATE_DIR})",
            fix=f"Start it (`docker start {sc.name}`), then run it again.",
        )


def reset(
    sc: StateContainer,
    *,
    backup_to: Path | None,
    force: bool = False,
    logout: bool = True,
    on_step: Callable[[str], None] = lambda text: None,
) -> ResetResult:
    """Back up, log out, stop tailscaled, empty the state directory; in that order.

    The backup comes first so that nothing is lost if a later step fails. After a
    logout the control server no longer accepts the backup's node key: restoring
    it gives a node that must log in again. ``logout=False`` keeps the node on the
    tailnet, so a restore brings the same node back. When restore would refuse
    the backup, the reset stops before anything is deleted. The caller checks
    that the container runs (``require_running``) before asking for confirmation.
    """
    from devc_tasks.shell.node import Node

    out = exec_script(sc, PRESENT_SCRIPT, STATE_DIR, what=f"looking at {STATE_DIR}").strip()
    present = None if out == "missing" else out == "files"
    node = Node(sc.executor, on_step=on_step)
    probe = node.probe()
    steps: list[str] = []
    saved = None
    # the daemon's word when it answers, else the state file's content
    has_identity = probe.has_identity
    warnings: list[str] = []
    if backup_to is not None and present:
        on_step(f"back up to {backup_to}")
        saved = backup(sc, backup_to, force=force)
        if not has_identity:
            # nothing a restore could bring back: the backup is a courtesy, not a condition
            warnings.append("the state directory held no node identity (a fresh daemon's `{}`, or what a logout leaves)")
        elif not saved.restorable:
            raise StateVolumeError(
                f"not resetting {sc.name}: the backup just written to {saved.path} could not be restored "
                f"({'; '.join(saved.warnings)}); nothing was deleted",
                fix="Look at what the state directory holds; to reset without a usable backup, pass --no-backup.",
            )
        steps.append(f"backed up to {saved.path}")
    node_id = probe.status.self.id if probe.status is not None else None
    logged_out = False

    if logout and probe.status is not None and probe.status.logged_in:
        on_step("log out")
        node.logout()
        logged_out = True
        steps.append("logged out")
    elif logout and probe.status is None and present and has_identity:
        warnings.append(
            "tailscaled was not running, so the node could not log out: it stays listed on the tailnet. "
            "Remove it in the Tailscale admin console (or restore the backup, run `up`, then reset again)."
        )
    on_step(f"stop tailscaled and empty {STATE_DIR}")
    # one exec under `up`'s lock: no `up` can start tailscaled between the stop and the emptying
    r, stopped = run_locked(sc, EMPTY_SCRIPT, STATE_DIR)
    if stopped:
        steps.append("stopped tailscaled")
    out = check_locked(sc, r, f"emptying {STATE_DIR}")
    m = re.search(r"^removed=(\d+)$", out, re.M)
    removed = int(m.group(1)) if m else 0
    if m:
        steps.append(f"emptied {STATE_DIR}")
    if not steps:
        steps.append(f"{STATE_DIR} is already empty")
    return ResetResult(
        steps=tuple(steps), backup=saved, node_id=node_id or None, logged_out=logged_out, removed=removed, warnings=tuple(warnings)
    )
