"""The state tasks: show, backup, restore, reset (mounted as `tailscale.state.*`).

They go through the Engine's archive API, so they work on a stopped container
too (reset excepted: it needs the container running) and take no --local.
"""

from __future__ import annotations

import sys
from typing import Any

from invoke import task

from devc_tasks.tasks import common
from devc_tasks.tasks.common import EVENTS_HELP, _output, _seconds, _selectors, _setting, boundary


def _help(**extra: str) -> dict[str, str]:
    """common._help without --local: the state tasks go through the Engine."""
    h = common._help(**extra)
    del h["local"]
    return h


def _open(container: str | None, workspace: str | None, host: str | None, context: str | None) -> Any:
    from devc_tasks.shell.state.transport import open_state
    from devc_tasks.shell.target import resolve

    target = resolve(_selectors(container, workspace, host, context, False), allow_stopped=True)
    return open_state(target)


def _node_fields(status: Any) -> dict[str, Any] | None:
    from devc_tasks.tasks.ui import node_doc

    return node_doc(status) if status is not None else None


# --- show ----------------------------------------------------------------------


@task(auto_shortflags=False, help=_help())
def show(c, container=None, workspace=None, host=None, context=None, json=False):
    """Show what holds /var/lib/tailscale, whether it has an identity, and the node (works on a stopped container)."""
    out = _output(json)
    with boundary(out):
        from devc_tasks.shell.state.backup import show as show_state
        from devc_tasks.shell.state.transport import STATE_DIR

        sc = _open(container, workspace, host, context)
        report = show_state(sc)
        m = report.mount
        warning = report.warning
        doc: dict[str, Any] = {
            "ok": True,
            "container": report.container,
            "container_id": report.container_id,
            "container_status": report.container_status,
            "state_dir": STATE_DIR,
            "mount": m.to_dict(),
            "has_identity": report.has_identity,
            "state_broken": report.state_broken,
            "state_file_size": report.state_file_size,
            "daemon_running": report.daemon_running,
            "node_id": (report.status.self.id or None) if report.status else None,
            "hostname": report.status.self.host_name if report.status else None,
            "node": _node_fields(report.status),
            "warnings": [warning] if warning else [],
        }
        if report.probe_error:
            doc["probe_error"] = report.probe_error
        rows = [
            ("Container", f"{report.container} ({report.container_status})"),
            ("State dir", STATE_DIR),
            ("Mounted", m.describe()),
        ]
        if m.driver:
            rows.append(("Driver", m.driver))
        if m.created:
            rows.append(("Created", m.created))
        if report.state_broken:
            rows.append(("Identity", "broken: tailscaled.state is not valid JSON (restore a backup, or state.reset)"))
        else:
            rows.append(("Identity", f"yes ({report.state_file_size} bytes of tailscaled.state)" if report.has_identity else "none"))
        if report.container_status != "running":
            rows.append(("Daemon", "container stopped"))
        elif report.status is not None:
            rows += [("Node ID", report.status.self.id or "-"), ("Hostname", report.status.self.host_name), ("State", report.status.backend_state)]
        else:
            rows.append(("Daemon", "not running" if report.daemon_running is False else report.probe_error or "not answering"))
        if warning:
            out.warn(warning)
        out.emit(doc, out.panel(f"tailscale state of {report.container}", rows, style="yellow" if warning else "green"), kind="state.show")


# --- backup --------------------------------------------------------------------


_KEYS_WARNING = "{path} holds the node's private keys: anyone with it can act as this node. Keep it private (it is mode 0600); never commit or share it."


@task(
    auto_shortflags=False,
    help=_help(
        output="Where to write the tar (a file, or a folder for the default name). Default: tailscale-state-<project>-<UTC time>.tar here.",
        force="Replace --output if it exists (never done without this flag).",
        events=EVENTS_HELP,
    )
)
def backup(c, output=None, force=False, container=None, workspace=None, host=None, context=None, json=False, events=False):
    """Back up /var/lib/tailscale to a tar file (mode 0600) through the archive API; works on a stopped container."""
    out = _output(json, events)
    with boundary(out):
        from devc_tasks import api
        from devc_tasks.core.archive import files_text
        from devc_tasks.tasks.ui import spinner_once_resolved

        with spinner_once_resolved(out, lambda ev: f"Backing up the tailscale state of {ev.container} ...") as on_event:
            report = api.state_backup(container=container, workspace=workspace, host=host, context=context, output=output, force=force, on_event=on_event)
        result = report.result
        out.warn(_KEYS_WARNING.format(path=result.path))
        for w in result.warnings:
            out.warn(w)
        doc = {
            "ok": True,
            "container": report.container,
            "path": str(result.path),
            "bytes": result.size,
            "files": result.files,
            "has_identity": result.has_identity,
            "warnings": list(result.warnings),
        }
        # one plain line: the path must come out whole, never cut to the panel's width
        what = "the node's identity" if result.has_identity else "no node identity"
        line = f"Backed up the tailscale state of {report.container} ({files_text(result.files)}, {result.size} bytes, {what}) to:\n{result.path}"
        out.emit(doc, out.lines(line), kind="state.backup")


# --- restore -------------------------------------------------------------------


@task(
    auto_shortflags=False,
    help=_help(
        file="The backup tar to restore (from state.backup).",
        stop_daemon="Stop tailscaled while restoring and start it again after (needed when it runs).",
        max_size="Refuse archives whose files add up to more than this (default 64M).",
        events=EVENTS_HELP,
    )
)
def restore(c, file, stop_daemon=False, max_size=None, container=None, workspace=None, host=None, context=None, json=False, events=False):
    """Restore /var/lib/tailscale from a backup, after checking it (regular files only, no links, no absolute paths or ..)."""
    out = _output(json, events)
    with boundary(out):
        from devc_tasks import api
        from devc_tasks.core.archive import files_text

        daemon_wait = _seconds(_setting(c, "daemon_wait", None), "daemon_wait")
        from devc_tasks.tasks.ui import spinner_once_resolved

        with spinner_once_resolved(out, lambda ev: f"Restoring the tailscale state of {ev.container} ...") as on_event:
            report = api.state_restore(file, container=container, workspace=workspace, host=host, context=context,
                                       stop_daemon=stop_daemon, max_size=max_size, daemon_wait=daemon_wait, on_event=on_event)
        result, warnings, name = report.result, report.warnings, report.container
        for w in warnings:
            out.warn(w)
        st = result.status
        doc = {
            "ok": True,
            "container": name,
            "archive": report.archive,
            "files": result.files,
            "bytes": result.size,
            "layout": result.layout,
            "steps": list(result.steps),
            "daemon_restarted": result.daemon_restarted,
            "node_id": (st.self.id or None) if st else None,
            "node": _node_fields(st),
            "warnings": warnings,
        }
        rows = [("Container", name), ("From", report.archive), ("Restored", f"{files_text(result.files)}, {result.size} bytes"), ("Done", ", ".join(result.steps))]
        if st is not None:
            rows += [("Node ID", st.self.id or "-"), ("Hostname", st.self.host_name), ("State", st.backend_state)]
        out.emit(doc, out.panel(f"tailscale state of {name} restored", rows, style="yellow" if warnings else "green"), kind="state.restore")


# --- reset ---------------------------------------------------------------------


@task(
    auto_shortflags=False,
    help=_help(
        yes="Do not ask for confirmation (required when not on a terminal).",
        no_backup="Do not take a backup first (the identity is then gone for good).",
        no_logout="Do not log out: the node stays on the tailnet, so the backup can bring it back later.",
        output="Where the backup goes (a file or a folder). Default: tailscale-state-<project>-<UTC time>.tar here.",
        force="Replace --output if it exists.",
    )
)
def reset(c, yes=False, no_backup=False, no_logout=False, output=None, force=False, container=None, workspace=None, host=None, context=None, json=False):
    """Start over: back up, log the node out, stop tailscaled and empty /var/lib/tailscale. Asks first (--yes)."""
    out = _output(json)
    with boundary(out):
        from devc_tasks.core.errors import DevcError, UsageError
        from devc_tasks.shell.state.backup import backup_path, check_backup_target
        from devc_tasks.shell.state.reset import require_running
        from devc_tasks.shell.state.reset import reset as reset_state
        from devc_tasks.shell.state.transport import STATE_DIR

        sc = _open(container, workspace, host, context)
        require_running(sc, "state.reset")
        path = None if no_backup else backup_path(sc, output)
        if path is not None:
            check_backup_target(path, force=force)  # refused before anything is asked or done
        if not yes:
            if not sys.stdin.isatty():
                raise UsageError(
                    f"state.reset deletes the node's identity in {sc.name}; it asks for confirmation, and this run is not interactive",
                    fix="Pass --yes to confirm.",
                )
            what = "log the node out, " if not no_logout else ""
            saved = f"after a backup to {path}" if path else "WITHOUT a backup"
            if not out.confirm(f"Reset the tailscale state of {sc.name}: {what}stop tailscaled and empty {STATE_DIR}, {saved}?"):
                raise DevcError("not confirmed: nothing was changed")
        with out.waiting(f"Resetting the tailscale state of {sc.name} ..."):
            result = reset_state(sc, backup_to=path, force=force, logout=not no_logout, on_step=out.step)
        warnings: list[str] = list(result.warnings)
        if result.backup is not None:
            warnings.append(_KEYS_WARNING.format(path=result.backup.path))
            if result.logged_out:
                warnings.append(
                    "the node was logged out after the backup: the control server no longer accepts the backup's node key, "
                    "so restoring it gives a node that must log in again (use --no-logout to keep the node restorable)"
                )
        for w in warnings:
            out.warn(w)
        doc = {
            "ok": True,
            "container": sc.name,
            "steps": list(result.steps),
            "backup": str(result.backup.path) if result.backup else None,
            "node_id": result.node_id,
            "logged_out": result.logged_out,
            "removed": result.removed,
            "warnings": warnings,
        }
        rows = [("Container", sc.name), ("Done", ", ".join(result.steps)), ("Backup", str(result.backup.path) if result.backup else "none"), ("Next", "inv tailscale.up with an auth key joins as a new node")]
        out.emit(doc, out.panel(f"tailscale state of {sc.name} reset", rows), kind="state.reset")


TASKS = (show, backup, restore, reset)
