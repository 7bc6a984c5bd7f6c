"""Every pre-flight check of a devcontainer, each with what was seen and the fix.

``run_checks`` is pure: it maps the ``Facts`` that ``shell/doctor_gather.py``
collected to one ``Check`` per row (``core/doctor_facts.py`` says what
pass/warn/fail/skip mean), and the task only renders them.
"""

from __future__ import annotations

import re

from devc_tasks.core.doctor_facts import FAIL, PASS, SKIP, WARN, Check, Facts, config_kind, daemon_gap, probe_gap, service_name
from devc_tasks.core.identity import BROKEN_STATE_FIX
from devc_tasks.core.outcome import INSTALL_FIX, collision
from devc_tasks.core.paths import SOCKET, STATE_DIR
from devc_tasks.core.persistence import persistence_problem
from devc_tasks.core.probe import CAP_NET_ADMIN, CAP_NET_RAW
from devc_tasks.core.secrets import redact

__all__ = ["run_checks"]


_KEY_FIX = (
    "Set TAILSCALE_AUTHKEY on the host (or in the container's environment), or pass "
    "`inv tailscale.up --authkey-file PATH`."
)


# --- the checks (pure) ---------------------------------------------------------------------------------


def _settings_fix(facts: Facts, key: str) -> str:
    from devc_tasks.core.compose_render import fix_text

    kind = config_kind(facts)
    text = fix_text((key,), kind=None if kind == "unknown" else kind, service=service_name(facts))
    return f"{text}\nthen rebuild the container (`inv tailscale.compose --check` checks the configuration)."


def check_engine(facts: Facts) -> Check:
    if facts.local:
        return Check(name="engine", status=SKIP, seen="--local: running inside the container, no engine used")
    if facts.engine_error is not None:
        return Check(name="engine", status=FAIL, seen=facts.engine_error.message, fix=facts.engine_error.fix)
    e = facts.engine
    if e is None:
        return Check(name="engine", status=SKIP, seen="not opened")
    where = "local" if e.local else "remote"
    at = f'context "{e.context}" at {e.url}' if e.context else f"at {e.url}"
    return Check(name="engine", status=PASS, seen=f"Docker {e.version or '(version unknown)'}, {where}, {at}")


def check_config(facts: Facts) -> Check:
    if not facts.config_read:
        return Check(
            name="config",
            status=SKIP,
            seen="not read: --container names the container (add --workspace DIR to check the configuration too)",
        )
    if facts.config_error is not None:
        return Check(name="config", status=FAIL, seen=facts.config_error.message, fix=facts.config_error.fix)
    c = facts.config
    if c is None:
        where = f"in {facts.workspace}" if facts.workspace else "from the current folder upward"
        return Check(
            name="config",
            status=WARN,
            seen=f"no devcontainer configuration {where}",
            fix="Run from the workspace folder or pass --workspace DIR; the hostname then falls back to the folder name.",
        )
    what = f"compose service {c.service!r}" if c.is_compose else "image/Dockerfile-based"
    return Check(name="config", status=PASS, seen=f"{c.path} (name {c.name!r}, {what})")


def check_container(facts: Facts) -> Check:
    if facts.local:
        return Check(name="container", status=SKIP, seen="--local: this machine is the container")
    if facts.engine is None:
        return Check(name="container", status=SKIP, seen="no Docker engine to ask")
    c = facts.container
    if c is not None:
        return Check(name="container", status=PASS, seen=f"{c.name} ({c.id[:12]}), found by {c.how}")
    err = facts.container_error
    if err is not None:
        return Check(name="container", status=FAIL, seen=err.message, fix=err.fix)
    return Check(name="container", status=SKIP, seen="not looked up")


def check_running(facts: Facts) -> Check:
    if facts.local:
        return Check(name="running", status=SKIP, seen="--local: this machine is the container")
    c = facts.container
    fix = "Start it first: `devcontainer up --workspace-folder DIR`, `docker compose up -d` or `docker start NAME`."
    if c is not None:
        if c.running:
            return Check(name="running", status=PASS, seen="running")
        return Check(name="running", status=FAIL, seen=f"{c.name} is {c.status}", fix=fix)
    return Check(name="running", status=SKIP, seen="no container")


def check_tun(facts: Facts) -> Check:
    gap = probe_gap(facts)
    if gap:
        return Check(name="tun", status=SKIP, seen=gap)
    assert facts.probe is not None
    if facts.probe.tun:
        return Check(name="tun", status=PASS, seen="/dev/net/tun is a character device")
    fix = _settings_fix(facts, "tun-device")
    if facts.userspace:
        return Check(name="tun", status=WARN, seen="/dev/net/tun is missing; --userspace needs none", fix=fix)
    return Check(name="tun", status=FAIL, seen="/dev/net/tun is missing (tailscaled exits without it)", fix=fix + "\nOr run `up --userspace` (userspace networking, no TUN needed).")


def _check_cap(facts: Facts, name: str, cap: str, bit: int) -> Check:
    gap = probe_gap(facts)
    if gap:
        return Check(name=name, status=SKIP, seen=gap)
    assert facts.probe is not None
    has = facts.probe.has_cap(bit)
    fix = _settings_fix(facts, f"cap-{cap.lower().replace('_', '-')}")
    if has is None:
        return Check(name=name, status=WARN, seen="unknown: CapEff not readable in /proc/self/status", fix=fix)
    capeff = f"CapEff {facts.probe.capeff:016x}"
    if has:
        return Check(name=name, status=PASS, seen=f"effective ({capeff})")
    if facts.userspace:
        return Check(name=name, status=WARN, seen=f"not effective ({capeff}); --userspace does without", fix=fix)
    return Check(name=name, status=FAIL, seen=f"not effective ({capeff})", fix=fix)


def check_net_admin(facts: Facts) -> Check:
    return _check_cap(facts, "net_admin", "NET_ADMIN", CAP_NET_ADMIN)


def check_net_raw(facts: Facts) -> Check:
    return _check_cap(facts, "net_raw", "NET_RAW", CAP_NET_RAW)


def check_state_volume(facts: Facts) -> Check:
    if facts.local:
        return Check(name="state_volume", status=SKIP, seen="--local: the mounts are visible from the host only (run doctor there)")
    m = facts.state_mount
    if m is None:
        return Check(name="state_volume", status=SKIP, seen="no container to inspect")
    problem = persistence_problem(m)
    if problem is not None:
        return Check(name="state_volume", status=WARN, seen=problem[0], fix=problem[1])
    at = f" at {STATE_DIR}" if m.destination == STATE_DIR else ""
    return Check(name="state_volume", status=PASS, seen=m.describe() + at)


def check_tailscale(facts: Facts) -> Check:
    gap = probe_gap(facts)
    if gap:
        return Check(name="tailscale", status=SKIP, seen=gap)
    p = facts.probe
    assert p is not None
    if p.tailscale is None:
        return Check(name="tailscale", status=FAIL, seen="not installed (not on PATH)", fix=INSTALL_FIX)
    return Check(name="tailscale", status=PASS, seen=f"{p.tailscale} (version {p.version or 'unknown'}, as the CLI reports)")


def check_tailscaled(facts: Facts) -> Check:
    gap = probe_gap(facts)
    if gap:
        return Check(name="tailscaled", status=SKIP, seen=gap)
    p = facts.probe
    assert p is not None
    if p.tailscaled is None and p.daemon_pid is None:
        return Check(name="tailscaled", status=FAIL, seen="not installed (not on PATH, nor in /usr/sbin, /usr/local/sbin, /usr/bin)", fix=INSTALL_FIX)
    where = p.tailscaled or f"running as pid {p.daemon_pid}"
    if p.daemon_version:
        where += f" (version {p.daemon_version}, as the running daemon reports)"
    return Check(name="tailscaled", status=PASS, seen=where)


def check_daemon(facts: Facts) -> Check:
    gap = daemon_gap(facts)
    if gap:
        return Check(name="daemon", status=SKIP, seen=gap)
    p = facts.probe
    assert p is not None
    if p.daemon_pid is not None:
        return Check(name="daemon", status=PASS, seen=f"tailscaled runs (pid {p.daemon_pid})")
    if p.tailscaled is None:
        return Check(name="daemon", status=SKIP, seen="tailscaled is not installed")
    return Check(
        name="daemon",
        status=WARN,
        seen="tailscaled is not running",
        fix="`inv tailscale.up` starts it (with a key, or when the state volume holds an identity).",
    )


def check_socket(facts: Facts) -> Check:
    gap = daemon_gap(facts)
    if gap:
        return Check(name="socket", status=SKIP, seen=gap)
    p = facts.probe
    assert p is not None
    if p.answering:
        return Check(name="socket", status=PASS, seen=f"{SOCKET} answers")
    if p.daemon_pid is None and not p.socket:
        return Check(name="socket", status=SKIP, seen="tailscaled is not running")
    said = redact(p.status_error or "")
    if p.socket:
        return Check(
            name="socket",
            status=WARN,
            seen=f"{SOCKET} exists but does not answer" + (f": {said}" if said else ""),
            fix="Restart the daemon: `inv tailscale.restart`.",
        )
    return Check(
        name="socket",
        status=WARN,
        seen=f"tailscaled runs (pid {p.daemon_pid}) but {SOCKET} is missing: it uses another socket path",
        fix=f"Restart it with --socket={SOCKET}: `inv tailscale.restart`.",
    )


_STATE_ADVICE: dict[str, tuple[str, str]] = {
    "Stopped": ("the node is down but keeps its identity", "`inv tailscale.up` brings it back without a key."),
    "NeedsLogin": ("the node is logged out", "`inv tailscale.up` with an auth key logs it in."),
    "NoState": ("the node has no state yet", "`inv tailscale.up` with an auth key logs it in."),
    "NeedsMachineAuth": ("the node waits for approval by a tailnet admin", "Approve the machine in the Tailscale admin console."),
    "Starting": ("the node is connecting", "Wait a moment, then check `inv tailscale.status`."),
}


def check_backend_state(facts: Facts) -> Check:
    gap = daemon_gap(facts)
    p = facts.probe
    if gap or p is None or p.status is None:
        return Check(name="backend_state", status=SKIP, seen=gap or "tailscaled does not answer")
    st = p.status
    if st.running:
        if st.health:
            return Check(
                name="backend_state",
                status=WARN,
                seen="Running; health: " + redact("; ".join(st.health)),
                fix="See `tailscale status` in the container for details.",
            )
        return Check(name="backend_state", status=PASS, seen="Running")
    if st.connecting:
        return Check(
            name="backend_state",
            status=WARN,
            seen=f"connecting ({st.backend_state} with a node key): the daemon waits for control's first network map",
            fix="Wait a moment; `inv tailscale.up` waits for it and never logs in again.",
        )
    if p.state_broken:
        return Check(name="backend_state", status=FAIL, seen="NoState: the state file is not valid JSON (tailscaled runs from memory)", fix=BROKEN_STATE_FIX)
    what, fix = _STATE_ADVICE.get(st.backend_state, (f"unexpected state {st.backend_state}", "Check `tailscale status` in the container."))
    return Check(name="backend_state", status=WARN, seen=f"{st.backend_state}: {what}", fix=fix)


def _wanted_text(facts: Facts) -> str:
    w = facts.wanted
    return f"{w.name} (from {w.source})" if w is not None else "unknown"


def check_hostname(facts: Facts) -> Check:
    if facts.wanted_error is not None:
        return Check(name="hostname", status=WARN, seen=facts.wanted_error.message, fix=facts.wanted_error.fix)
    if facts.wanted is None:
        return Check(name="hostname", status=SKIP, seen=daemon_gap(facts) or "the wanted hostname is unknown")
    warnings = "; ".join(facts.wanted.warnings)
    p = facts.probe
    st = p.status if p is not None else None
    if st is None or not st.logged_in:
        if warnings:
            return Check(name="hostname", status=WARN, seen=f"wanted {_wanted_text(facts)}; {warnings}", fix="Pass a valid --hostname (letters, digits, '-').")
        return Check(name="hostname", status=SKIP, seen=f"not logged in yet; up would use {_wanted_text(facts)}")
    assert p is not None  # st came from it
    actual = p.prefs.hostname if p.prefs is not None and p.prefs.hostname else st.self.host_name
    if actual != facts.wanted.name:
        return Check(
            name="hostname",
            status=WARN,
            seen=f"wanted {_wanted_text(facts)}, the node is {actual}",
            fix="`inv tailscale.up` renames it with `tailscale set` (no new login); or pass --hostname to match.",
        )
    if warnings:
        return Check(name="hostname", status=WARN, seen=f"{actual}; {warnings}", fix="Pass a valid --hostname (letters, digits, '-').")
    return Check(name="hostname", status=PASS, seen=f"{actual} (wanted, from {facts.wanted.source})")


def check_dns_name(facts: Facts) -> Check:
    p = facts.probe
    st = p.status if p is not None else None
    if st is None or not st.logged_in or not st.self.dns_name:
        reason = daemon_gap(facts) or ("tailscaled does not answer" if st is None else "no MagicDNS name yet (not logged in)")
        return Check(name="dns_name", status=SKIP, seen=reason)
    dns = st.self.magic_dns_name
    label = collision(st, facts.wanted.name if facts.wanted is not None else st.self.host_name)
    if label is None:
        return Check(name="dns_name", status=PASS, seen=dns)
    wanted = facts.wanted.name if facts.wanted is not None else st.self.host_name
    for name in dict.fromkeys((wanted.lower(), st.self.host_name.lower())):
        if re.fullmatch(re.escape(name) + r"-\d+", label.lower()):
            return Check(
                name="dns_name",
                status=WARN,
                seen=f"{dns}: another node already holds the name {name!r} (often an old copy of this container whose state was lost)",
                fix="Remove the stale node in the Tailscale admin console, then run `inv tailscale.restart` (or up again).",
            )
    return Check(
        name="dns_name",
        status=WARN,
        seen=f"{dns}, not {wanted}",
        fix="`inv tailscale.up` renames the node to the wanted hostname.",
    )


SSH_POLICY_HEALTH = "Tailscale SSH enabled, but"


def check_ssh(facts: Facts) -> Check:
    """`up` turns Tailscale SSH on by default; a tailnet policy that does not grant it makes
    every later `up`/`set` on the node fail ("not enabled on Tailnet")."""
    gap = daemon_gap(facts)
    p = facts.probe
    if gap or p is None or p.status is None:
        return Check(name="ssh", status=SKIP, seen=gap or "tailscaled does not answer")
    if p.prefs is None or not p.prefs.run_ssh:
        return Check(name="ssh", status=PASS, seen="off (--no-ssh)")
    said = [h for h in p.status.health if SSH_POLICY_HEALTH in h]
    if said:
        from devc_tasks.core.outcome import SSH_REFUSED_FIX

        return Check(
            name="ssh",
            status=WARN,
            seen="on, but the tailnet policy does not allow it on this node: " + redact(said[0]) + " (`up` and `set` then fail with \"not enabled on Tailnet\")",
            fix=SSH_REFUSED_FIX,
        )
    return Check(name="ssh", status=PASS, seen="on")


def check_auth_key(facts: Facts) -> Check:
    if facts.key_error is not None:
        return Check(name="auth_key", status=FAIL, seen=facts.key_error.message, fix=facts.key_error.fix)
    if facts.key_source:
        return Check(name="auth_key", status=PASS, seen=f"from {facts.key_source}")
    p = facts.probe
    if p is not None and p.has_identity:
        return Check(name="auth_key", status=PASS, seen="none, and none needed: the node has an identity (up reconnects without a key)")
    where = "here (TAILSCALE_AUTHKEY)" if facts.local else "on the host" if facts.container is None else "on the host or in the container"
    return Check(
        name="auth_key",
        status=WARN,
        seen=f"none {where}: up skips login (Tailscale is opt-in)",
        fix=_KEY_FIX,
    )


CHECKS = (
    check_engine,
    check_config,
    check_container,
    check_running,
    check_tun,
    check_net_admin,
    check_net_raw,
    check_state_volume,
    check_tailscale,
    check_tailscaled,
    check_daemon,
    check_socket,
    check_backend_state,
    check_ssh,
    check_hostname,
    check_dns_name,
    check_auth_key,
)


def run_checks(facts: Facts) -> list[Check]:
    """One result per check, in report order."""
    return [check(facts) for check in CHECKS]
