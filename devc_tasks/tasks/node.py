"""The node tasks: up, down, status, restart, logout, hostname."""

from __future__ import annotations

from typing import Any

from invoke import task
from invoke.exceptions import Exit

from devc_tasks.tasks.api import API_HELP, config_tags
from devc_tasks.tasks.common import EVENTS_HELP, _help, _output, _seconds, _selectors, _setting, boundary, config_section
from devc_tasks.tasks.fleet import LABEL_HELP
from devc_tasks.tasks.node_all import ALL_HELP, ALL_TIMEOUT, ROW_TIMEOUT_HELP, all_row, down_all, status_all
from devc_tasks.tasks.node_report import report_change, report_dry_run, report_up, status_doc, status_rows

# --- up ----------------------------------------------------------------------


@task(
    auto_shortflags=False,
    help=_help(
        hostname="Node name (default: <project>-devc-<host>; also TAILSCALE_HOSTNAME).",
        authkey_file="Read the auth key from this file ('-' for stdin). Default: TAILSCALE_AUTHKEY on the host, then in the container.",
        ssh="Tailscale SSH (on by default; --no-ssh turns it off).",
        accept_routes="Accept subnet routes advertised by other nodes.",
        advertise_tags="Comma-separated ACL tags to advertise, e.g. tag:dev.",
        timeout="Seconds to wait for login and for Running (default 60).",
        require_key="Fail (instead of skipping) when no key is available and the node has no identity.",
        userspace="Run tailscaled with userspace networking (no TUN device needed).",
        key_expiry="Seconds a key minted through the Tailscale API stays valid (default 600).",
        ephemeral="Mint an ephemeral key (the node is removed when it goes offline).",
        replace="Before logging in, delete this node's stale copies (offline, same name or name-N, same tags) so it gets the plain name.",
        **API_HELP,
        dry_run="Probe the container (one exec) and print the steps up would take, with their exact command lines, the hostname and the key source; change nothing.",
        events=EVENTS_HELP,
    )
)
def up(
    c,
    hostname=None,
    authkey_file=None,
    ssh=True,
    accept_routes=False,
    advertise_tags=None,
    timeout=None,
    require_key=False,
    userspace=False,
    key_expiry=None,
    ephemeral=False,
    replace=False,
    oauth_secret_file=None,
    dry_run=False,
    container=None,
    workspace=None,
    host=None,
    context=None,
    local=False,
    json=False,
    events=False,
):
    """Connect the devcontainer to the tailnet (idempotent; opt-in through an auth key)."""
    out = _output(json, events)
    with boundary(out):
        from devc_tasks import api

        args = dict(
            container=container, workspace=workspace, host=host, context=context, local=local,
            timeout=_seconds(_setting(c, "timeout", timeout), "--timeout"),
            daemon_wait=_seconds(_setting(c, "daemon_wait", None), "daemon_wait"),
            advertise_tags=config_tags(c, advertise_tags),
            hostname=hostname, authkey_file=authkey_file, ssh=ssh, accept_routes=accept_routes, require_key=require_key,
            userspace=userspace, key_expiry=key_expiry, oauth_secret_file=oauth_secret_file, api_config=config_section(getattr(c, "config", None)),
            ephemeral=bool(_setting(c, "ephemeral", ephemeral or None)), replace=bool(_setting(c, "replace", replace or None)),
        )
        if dry_run:  # nothing is minted, revoked or deleted: the plan only names the key source
            report_dry_run(out, api.plan(**args, on_event=out.on_event))
            return
        from devc_tasks.tasks.ui import spinner_once_resolved

        with spinner_once_resolved(out, lambda ev: f"Connecting {ev.container} as {ev.hostname} ...") as on_event:
            report = api.up(**args, on_event=on_event)
        report_up(out, report)


@task(
    auto_shortflags=False,
    help=_help(
        logout="Also log out: the node leaves the tailnet and needs a key to come back.",
        all=ALL_HELP + " that runs: asks first (--yes); one that fails or hangs is an error row.",
        yes="With --all: do not ask for confirmation (required when not on a terminal).",
        timeout=ROW_TIMEOUT_HELP,
        label=LABEL_HELP,
        events=EVENTS_HELP,
    ),
)
def down(c, logout=False, all=False, yes=False, timeout=None, label=None, container=None, workspace=None, host=None, context=None, local=False, json=False, events=False):
    """Disconnect the node (tailscale down); it keeps its identity, so `up` needs no key."""
    out = _output(json, events)
    with boundary(out):
        if all:
            failed = down_all(out, host, context, logout=logout, yes=yes, timeout=_seconds(timeout or ALL_TIMEOUT, "--timeout"), label=label)
        else:
            from devc_tasks import api

            report_change(out, api.down(container=container, workspace=workspace, host=host, context=context, local=local, logout=logout, on_event=out.on_event), kind="down")
            return
    if failed is not None:
        if events:
            out.error_event({"kind": failed.kind, "message": f"down --all: {failed.message}", "exit_code": failed.exit_code})
            raise Exit(code=failed.exit_code)
        raise Exit(f"down --all: {failed.message}", code=failed.exit_code)


@task(auto_shortflags=False, help=_help())
def logout(c, container=None, workspace=None, host=None, context=None, local=False, json=False):
    """Log the node out: it leaves the tailnet (an ephemeral node is deleted)."""
    out = _output(json)
    with boundary(out):
        from devc_tasks import api

        report_change(out, api.logout(container=container, workspace=workspace, host=host, context=context, local=local, on_event=out.on_event), kind="logout")


@task(
    auto_shortflags=False,
    help=_help(
        all=ALL_HELP + ": running ones probed, stopped ones with their container state; one that fails or hangs is an error row.",
        timeout=ROW_TIMEOUT_HELP,
        label=LABEL_HELP,
    ),
)
def status(c, all=False, timeout=None, label=None, container=None, workspace=None, host=None, context=None, local=False, json=False):
    """Show the node's state. Exit 0 when Running, 5 when not (stopped, logged out, daemon down), 21 when not installed."""
    out = _output(json)
    with boundary(out):
        if all:
            docs = status_all(host, context, _seconds(timeout or ALL_TIMEOUT, "--timeout"), label)
            out.emit({"ok": True, "containers": docs}, out.table("devcontainers", ["Container", "Container state", "Tailscale", "Hostname", "MagicDNS", "IPs"], [all_row(d) for d in docs]), kind="status.all")
            return
        from devc_tasks import api

        report = api.status(container=container, workspace=workspace, host=host, context=context, local=local)
        error = report.error
        doc: dict[str, Any] = {"ok": error is None, **status_doc(report.container, report.probe)}
        if error is not None:
            doc["error"] = error.to_dict()
        out.emit(doc, out.panel(f"tailscale in {report.container}", status_rows(report.container, report.probe), style="green" if error is None else "red"), kind="status")
    if error is not None:
        raise Exit(error.message, code=error.exit_code)


# --- restart -----------------------------------------------------------------


@task(
    auto_shortflags=False,
    help=_help(
        hostname="Rename the node (default: keep its current name).",
        timeout="Seconds to wait for Running (default 60).",
        userspace="Restart tailscaled with userspace networking.",
        events=EVENTS_HELP,
    )
)
def restart(c, hostname=None, timeout=None, userspace=False, container=None, workspace=None, host=None, context=None, local=False, json=False, events=False):
    """Restart tailscaled in the container and reconnect from the state volume (no key; same node)."""
    out = _output(json, events)
    with boundary(out):
        from devc_tasks import api

        # one hostname rule for every task: --hostname is sanitized as `up` does it. The node
        # keeps its own name unless --hostname is given; the derived name only serves a node
        # that has none yet.
        wait = _seconds(_setting(c, "timeout", timeout), "--timeout")
        daemon_wait = _seconds(_setting(c, "daemon_wait", None), "daemon_wait")
        from devc_tasks.tasks.ui import spinner_once_resolved

        with spinner_once_resolved(out, lambda ev: f"Restarting tailscaled in {ev.container} ...") as on_event:
            report = api.restart(container=container, workspace=workspace, host=host, context=context, local=local,
                                 hostname=hostname, timeout=wait, daemon_wait=daemon_wait, userspace=userspace, on_event=on_event)
        report_up(out, report, kind="restart")


# --- hostname ----------------------------------------------------------------


@task(auto_shortflags=False, help=_help(hostname="An override to check (as up --hostname)."))
def hostname(c, hostname=None, container=None, workspace=None, host=None, context=None, local=False, json=False):
    """Print the node name `up` would use, and where each part came from."""
    out = _output(json)
    with boundary(out):
        from devc_tasks.shell.target import resolve, wanted_hostname

        target = resolve(_selectors(container, workspace, host, context, local), optional=True)
        if target.engine is not None and target.found is None:
            out.warn("no container found: its TAILSCALE_HOSTNAME (if any) is not considered")
        choice = wanted_hostname(target, hostname)
        for w in choice.warnings:
            out.warn(w)
        doc = {
            "ok": True,
            "hostname": choice.name,
            "source": choice.source,
            "project": choice.project,
            "project_source": choice.project_source,
            "host": choice.host,
            "host_source": choice.host_source,
            "warnings": list(choice.warnings),
        }
        rows = [("Hostname", choice.name), ("From", choice.source)]
        if choice.project is not None:
            rows += [("Project part", f"{choice.project}  ({choice.project_source})"), ("Host part", f"{choice.host}  ({choice.host_source})")]

        details = "\n".join(f"{k}: {v}" for k, v in rows[1:])
        out.emit(doc, out.name_and_details(choice.name, details, rows), kind="hostname")


TASKS = (up, down, status, restart, logout, hostname)
