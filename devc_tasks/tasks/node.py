"""The node tasks: up, down, status, restart, logout, hostname."""

from __future__ import annotations

import os
from typing import Any

from invoke import task
from invoke.exceptions import Exit

from devc_tasks.core.errors import UsageError
from devc_tasks.tasks.api import API_HELP, config_tags, host_api, prepare_login
from devc_tasks.tasks.common import _help, _output, _seconds, _selectors, _setting, boundary
from devc_tasks.tasks.fleet import LABEL_HELP
from devc_tasks.tasks.node_all import ALL_HELP, ALL_TIMEOUT, ROW_TIMEOUT_HELP, all_row, down_all, status_all
from devc_tasks.tasks.node_report import report_change, report_dry_run, report_up, status_doc, status_error, status_rows

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
):
    """Connect the devcontainer to the tailnet (idempotent; opt-in through an auth key)."""
    out = _output(json)
    with boundary(out):
        from devc_tasks.core.plan import UpWish
        from devc_tasks.shell.keys import resolve_key
        from devc_tasks.shell.node import Node
        from devc_tasks.shell.state.mount import target_persistence_warning
        from devc_tasks.shell.target import resolve, wanted_hostname

        wait = _seconds(_setting(c, "timeout", timeout), "--timeout")
        daemon_wait = _seconds(_setting(c, "daemon_wait", None), "daemon_wait")  # settings first: a bad one fails before any work
        tags = config_tags(c, advertise_tags)
        if authkey_file == "-" and oauth_secret_file == "-":
            raise UsageError("--authkey-file and --oauth-secret-file cannot both read stdin", fix="Give one of them a file.")
        target = resolve(_selectors(container, workspace, host, context, local))
        choice = wanted_hostname(target, hostname)
        for w in choice.warnings:
            out.warn(w)
        api = host_api(c, out, hostname=choice.name, tags=tags, container=target.label, oauth_secret_file=oauth_secret_file, timeout=wait,
                       ephemeral=bool(_setting(c, "ephemeral", ephemeral or None)), key_expiry=key_expiry)
        minter = (f"minted through the Tailscale API ({api.settings.describe()})", api.mint) if api is not None else None
        key = resolve_key(authkey_file=authkey_file, host_env=os.environ, container_env=target.executor.env() if not local else {}, minter=minter)
        wish = UpWish(
            hostname=choice.name,
            ssh=ssh,
            accept_routes=accept_routes,
            advertise_tags=tags,
            timeout=wait,
            require_key=require_key,
            userspace=userspace,
            have_key=key.available,
        )
        node = Node(target.executor, on_step=out.step)
        if dry_run:
            from devc_tasks.core.plan import dry_run as plan_dry_run

            try:  # nothing is minted, revoked or deleted: the plan only names the key source
                report_dry_run(out, target, choice, key.source, plan_dry_run(node.probe(prefs=True), wish))
            finally:
                if api is not None:
                    api.close()
            return
        try:
            with out.waiting(f"Connecting {target.label} as {choice.name} ..."):
                if api is not None:
                    prepare_login(api, node, key, replace=bool(_setting(c, "replace", replace or None)))
                result = node.up(wish, key.load, daemon_wait=daemon_wait)
        finally:
            if api is not None:
                api.revoke()
        result.warnings[:0] = [w for w in (target_persistence_warning(target),) if w]
        extra = None
        if api is not None:
            extra = {"api": {**api.report(), "device": api.confirm(result.probe.status.self.id if result.probe and result.probe.status else None)}}
            api.close()
        report_up(out, target, result, key.source, extra)


@task(
    auto_shortflags=False,
    help=_help(
        logout="Also log out: the node leaves the tailnet and needs a key to come back.",
        all=ALL_HELP + " that runs: asks first (--yes); one that fails or hangs is an error row.",
        yes="With --all: do not ask for confirmation (required when not on a terminal).",
        timeout=ROW_TIMEOUT_HELP,
        label=LABEL_HELP,
    ),
)
def down(c, logout=False, all=False, yes=False, timeout=None, label=None, container=None, workspace=None, host=None, context=None, local=False, json=False):
    """Disconnect the node (tailscale down); it keeps its identity, so `up` needs no key."""
    out = _output(json)
    with boundary(out):
        if all:
            failed = down_all(out, host, context, logout=logout, yes=yes, timeout=_seconds(timeout or ALL_TIMEOUT, "--timeout"), label=label)
        else:
            from devc_tasks.shell.node import Node
            from devc_tasks.shell.target import resolve

            target = resolve(_selectors(container, workspace, host, context, local))
            after, done = Node(target.executor, on_step=out.step).down(logout=logout)
            report_change(out, target, after, done, kind="down")
            return
    if failed is not None:
        raise Exit(f"down --all: {failed.message}", code=failed.exit_code)


@task(auto_shortflags=False, help=_help())
def logout(c, container=None, workspace=None, host=None, context=None, local=False, json=False):
    """Log the node out: it leaves the tailnet (an ephemeral node is deleted)."""
    out = _output(json)
    with boundary(out):
        from devc_tasks.shell.node import Node
        from devc_tasks.shell.target import resolve

        target = resolve(_selectors(container, workspace, host, context, local))
        after, done = Node(target.executor, on_step=out.step).logout()
        report_change(out, target, after, done, kind="logout")


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
        from devc_tasks.shell.node import Node
        from devc_tasks.shell.target import resolve

        target = resolve(_selectors(container, workspace, host, context, local))
        probe = Node(target.executor).probe()
        error = status_error(probe)
        doc: dict[str, Any] = {"ok": error is None, **status_doc(target.label, probe)}
        if error is not None:
            doc["error"] = error.to_dict()
        out.emit(doc, out.panel(f"tailscale in {target.label}", status_rows(target.label, probe), style="green" if error is None else "red"), kind="status")
    if error is not None:
        raise Exit(error.message, code=error.exit_code)


# --- restart -----------------------------------------------------------------


@task(
    auto_shortflags=False,
    help=_help(
        hostname="Rename the node (default: keep its current name).",
        timeout="Seconds to wait for Running (default 60).",
        userspace="Restart tailscaled with userspace networking.",
    )
)
def restart(c, hostname=None, timeout=None, userspace=False, container=None, workspace=None, host=None, context=None, local=False, json=False):
    """Restart tailscaled in the container and reconnect from the state volume (no key; same node)."""
    out = _output(json)
    with boundary(out):
        from devc_tasks.core.plan import UpWish
        from devc_tasks.shell.node import Node
        from devc_tasks.shell.target import resolve, wanted_hostname

        wait = _seconds(_setting(c, "timeout", timeout), "--timeout")
        daemon_wait = _seconds(_setting(c, "daemon_wait", None), "daemon_wait")
        target = resolve(_selectors(container, workspace, host, context, local))
        # one hostname rule for every task: --hostname is sanitized as `up` does it. The node
        # keeps its own name unless --hostname is given; the derived name only serves a node
        # that has none yet.
        choice = wanted_hostname(target, hostname)
        if hostname is not None:
            for w in choice.warnings:
                out.warn(w)
        wish = UpWish(hostname=choice.name, timeout=wait, userspace=userspace)
        node = Node(target.executor, on_step=out.step)
        with out.waiting(f"Restarting tailscaled in {target.label} ..."):
            before, result = node.restart(wish, rename=hostname is not None, daemon_wait=daemon_wait)
        old_id = before.status.self.id if before.status else None
        new_id = result.probe.status.self.id if result.probe and result.probe.status else None
        if old_id and new_id and old_id != new_id:
            result.warnings.append(f"the node ID changed from {old_id} to {new_id}: the state volume did not keep the identity")
        report_up(out, target, result, None, kind="restart")


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
