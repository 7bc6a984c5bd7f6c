"""Restore a checked archive into a container's state directory: staged, swapped in
by renames under the lock, the daemon started again; never half-way.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devc_tasks.core import plan
from devc_tasks.core.archive import ARCHIVE_TOP, CheckedArchive, files_text
from devc_tasks.core.errors import DevcError, StateVolumeError
from devc_tasks.core.paths import STATE_DIR
from devc_tasks.core.scripts import AFTER_FAILED_SWAP_SCRIPT, OLD_KEPT, SWAP_SCRIPT
from devc_tasks.shell.state.transport import StateContainer, check_locked, exec_script, put_archive, run_locked, state_listing

__all__ = ["RestoreResult", "restore"]

@dataclass(frozen=True, kw_only=True)
class RestoreResult:
    files: int
    size: int
    layout: str
    steps: tuple[str, ...]
    daemon_restarted: bool
    status: Any | None  # after the restore, when the daemon answers
    warnings: tuple[str, ...] = ()


def _quietly(call: Callable[[], Any]) -> None:
    """Clean-up after a failure: the first error is the one to report."""
    try:
        call()
    except Exception:  # noqa: BLE001
        pass


_SETTLING = ("Starting", "NoState")


def restore(
    sc: StateContainer,
    archive: CheckedArchive,
    *,
    stop_daemon: bool = False,
    daemon_wait: float = 20.0,
    on_step: Callable[[str], None] = lambda text: None,
) -> RestoreResult:
    """Put a checked archive in place of the state directory.

    A running container gets an exact copy: the archive goes to a staging
    folder first, so a failed copy leaves the old state alone; then tailscaled
    is stopped (only with ``stop_daemon``), the folder emptied, the copy moved
    in (stop and swap in one exec holding `up`'s lock), and a daemon that ran
    is started again, also when a step fails. When a failed swap (or one cut
    off half-way) could not put the previous state back, that state stays
    where the swap set it aside (``<stage>.old``), the error says where, and
    tailscaled stays stopped: the only copy of an identity is never deleted.
    A stopped container gets the archive through ``put_archive``.
    """
    if not sc.running:
        return _restore_stopped(sc, archive, on_step)
    from devc_tasks.shell.node import Node

    node = Node(sc.executor, on_step=on_step)
    before = node.probe()
    daemon_ran = before.daemon_pid is not None or before.status is not None
    if daemon_ran and not stop_daemon:
        raise StateVolumeError(
            f"tailscaled is running in {sc.name}: restoring under it would mix two identities; nothing was changed",
            fix="Pass --stop-daemon: restore then stops tailscaled, replaces the state and starts it again.",
        )
    userspace = before.status is not None and not before.status.tun
    argv = plan.tailscaled_argv(before.tailscaled or "tailscaled", userspace=userspace)
    cli = before.tailscale or "tailscale"
    stage = f"{STATE_DIR}/.devc-restore-{uuid.uuid4().hex[:10]}"
    exec_script(sc, 'mkdir -p "$1" && chmod 700 "$1"', stage, what=f"creating {stage}")
    steps: list[str] = []
    restart = daemon_ran
    swapping = False
    try:
        on_step("copy the archive into the container")
        put_archive(sc, stage, archive.tar())
        on_step(f"stop tailscaled and replace {STATE_DIR}" if daemon_ran else f"replace {STATE_DIR}")
        # one exec under `up`'s lock: no `up` can start tailscaled between the stop and the swap
        swapping = True
        r, stopped = run_locked(sc, SWAP_SCRIPT, STATE_DIR, stage, "1" if stop_daemon else "0")
        restart = restart or stopped
        if stopped:
            steps.append("stopped tailscaled")
        if r.exit_code != OLD_KEPT:
            check_locked(sc, r, f"replacing {STATE_DIR}")
        else:
            raise StateVolumeError(f"replacing {STATE_DIR} failed in {sc.name}: {(r.stderr or r.stdout).strip()}")
        steps.append(f"restored {files_text(len(archive.files))}")
    except BaseException as exc:
        # whatever failed: no staging folder left behind, never the previous state
        # deleted, and a daemon that ran runs again unless its state is set aside
        kept = _after_failed_swap(sc, stage)
        if kept == _UNKNOWN and not swapping:
            kept = None  # the swap never ran: nothing was set aside
        if restart and kept is None:
            on_step("start tailscaled")
            _quietly(lambda: node.start_daemon(argv, cli=cli, wait=daemon_wait))
        if kept is None or not isinstance(exc, Exception):
            raise
        raise _kept_error(sc, kept, exc, daemon_stopped=restart) from exc
    if restart:
        on_step("start tailscaled")
        node.start_daemon(argv, cli=cli, wait=daemon_wait)
    warnings: list[str] = []
    status = None
    if restart:
        steps.append("started tailscaled")
        status = _settle(node, daemon_wait)
        warnings.extend(_after_restore_warnings(status))
    else:
        warnings.append("tailscaled was not running; `inv tailscale.up` starts it with the restored identity (no key needed)")
    return RestoreResult(
        files=len(archive.files), size=archive.total_size, layout=archive.layout, steps=tuple(steps),
        daemon_restarted=restart, status=status, warnings=tuple(warnings),
    )


_UNKNOWN = "unknown"


def _after_failed_swap(sc: StateContainer, stage: str) -> str | None:
    """Clean up after a failed restore: the staged copy goes, ``<stage>.old`` (the previous
    state set aside) only when empty. Its path when kept; ``_UNKNOWN`` when the container
    cannot be asked (then nothing was deleted either); None when nothing is set aside."""
    try:
        r, _ = run_locked(sc, AFTER_FAILED_SWAP_SCRIPT, stage)
    except Exception:  # noqa: BLE001 - the first error is the one to report
        return _UNKNOWN
    if r.exit_code != 0:
        return _UNKNOWN
    m = re.search(r"^devc-kept=(.+)$", r.stdout, re.M)
    return m.group(1) if m else None


def _kept_error(sc: StateContainer, kept: str, exc: BaseException, *, daemon_stopped: bool) -> DevcError:
    """The failure, saying where the previous identity is: it is never deleted."""
    old = kept if kept != _UNKNOWN else "a folder .devc-restore-*.old"
    first = exc.message if isinstance(exc, DevcError) else f"{type(exc).__name__}: {exc}"
    where = (
        f"the previous state (the node's identity) is kept in {old} in {sc.name}, not deleted"
        if kept != _UNKNOWN
        else f"{sc.name} could not be asked whether the previous state is back; if not, it is in {old} under {STATE_DIR}, not deleted"
    )
    daemon = "; tailscaled was not started again" if daemon_stopped else ""
    return StateVolumeError(
        f"{first}; {where}{daemon}",
        fix=(
            f"Look at {STATE_DIR} in the container (`docker exec -it {sc.name} sh`): move the entries of {old} back "
            f"into {STATE_DIR} (after removing what the failed restore left there), then run `inv tailscale.up` "
            "(no key needed); or run the restore again."
        ),
    )


def _settle(node: Any, wait: float) -> Any:
    """Probe until the backend leaves Starting (bounded); the last status seen."""
    deadline = time.monotonic() + wait
    status = node.probe().status
    while (status is None or status.backend_state in _SETTLING) and time.monotonic() < deadline:
        time.sleep(0.3)
        status = node.probe().status
    return status


def _after_restore_warnings(status: Any) -> list[str]:
    if status is None:
        return ["tailscaled does not answer after the restore; see /var/log/tailscaled.log in the container"]
    if status.backend_state == "NeedsLogin":
        return [
            (
                "the node came back logged out (NeedsLogin): the control server no longer accepts this backup's node key "
                "(the node was logged out, e.g. by `state.reset`, or removed). Run `inv tailscale.up` with an auth key."
            )
        ]
    if status.backend_state in _SETTLING:
        what = "connecting (the daemon waits for control's first network map)" if status.connecting else status.backend_state
        return [f"the node is still {what}; check `inv tailscale.status` in a moment (no key needed)"]
    return []


def _restore_stopped(sc: StateContainer, archive: CheckedArchive, on_step: Callable[[str], None]) -> RestoreResult:
    listing = state_listing(sc)
    present = listing or set()
    on_step("copy the archive into the stopped container")
    # into the parent, the state directory itself included: the Engine sets the owner
    # and mode of an existing directory from the archive too, so it becomes root's 0700
    parent = STATE_DIR.rsplit("/", 1)[0] or "/"
    warnings = []
    try:
        put_archive(sc, parent, archive.tar(prefix=ARCHIVE_TOP, now=time.time()))
    except StateVolumeError:
        if listing is None:
            raise
        # the parent may be read-only (a --read-only root filesystem) while the volume is not
        put_archive(sc, STATE_DIR, archive.tar())
        warnings.append(f"{STATE_DIR} itself kept its owner and mode (its parent is read-only); what it holds is root's, 0600/0700")
    wanted = {m.path for m in archive.members}
    stale = sorted(p for p in present if p not in wanted and not any(w.startswith(p + "/") for w in wanted))
    if stale:
        shown = ", ".join(stale[:5]) + (f" and {len(stale) - 5} more" if len(stale) > 5 else "")
        warnings.append(
            f"the container is stopped, so files the archive does not hold stayed in {STATE_DIR}: {shown}. "
            "For an exact copy start the container and run restore again with --stop-daemon."
        )
    warnings.append("the container is stopped; once it runs, `inv tailscale.up` brings the node up with the restored identity (no key needed)")
    return RestoreResult(
        files=len(archive.files), size=archive.total_size, layout=archive.layout,
        steps=(f"restored {files_text(len(archive.files))}",), daemon_restarted=False, status=None, warnings=tuple(warnings),
    )
