"""How the node tasks report: one ``up`` (or its dry run), a change (down, logout), a
status. Rendering only; the work is done by the time these run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devc_tasks.api.plan import PlanReport
    from devc_tasks.api.types import ChangeReport, UpReport

__all__ = ["report_up", "report_dry_run", "report_change", "status_rows", "status_doc"]


def report_dry_run(out: Any, report: PlanReport) -> None:
    """The plan as data (--json) or as numbered lines; the key's source, never its value."""
    import shlex

    choice, key_source, planned = report.hostname, report.key_source, report.plan

    steps = [
        {"action": s.action, "argv": list(s.argv), "command": shlex.join(s.argv), "note": s.note, "when": s.when}
        for s in planned.steps
    ]
    doc: dict[str, Any] = {
        "ok": True,
        "dry_run": True,
        "container": report.container,
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
        f"Dry run for {report.container}: nothing was changed.",
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
    out.emit(doc, out.lines("\n".join(lines)), kind="up.dry-run")


def report_up(out: Any, report: UpReport, *, kind: str = "up") -> None:
    from devc_tasks.tasks.ui import node_doc

    result, status = report.result, report.status
    doc: dict[str, Any] = {
        "ok": True,
        "outcome": result.outcome,
        "container": report.container,
        "wanted_hostname": result.wanted_hostname,
        "key_source": report.key_source,
        "steps": result.steps,
        "warnings": result.warnings,
        "node": node_doc(status),
        **({"api": report.api} if report.api is not None else {}),
    }
    for w in result.warnings:
        out.warn(w)
    if result.outcome == "skipped":
        doc["reason"] = result.skip_reason
        out.emit(doc, out.lines(f"Tailscale skipped for {report.container}: {result.skip_reason}."), kind=kind)
        return
    assert status is not None
    dns = status.self.magic_dns_name
    prefs = result.probe.prefs if result.probe else None
    # without Tailscale SSH (--no-ssh) the node has no ssh line to give; prefs unknown: assume on
    ssh = f"ssh {report.ssh_user}@{dns or status.self.host_name}" if prefs is None or prefs.run_ssh else None
    doc["ssh"] = ssh
    rows = [
        ("Hostname", status.self.host_name),
        ("MagicDNS", dns or "-"),
        ("IPs", ", ".join(status.tailscale_ips or status.self.tailscale_ips) or "-"),
        ("SSH", ssh or "off (Tailscale SSH not enabled)"),
        ("State", status.backend_state),
    ]
    peer = report.host_peer
    doc["host_peer"] = peer
    if peer is not None:
        rows.append(("This host", _HOST_PEER_WORDS[(peer["self"], peer["seen"], peer["online"])]))
    title = f"{report.container}: " + ("already connected" if result.outcome == "already-connected" else "connected")
    out.emit(doc, out.panel(title, rows, style="yellow" if result.warnings else "green"), kind=kind)


_HOST_PEER_WORDS = {
    (True, True, True): "is this node",
    (False, True, True): "sees it as an online peer",
    (False, True, False): "sees it as a peer, offline",
    (False, False, False): "does not see it (another tailnet, or an ACL hides it)",
}


# --- down / logout -----------------------------------------------------------


def report_change(out: Any, report: ChangeReport, *, kind: str) -> None:
    from devc_tasks.tasks.ui import node_doc

    after, done = report.node, report.done
    doc = {"ok": True, "container": report.container, "done": done, "node": node_doc(after.status)}
    state = after.status.backend_state if after.status else "daemon not running"
    out.emit(doc, out.lines(f"{report.container}: {', '.join(done)} (state: {state})."), kind=kind)


# --- status ------------------------------------------------------------------


def status_rows(target_label: str, probe: Any) -> list[tuple[str, str]]:
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


def status_doc(label: str, probe: Any) -> dict[str, Any]:
    from devc_tasks.tasks.ui import node_doc

    return {"container": label, "installed": probe.tailscale is not None, **node_doc(probe.status)}
