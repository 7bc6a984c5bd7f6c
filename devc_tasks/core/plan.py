"""The connect logic as data: from one probe, decide the next step.

Everything here is pure. ``next_step`` maps (probe, wish) to one step (the probe
is gathered by ``core/scripts.PROBE_SCRIPT`` and parsed by ``core/probe``); the
``*_argv`` functions build every tailscale/tailscaled command line. The shell
(``shell/node.Node.up``) runs a step, probes again, and asks for the next one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from devc_tasks.core.compose_render import fix_text
from devc_tasks.core.errors import DaemonFailed, DevcError, KeyRequired, LoginRejected, StateVolumeError, TailscaleFailed, TailscaleNotInstalled, TunMissing
from devc_tasks.core.identity import BROKEN_STATE_FIX
from devc_tasks.core.outcome import INSTALL_FIX
from devc_tasks.core.paths import DAEMON_LOG, SOCKET, STATE_FILE
from devc_tasks.core.probe import Probe
from devc_tasks.core.status import Prefs, Status, exit_node_ip, prefs_to_flags

__all__ = ["UpWish", "Step", "Done", "Skip", "Fail", "StartDaemon", "WaitRunning", "Login", "Connect", "ApplySettings", "next_step", "tailscaled_argv", "up_argv", "bare_up_argv", "set_argv", "settings_diff", "lan_restore", "unknown_exit_node", "tun_fix", "DryRun", "PlannedStep", "dry_run"]

@dataclass(frozen=True, kw_only=True)
class UpWish:
    """What the user asked `up` for, validated once by the task layer."""

    hostname: str
    ssh: bool = True
    accept_routes: bool = False
    advertise_tags: tuple[str, ...] = ()
    timeout: float = 60.0
    require_key: bool = False
    userspace: bool = False
    have_key: bool = False


# --- steps -----------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One thing to do next; ``describe`` is what the user sees."""

    def describe(self) -> str:
        return type(self).__name__


@dataclass(frozen=True)
class Done(Step):
    def describe(self) -> str:
        return "connected"


@dataclass(frozen=True)
class Skip(Step):
    reason: str

    def describe(self) -> str:
        return f"skipped: {self.reason}"


@dataclass(frozen=True)
class Fail(Step):
    error: DevcError


@dataclass(frozen=True)
class StartDaemon(Step):
    argv: tuple[str, ...]

    def describe(self) -> str:
        return "start tailscaled" + (" (userspace networking)" if "--tun=userspace-networking" in self.argv else "")


@dataclass(frozen=True)
class WaitRunning(Step):
    def describe(self) -> str:
        return "wait for Running"


@dataclass(frozen=True)
class Login(Step):
    """``tailscale up`` with the key on stdin: the node must register."""

    argv: tuple[str, ...]
    then: tuple[str, ...] = ()  # a `tailscale set` that restores what `up` could not say (``lan_restore``)

    def describe(self) -> str:
        return "log in with the auth key"


@dataclass(frozen=True)
class Connect(Step):
    """``tailscale up`` without a key: the node has an identity and is stopped."""

    argv: tuple[str, ...]
    then: tuple[str, ...] = ()  # a `tailscale set` that restores what `up` could not say (``lan_restore``)

    def describe(self) -> str:
        return "bring the node up (no key needed)"


@dataclass(frozen=True)
class ApplySettings(Step):
    """``tailscale set`` for a logged-in node whose settings differ."""

    argv: tuple[str, ...]
    changes: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        return "change " + ", ".join(self.changes)


# --- argv builders ---------------------------------------------------------


def tailscaled_argv(path: str, *, userspace: bool) -> tuple[str, ...]:
    argv = (path, f"--state={STATE_FILE}", f"--socket={SOCKET}")
    return argv + (("--tun=userspace-networking",) if userspace else ())


def _flag(name: str, on: bool) -> str:
    return f"--{name}" if on else f"--{name}=false"


def _timeout(seconds: float) -> str:
    """A Go duration, rounded up to whole milliseconds: ``0ms`` would mean no timeout at all."""
    ms = max(1, math.ceil(round(seconds * 1000, 6)))
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


MANAGED_FLAGS = ("hostname", "ssh", "accept-routes", "advertise-tags")


def _keep_flag(name: str, value: str | bool) -> str:
    if value is True:
        return f"--{name}"
    if value is False:
        return f"--{name}=false"
    return f"--{name}={value}"


def up_argv(cli: str, wish: UpWish, *, with_key: bool, prefs: Prefs | None = None, status: Status | None = None) -> tuple[str, ...]:
    """Any flag makes `tailscale up` check every pref flag (``checkForAccidentalSettingReverts``),
    so the managed settings are mentioned explicitly and every other non-default setting
    the node has (``prefs``, as `debug prefs` shows it) is repeated as it is, the exit node
    by its peer's IP in ``status``; the key, when there is one, is read from stdin."""
    argv = [
        cli,
        f"--socket={SOCKET}",
        "up",
        f"--hostname={wish.hostname}",
        _flag("ssh", wish.ssh),
        _flag("accept-routes", wish.accept_routes),
        f"--advertise-tags={','.join(wish.advertise_tags)}",
    ]
    if prefs is not None and not prefs.logged_out:
        kept = prefs_to_flags(prefs, exit_node_ip(prefs, status))
        if kept.get("exit-node-allow-lan-access") and not kept.get("exit-node"):
            # up.go prefsFromUpArgs refuses --exit-node-allow-lan-access without --exit-node;
            # off has no effect without an exit node, and `lan_restore` sets it back after
            kept["exit-node-allow-lan-access"] = False
        argv += [_keep_flag(k, v) for k, v in sorted(kept.items()) if k not in MANAGED_FLAGS]
    argv.append(f"--timeout={_timeout(wish.timeout)}")
    if with_key:
        argv.append("--auth-key=file:/dev/stdin")
    return tuple(argv)


def lan_restore(cli: str, prefs: Prefs | None, status: Status | None) -> tuple[str, ...]:
    """The `tailscale set --exit-node-allow-lan-access` to run after an `up` that had to say
    ``=false`` because the status names no exit node (set alone with `set`, or its peer has
    gone); `set` takes the flag alone (cli/set.go runSet). () when nothing is to restore."""
    if prefs is None or prefs.logged_out or not prefs.exit_node_allow_lan_access:
        return ()
    if exit_node_ip(prefs, status):
        return ()
    return set_argv(cli, {"exit-node-allow-lan-access": "--exit-node-allow-lan-access"})


def unknown_exit_node(prefs: Prefs | None, status: Status) -> DevcError | None:
    """An exit node set by IP that no peer has: while Running, `tailscale up` refuses to
    repeat it (ipn/prefs.go exitNodeIPOfArg: "no node found in netmap with IP"), and there
    is no flag to keep it, so a tag change cannot go through until the user decides."""
    if prefs is None or not prefs.exit_node_ip or status.backend_state != "Running":
        return None
    if any(ip == prefs.exit_node_ip for _, ip in status.peer_ips):
        return None
    ip = prefs.exit_node_ip
    return TailscaleFailed(
        f"the exit node {ip} set in the container is not a peer in the tailnet, so `tailscale up` "
        "cannot keep it while it changes the tags",
        fix=f"Clear it with `tailscale set --exit-node=` in the container (or bring the node {ip} back into the tailnet), then run up again.",
    )


def bare_up_argv(cli: str) -> tuple[str, ...]:
    """`tailscale up` with no flag at all: on a logged-in node it is a "simple up" that
    only sets WantRunning and never trips over the non-default-flags rule. It blocks until
    Running; the exec's own deadline bounds it (a flag such as --timeout would end the
    "simple up")."""
    return (cli, f"--socket={SOCKET}", "up")


def settings_diff(prefs: Prefs | None, status: Status, wish: UpWish) -> dict[str, str]:
    """The `tailscale set` flags that would make the node match the wish."""
    diff: dict[str, str] = {}
    current_host = prefs.hostname if prefs is not None else status.self.host_name
    if current_host != wish.hostname:
        diff["hostname"] = f"--hostname={wish.hostname}"
    if prefs is not None:
        if prefs.run_ssh != wish.ssh:
            diff["ssh"] = _flag("ssh", wish.ssh)
        if prefs.route_all != wish.accept_routes:
            diff["accept-routes"] = _flag("accept-routes", wish.accept_routes)
        if tuple(sorted(prefs.advertise_tags)) != tuple(sorted(wish.advertise_tags)):
            diff["advertise-tags"] = f"--advertise-tags={','.join(wish.advertise_tags)}"
    return diff


def set_argv(cli: str, flags: dict[str, str]) -> tuple[str, ...]:
    """`tailscale set` has no non-default-flags rule. Turning SSH off is what the user
    asked for: accept the lose-ssh risk so the CLI never stops to ask."""
    extra = ("--accept-risk=lose-ssh",) if "ssh" in flags else ()
    return (cli, f"--socket={SOCKET}", "set", *flags.values(), *extra)


def tun_fix() -> str:
    return (
        "The container has no TUN device (or lacks NET_ADMIN). "
        + fix_text(("tun-device", "cap-net-admin", "cap-net-raw"))
        + "\nthen rebuild the container. Or pass --userspace to run tailscaled without TUN (userspace networking)."
    )


# --- the planner -----------------------------------------------------------


def next_step(probe: Probe, wish: UpWish) -> Step:
    """Decide the one next step of `up` from what the probe saw."""
    if probe.tailscale is None:
        return Fail(TailscaleNotInstalled("the `tailscale` CLI is not installed in the container", fix=INSTALL_FIX))
    status = probe.status
    if probe.state_broken:
        return Fail(StateVolumeError("the state file is not valid JSON: tailscaled cannot read the node's identity", fix=BROKEN_STATE_FIX))
    if status is None:
        # The daemon is down (or not answering). Only start it when there is
        # something to connect: a key, or an identity in the state file.
        if not wish.have_key and not probe.has_identity:
            return _no_key(wish)
        if probe.tailscaled is None and probe.daemon_pid is None:
            return Fail(TailscaleNotInstalled("`tailscaled` is not installed in the container", fix=INSTALL_FIX))
        if not probe.tun and not wish.userspace and probe.daemon_pid is None:
            return Fail(TunMissing("no TUN device in the container: /dev/net/tun is not a character device", fix=tun_fix()))
        if probe.uid not in (0, None) and probe.daemon_pid is None:
            return Fail(
                DaemonFailed(
                    f"tailscaled must run as root, and this runs as uid {probe.uid}",
                    fix="Run it as root: `sudo devc-tasks tailscale.up --local ...` (e.g. a postStartCommand with sudo), or from the host through the Engine.",
                )
            )
        return StartDaemon(tailscaled_argv(probe.tailscaled or "tailscaled", userspace=wish.userspace))
    state = status.backend_state
    if state == "Running":
        diff = settings_diff(probe.prefs, status, wish)
        if "advertise-tags" in diff:
            # `tailscale set` has no --advertise-tags: `up` with every managed flag and
            # every other non-default setting mentioned
            stuck = unknown_exit_node(probe.prefs, status)
            if stuck is not None:
                return Fail(stuck)
            argv = up_argv(probe.tailscale, wish, with_key=False, prefs=probe.prefs, status=status)
            return Connect(argv, then=lan_restore(probe.tailscale, probe.prefs, status))
        if diff:
            return ApplySettings(set_argv(probe.tailscale, diff), tuple(diff))
        return Done()
    if state == "Starting" or status.connecting:
        # NoState with a node key: the daemon just started and waits for its first
        # network map; it logs in by itself with the stored key
        return WaitRunning()
    if state == "Stopped" and status.logged_in:
        # a bare `up` brings it back; settings are changed with `set` once it runs
        return Connect(bare_up_argv(probe.tailscale))
    if state in ("NeedsLogin", "Stopped", "NoState"):
        if not wish.have_key:
            return _no_key(wish)
        argv = up_argv(probe.tailscale, wish, with_key=True, prefs=probe.prefs, status=status)
        return Login(argv, then=lan_restore(probe.tailscale, probe.prefs, status))
    if state == "NeedsMachineAuth":
        return Fail(LoginRejected("the node is logged in but waits for approval by a tailnet admin", fix="Approve the machine in the Tailscale admin console, then run up again."))
    return Fail(TailscaleFailed(f"tailscaled reports backend state {state!r}", fix="Check `tailscale status` in the container."))


def _no_key(wish: UpWish) -> Step:
    if wish.require_key:
        return Fail(
            KeyRequired(
                "no auth key and the node has no identity yet (--require-key was given)",
                fix="Give a key with --authkey-file PATH (or - for stdin), or set TAILSCALE_AUTHKEY on the host or in the container.",
            )
        )
    return Skip("no auth key (TAILSCALE_AUTHKEY / --authkey-file) and no node identity yet; Tailscale is opt-in")



# --- dry run ---------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PlannedStep:
    """One step `up` would take, with the exact command line it would run."""

    action: str
    argv: tuple[str, ...]
    note: str | None = None  # how it runs (detached, key on stdin, polled)
    when: str | None = None  # None: for certain; else the condition, known only after an earlier step


@dataclass(frozen=True, kw_only=True)
class DryRun:
    outcome: str  # "would-connect", "already-connected", "skipped"
    steps: tuple[PlannedStep, ...] = ()
    reason: str | None = None  # why skipped

    @property
    def uses_key(self) -> bool:
        """A login is planned (certain or conditional): the key would be read."""
        return any("--auth-key=file:/dev/stdin" in s.argv for s in self.steps)


def _planned(step: Step, probe: Probe, wish: UpWish, when: str | None = None) -> PlannedStep:
    cli = probe.tailscale or "tailscale"
    if isinstance(step, StartDaemon):
        return PlannedStep(action=step.describe(), argv=step.argv, note=f"detached, log in {DAEMON_LOG}; then wait for its socket", when=when)
    if isinstance(step, Login):
        return PlannedStep(action=step.describe(), argv=step.argv, note="the key is written to its stdin, never on a command line" + _then(step.then), when=when)
    if isinstance(step, Connect) and step.then:
        return PlannedStep(action=step.describe(), argv=step.argv, note=_then(step.then).lstrip("; "), when=when)
    if isinstance(step, (Connect, ApplySettings)):
        return PlannedStep(action=step.describe(), argv=step.argv, when=when)
    if isinstance(step, WaitRunning):
        argv = (cli, f"--socket={SOCKET}", "status", "--json", "--peers=false")
        return PlannedStep(action=step.describe(), argv=argv, note=f"repeated until Running, at most {wish.timeout:g} s", when=when)
    raise AssertionError(step)  # pragma: no cover - Done/Skip/Fail are outcomes, not steps


def _then(argv: tuple[str, ...]) -> str:
    return f"; then `{' '.join(argv)}` restores what `up` cannot say" if argv else ""


def dry_run(probe: Probe, wish: UpWish) -> DryRun:
    """The steps `up` would take from this probe, changing nothing.

    The first step is certain; after a daemon start the next one depends on what
    the new daemon reports, so those steps carry the condition. A plan that would
    fail raises the error `up` would raise.
    """
    step = next_step(probe, wish)
    if isinstance(step, Fail):
        raise step.error
    if isinstance(step, Skip):
        return DryRun(outcome="skipped", reason=step.reason)
    if isinstance(step, Done):
        return DryRun(outcome="already-connected")
    steps = [_planned(step, probe, wish)]
    if isinstance(step, StartDaemon):
        cli = probe.tailscale or "tailscale"
        if probe.has_identity:
            # what next_step gives for the node that comes back Stopped and logged in
            steps.append(_planned(Connect(bare_up_argv(cli)), probe, wish, when="if the node comes back Stopped (a node that was Running resumes by itself)"))
            if wish.have_key:
                steps.append(_planned(Login(up_argv(cli, wish, with_key=True)), probe, wish, when="if the node's identity was logged out or expired"))
        else:
            steps.append(_planned(Login(up_argv(cli, wish, with_key=True)), probe, wish))
    return DryRun(outcome="would-connect", steps=tuple(steps))
