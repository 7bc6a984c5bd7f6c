"""The node tasks: up, down, status, restart, logout, hostname."""

from __future__ import annotations

import os
from typing import Any

from invoke import task
from invoke.exceptions import Exit

from devc_tasks.core.errors import DevcError, NotConnected, TailscaleNotInstalled, UsageError
from devc_tasks.core.identity import BROKEN_STATE_FIX
from devc_tasks.tasks.api import API_HELP, config_tags, host_api, prepare_login
from devc_tasks.tasks.common import _help, _output, _seconds, _selectors, _setting, boundary
from devc_tasks.tasks.fleet import LABEL_HELP

ALL_TIMEOUT = 20.0  # seconds one container of --all may take before its row is an error

_ALL_HELP = "Every devcontainer on the engine, concurrently, one row each"
_ROW_TIMEOUT_HELP = f"With --all: seconds each container may take before its row is an error (default {ALL_TIMEOUT:g})."


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
        from devc_tasks.core.secrets import resolve_key
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
                _report_dry_run(out, target, choice, key.source, plan_dry_run(node.probe(), wish))
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
        _report_up(out, target, result, key.source, extra)


def _report_dry_run(out: Any, target: Any, choice: Any, key_source: str | None, planned: Any) -> None:
    """The plan as data (--json) or as numbered lines; the key's source, never its value."""
    import shlex

    steps = [
        {"action": s.action, "argv": list(s.argv), "command": shlex.join(s.argv), "note": s.note, "when": s.when}
        for s in planned.steps
    ]
    doc: dict[str, Any] = {
        "ok": True,
        "dry_run": True,
        "container": target.label,
        "outcome": planned.outcome,
        "reason": planned.reason,
        "hostname": choice.name,
        "hostname_source": choice.source,
        "hostname_project": choice.project,
        "hostname_project_source": choice.project_source,
        "hostname_host": choice.host,
        "hostname_host_source": choice.host_source,
        "key_source": key_source,
        "key_needed": planned.uses_key,
        "steps": steps,
    }
    origin = choice.source
    if choice.project is not None:
        origin += f": {choice.project} ({choice.project_source}) + {choice.host} ({choice.host_source})"
    if planned.uses_key:
        key_line = f"{key_source} (read only for the login step)"
    else:
        key_line = f"not needed ({key_source or 'none available'})"
    lines = [
        f"Dry run for {target.label}: nothing was changed.",
        f"Hostname: {choice.name}  (from {origin})",
        f"Key:      {key_line}",
    ]
    if planned.outcome == "already-connected":
        lines.append("Plan:     nothing to do: the node is Running with the wanted settings.")
    elif planned.outcome == "skipped":
        lines.append(f"Plan:     skip: {planned.reason}.")
    else:
        lines.append("Plan:")
        for i, s in enumerate(planned.steps, 1):
            lines.append(f"  {i}. {s.action}" + (f"  [{s.when}]" if s.when else ""))
            lines.append(f"     {shlex.join(s.argv)}")
            if s.note:
                lines.append(f"     ({s.note})")
    out.emit(doc, out.lines("\n".join(lines)))


def _ssh_user(target: Any) -> str:
    return getattr(target.config, "remote_user", None) or "root"


def _report_up(out: Any, target: Any, result: Any, key_source: str | None, extra: dict[str, Any] | None = None) -> None:
    from devc_tasks.tasks.ui import node_doc

    status = result.probe.status if result.probe else None
    doc: dict[str, Any] = {
        "ok": True,
        "outcome": result.outcome,
        "container": target.label,
        "wanted_hostname": result.wanted_hostname,
        "key_source": key_source if result.used_key else None,
        "steps": result.steps,
        "warnings": result.warnings,
        "node": node_doc(status),
        **(extra or {}),
    }
    for w in result.warnings:
        out.warn(w)
    if result.outcome == "skipped":
        doc["reason"] = result.skip_reason
        out.emit(doc, out.lines(f"Tailscale skipped for {target.label}: {result.skip_reason}."))
        return
    assert status is not None
    dns = status.self.magic_dns_name
    ssh = f"ssh {_ssh_user(target)}@{dns or status.self.host_name}"
    doc["ssh"] = ssh
    rows = [
        ("Hostname", status.self.host_name),
        ("MagicDNS", dns or "-"),
        ("IPs", ", ".join(status.tailscale_ips or status.self.tailscale_ips) or "-"),
        ("SSH", ssh),
        ("State", status.backend_state),
    ]
    peer = _host_peer(status)
    doc["host_peer"] = peer
    if peer is not None:
        rows.append(("This host", _HOST_PEER_WORDS[(peer["self"], peer["seen"], peer["online"])]))
    title = f"{target.label}: " + ("already connected" if result.outcome == "already-connected" else "connected")
    out.emit(doc, out.panel(title, rows, style="yellow" if result.warnings else "green"))


_HOST_PEER_WORDS = {
    (True, True, True): "is this node",
    (False, True, True): "sees it as an online peer",
    (False, True, False): "sees it as a peer, offline",
    (False, False, False): "does not see it (another tailnet, or an ACL hides it)",
}


def _host_peer(status: Any) -> dict[str, Any] | None:
    """Whether the host's own tailscale client sees the node online; None (quietly) without one."""
    from devc_tasks.shell.hostpeer import host_peer

    return host_peer(status.self.id, status.self.public_key, env=os.environ)


# --- down / logout -----------------------------------------------------------


def _report_change(out: Any, target: Any, after: Any, done: list[str]) -> None:
    from devc_tasks.tasks.ui import node_doc

    doc = {"ok": True, "container": target.label, "done": done, "node": node_doc(after.status)}
    state = after.status.backend_state if after.status else "daemon not running"
    out.emit(doc, out.lines(f"{target.label}: {', '.join(done)} (state: {state})."))


@task(
    auto_shortflags=False,
    help=_help(
        logout="Also log out: the node leaves the tailnet and needs a key to come back.",
        all=_ALL_HELP + " that runs: asks first (--yes); one that fails or hangs is an error row.",
        yes="With --all: do not ask for confirmation (required when not on a terminal).",
        timeout=_ROW_TIMEOUT_HELP,
        label=LABEL_HELP,
    ),
)
def down(c, logout=False, all=False, yes=False, timeout=None, label=None, container=None, workspace=None, host=None, context=None, local=False, json=False):
    """Disconnect the node (tailscale down); it keeps its identity, so `up` needs no key."""
    out = _output(json)
    with boundary(out):
        if all:
            failed = _down_all(out, host, context, logout=logout, yes=yes, timeout=_seconds(timeout or ALL_TIMEOUT, "--timeout"), label=label)
        else:
            from devc_tasks.shell.node import Node
            from devc_tasks.shell.target import resolve

            target = resolve(_selectors(container, workspace, host, context, local))
            after, done = Node(target.executor, on_step=out.step).down(logout=logout)
            _report_change(out, target, after, done)
            return
    if failed is not None:
        raise Exit(f"down --all: {failed.message}", code=failed.exit_code)


def _down_all(out: Any, host: str | None, context: str | None, *, logout: bool, yes: bool, timeout: float, label: str | None = None) -> DevcError | None:
    """`down` in every running devcontainer at once, after asking; the first row's error, if any."""
    import sys

    from devc_tasks.core.errors import UsageError
    from devc_tasks.shell.executors import DockerExecutor
    from devc_tasks.tasks.fleet import Clamped, list_devcontainers, run_each
    from devc_tasks.tasks.ui import node_doc

    engine, infos = list_devcontainers(host, context, label)
    running = [i for i in infos if i.running]
    what = "log out" if logout else "disconnect"
    if running and not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"down --all would {what} {len(running)} devcontainer(s); it asks for confirmation, and this run is not interactive",
                fix="Pass --yes to confirm.",
            )
        names = ", ".join(i.name for i in running)
        if not out.confirm(f"{what.capitalize()} tailscale in {len(running)} devcontainer(s): {names}?"):
            raise DevcError("not confirmed: nothing was changed")

    def one(info: Any) -> Any:
        from devc_tasks.shell.node import Node

        executor = DockerExecutor(client=engine.client, container_id=info.id, description=f"container {info.name}")
        return Node(Clamped(executor, timeout)).down(logout=logout)

    docs: list[dict[str, Any]] = []
    first: DevcError | None = None
    for row in run_each(running, one, timeout=timeout, what=f"`tailscale {'logout' if logout else 'down'}`"):
        if row.error is not None:
            first = first or row.error
            docs.append(_all_doc(row.item, ok=False, error=row.error.message, error_kind=row.error.kind))
        else:
            after, done = row.value  # type: ignore[misc]  # value is set when error is None
            docs.append(_all_doc(row.item, ok=True, done=done, **node_doc(after.status)))
    rows = [(d["container"], ", ".join(d.get("done") or []) or "-", d.get("error") or (d.get("backend_state") or "daemon down")) for d in docs]
    out.emit({"ok": first is None, "containers": docs}, out.table(f"down --all ({len(docs)} running devcontainers)", ["Container", "Done", "State / error"], rows))
    return first


@task(auto_shortflags=False, help=_help())
def logout(c, container=None, workspace=None, host=None, context=None, local=False, json=False):
    """Log the node out: it leaves the tailnet (an ephemeral node is deleted)."""
    out = _output(json)
    with boundary(out):
        from devc_tasks.shell.node import Node
        from devc_tasks.shell.target import resolve

        target = resolve(_selectors(container, workspace, host, context, local))
        after, done = Node(target.executor, on_step=out.step).logout()
        _report_change(out, target, after, done)


# --- status ------------------------------------------------------------------


def _status_rows(target_label: str, probe: Any) -> list[tuple[str, str]]:
    st = probe.status
    if st is None:
        why = "tailscale not installed" if probe.tailscale is None else "tailscaled not running"
        return [("Container", target_label), ("State", why)]
    me = st.self
    return [
        ("Container", target_label),
        ("State", st.state_label),
        ("Hostname", me.host_name),
        ("MagicDNS", me.magic_dns_name or "-"),
        ("IPs", ", ".join(st.tailscale_ips or me.tailscale_ips) or "-"),
        ("Online", "yes" if me.online else "no"),
        ("Peers", "-" if st.peers is None else str(st.peers)),
        ("Health", "; ".join(st.health) or "ok"),
    ]


def _status_doc(label: str, probe: Any) -> dict[str, Any]:
    from devc_tasks.tasks.ui import node_doc

    return {"container": label, "installed": probe.tailscale is not None, **node_doc(probe.status)}


def _status_error(probe: Any) -> DevcError | None:
    """Why `status` does not exit 0: not installed (21), or not Running (5)."""
    from devc_tasks.core.plan import INSTALL_FIX  # plan (and status) only when a status is rendered

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


@task(
    auto_shortflags=False,
    help=_help(
        all=_ALL_HELP + ": running ones probed, stopped ones with their container state; one that fails or hangs is an error row.",
        timeout=_ROW_TIMEOUT_HELP,
        label=LABEL_HELP,
    ),
)
def status(c, all=False, timeout=None, label=None, container=None, workspace=None, host=None, context=None, local=False, json=False):
    """Show the node's state. Exit 0 when Running, 5 when not (stopped, logged out, daemon down), 21 when not installed."""
    out = _output(json)
    with boundary(out):
        if all:
            docs = _status_all(host, context, _seconds(timeout or ALL_TIMEOUT, "--timeout"), label)
            out.emit({"ok": True, "containers": docs}, out.table("devcontainers", ["Container", "Container state", "Tailscale", "Hostname", "MagicDNS", "IPs"], [_all_row(d) for d in docs]))
            return
        from devc_tasks.shell.node import Node
        from devc_tasks.shell.target import resolve

        target = resolve(_selectors(container, workspace, host, context, local))
        probe = Node(target.executor).probe()
        error = _status_error(probe)
        doc: dict[str, Any] = {"ok": error is None, **_status_doc(target.label, probe)}
        if error is not None:
            doc["error"] = error.to_dict()
        out.emit(doc, out.panel(f"tailscale in {target.label}", _status_rows(target.label, probe), style="green" if error is None else "red"))
    if error is not None:
        raise Exit(error.message, code=error.exit_code)


def _all_row(d: dict[str, Any]) -> tuple[str, ...]:
    """One row of `status --all`: a stopped container shows its state and no node."""
    if d.get("error"):
        tailscale = d["error"]
    elif d["container_state"] != "running":
        tailscale = "-"
    elif not d["installed"]:
        tailscale = "not installed"
    else:
        tailscale = d.get("backend_state") or "daemon down"
    return (d["container"], d["container_state"], tailscale, d.get("hostname") or "-", d.get("dns_name") or "-", ", ".join(d.get("ips") or []) or "-")


# every `status --all --json` row has these keys (None when unknown), whatever its state
_ROW_KEYS = ("hostname", "dns_name", "ips", "online")


def _all_doc(info: Any, **fields: Any) -> dict[str, Any]:
    from devc_tasks.core.container_choice import LABEL_LOCAL_FOLDER

    doc = {"container": info.name, "workspace": info.labels.get(LABEL_LOCAL_FOLDER), "container_state": info.status, **fields}
    for k in _ROW_KEYS:
        doc.setdefault(k, None)
    return doc


def _status_all(host: str | None, context: str | None, timeout: float, label: str | None = None) -> list[dict[str, Any]]:
    """One document per devcontainer, stopped ones included (with their container state;
    they cannot be probed). Running ones are probed concurrently; one that cannot be probed,
    or does not answer within ``timeout``, gets an error row and holds up no other."""
    from devc_tasks.shell.executors import DockerExecutor
    from devc_tasks.shell.node import Node
    from devc_tasks.tasks.fleet import Clamped, list_devcontainers, run_each
    from devc_tasks.tasks.ui import node_doc

    engine, infos = list_devcontainers(host, context, label)
    running = [i for i in infos if i.running]

    def probe(info: Any) -> Any:
        executor = DockerExecutor(client=engine.client, container_id=info.id, description=f"container {info.name}")
        return Node(Clamped(executor, timeout)).probe()

    probed = {row.item.id: row for row in run_each(running, probe, timeout=timeout, what="the probe")}
    docs: list[dict[str, Any]] = []
    for info in infos:
        row = probed.get(info.id)
        if row is None:
            docs.append(_all_doc(info, installed=None, **node_doc(None)))
        elif row.error is not None:
            docs.append(_all_doc(info, installed=None, error=row.error.message, error_kind=row.error.kind))
        else:
            docs.append(_all_doc(info, **_status_doc(info.name, row.value)))
    return docs


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
        _report_up(out, target, result, None)


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
        out.emit(doc, out.name_and_details(choice.name, details, rows))


TASKS = (up, down, status, restart, logout, hostname)
