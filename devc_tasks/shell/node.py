"""Running the connect logic and the other node operations through an executor.

The decisions are in ``plan``; this module runs one step at a time, probes
again, and stops on Done, Skip or Fail. Every in-container command is bounded
(``timeout`` in the container when it has one, and the executor's read
timeout). Mutating steps hold a lock file in the container so two ``up``s at
once log in only once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from devc_tasks.core import plan
from devc_tasks.core.errors import DaemonFailed, DevcError, LoginRejected, SshRefused, TailscaleFailed, TailscaleNotInstalled, TimedOut, TunMissing
from devc_tasks.core.plan import Probe, UpWish
from devc_tasks.core.secrets import Secret, redact
from devc_tasks.shell.engine import ExecResult, Executor

__all__ = ["Node", "UpResult", "classify_tailscale_error", "is_tun_error", "SSH_REFUSED_FIX"]

SSH_REFUSED_FIX = (
    "Run it with --no-ssh (the node then has no Tailscale SSH server), or let the tailnet policy grant "
    "Tailscale SSH to this node (https://tailscale.com/s/ssh), then run it again."
)
APPROVAL_FIX = "Approve the machine in the Tailscale admin console (https://login.tailscale.com/admin/machines), then run up again; or use a pre-approved auth key."


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

# Exit codes of our own scripts (not tailscale's); 124 is coreutils `timeout`'s.
_KILLED_BY_TIMEOUT = 124
_LOCK_BUSY = 75
_DAEMON_DIED = 76
_DAEMON_SLOW = 77
_FOREIGN_DAEMON = 78
_NEEDS_APPROVAL = 79

# Every script starts with plan.SH_LIB (ts_pids, bounded, $S) and, when it
# changes something, takes the lock; the lock dies with the script, and the
# script is bounded, so a lost host connection cannot leave it held. Only
# `flock -n FD` is used: it is what util-linux, BusyBox (`-sxun` only, no `-w`)
# and toybox share; the wait is a loop of non-blocking tries bounded by
# $DEVC_LOCK_WAIT. A failure other than "held by another" (flock prints why)
# is reported as it is, never as a busy lock.
_LOCK = r"""
if command -v flock >/dev/null 2>&1; then
  exec 9>%(lock)s
  lock_end=$(( $(date +%%s) + ${DEVC_LOCK_WAIT:-30} ))
  while :; do
    lock_err=$(flock -n 9 2>&1) && break
    if [ -n "$lock_err" ]; then echo "devc-tasks: flock failed: $lock_err" >&2; exit 1; fi
    [ "$(date +%%s)" -lt "$lock_end" ] || { echo "devc-tasks: another command still holds %(lock)s" >&2; exit %(busy)d; }
    sleep 0.2 2>/dev/null || sleep 1
  done
fi
""" % {"lock": plan.LOCK_FILE, "busy": _LOCK_BUSY}

# `tailscale up` under the lock; a login first checks, under the lock, whether
# another `up` already connected the node (then the key is not used). The key, when there is one, is the
# first line of stdin (read by `head`, so no half-close of the stream is needed).
_UP = plan.SH_LIB + _LOCK + r"""
if [ "$DEVC_KEY_ON_STDIN" = 1 ] && bounded 10 "$1" --socket="$S" status --json --peers=false 2>/dev/null | grep -q '"BackendState": "Running"'; then
  echo "devc-tasks: already Running (another up connected it)" >&2
  exit 0
fi
if [ "$DEVC_KEY_ON_STDIN" = 1 ]; then
  # `up` waits on, silently for us, while the node needs an admin's approval: watch the
  # backend state beside it and stop at once when it says NeedsMachineAuth
  exec 3<&0
  head -n 1 <&3 | bounded "$DEVC_BOUND" "$@" &
  up=$!
  exec 3<&-
  while kill -0 "$up" 2>/dev/null; do
    if bounded 5 "$1" --socket="$S" status --json --peers=false 2>/dev/null | grep -q '"BackendState": "NeedsMachineAuth"'; then
      kill "$up" 2>/dev/null
      wait "$up"
      exit %(approval)d
    fi
    sleep 0.2
  done
  wait "$up"
else
  bounded "$DEVC_BOUND" "$@" </dev/null
fi
""" % {"approval": _NEEDS_APPROVAL}

# Starts tailscaled detached unless it runs, then waits (wall clock) for it to answer.
_START_DAEMON = plan.SH_LIB + _LOCK + r"""
mkdir -p %(state_dir)s /var/run/tailscale "$(dirname %(log)s)"
pid=
if [ -z "$(ts_pids)" ]; then
  echo "--- devc-tasks: starting $* ($(date -u +%%FT%%TZ))" >>%(log)s
  if command -v setsid >/dev/null 2>&1; then
    setsid "$@" >>%(log)s 2>&1 </dev/null 9>&- &
  else
    nohup "$@" >>%(log)s 2>&1 </dev/null 9>&- &
  fi
  pid=$!
fi
# alive: a tailscaled process, or the one we started while it is still exec'ing
alive() { [ -n "$(ts_pids)" ] || { [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }; }
start=$(date +%%s)
end=$(( start + DEVC_WAIT ))
while [ "$(date +%%s)" -lt "$end" ]; do
  if [ -S "$S" ] && bounded 5 "$DEVC_CLI" --socket="$S" status --json --peers=false >/dev/null 2>&1; then exit 0; fi
  if [ -z "$pid" ] && [ ! -S "$S" ] && [ "$(date +%%s)" -ge $(( start + 5 )) ]; then
    # a tailscaled we did not start, and no socket where the CLI looks: another --socket
    for p in $(ts_pids); do echo "pid $p: $(tr '\0' ' ' < /proc/$p/cmdline)" >&2; done
    exit %(foreign)d
  fi
  if ! alive; then
    sleep 0.2
    if ! alive; then
      tail -n 15 %(log)s >&2
      exit %(died)d
    fi
  fi
  sleep 0.1
done
tail -n 15 %(log)s >&2
exit %(slow)d
""" % {"state_dir": plan.STATE_DIR, "log": plan.DAEMON_LOG, "died": _DAEMON_DIED, "slow": _DAEMON_SLOW, "foreign": _FOREIGN_DAEMON}

# Polls (wall clock) until the backend is Running.
_WAIT_RUNNING = plan.SH_LIB + r"""
end=$(( $(date +%%s) + DEVC_WAIT ))
while [ "$(date +%%s)" -lt "$end" ]; do
  if bounded 5 "$DEVC_CLI" --socket="$S" status --json --peers=false 2>/dev/null | grep -q '"BackendState": "Running"'; then exit 0; fi
  sleep 0.05
done
exit %(slow)d
""" % {"slow": _DAEMON_SLOW}

# Stops tailscaled (SIGTERM, then SIGKILL after 10 s), under the lock.
_STOP_DAEMON = plan.SH_LIB + _LOCK + "stop_tailscaled\n"


@dataclass
class UpResult:
    """What `up` (or `restart`) did and what the node looks like after."""

    outcome: str  # "connected", "already-connected", "skipped"
    steps: list[str] = field(default_factory=list)
    probe: Probe | None = None
    wanted_hostname: str | None = None
    warnings: list[str] = field(default_factory=list)
    skip_reason: str | None = None
    used_key: bool = False  # a login ran (with the key)


@dataclass
class Node:
    """Tailscale in one container (or on this machine), driven through an executor."""

    executor: Executor
    on_step: Callable[[str], None] = lambda text: None
    secrets: tuple[Secret | None, ...] = ()

    # -- plumbing -----------------------------------------------------------

    def _sh(self, script: str, args: Sequence[str], *, env: dict[str, str], stdin: bytes | None = None, timeout: float) -> ExecResult:
        """Run a script with positional args; settings travel as leading `VAR=value` words
        of `env`, never secrets. SSH_CLIENT is cleared: inside an SSH session over Tailscale
        (or a container started with it) the CLI would stop `down` and SSH changes to ask
        for a confirmation that nobody can give."""
        assignments = ["SSH_CLIENT=", *(f"{k}={v}" for k, v in env.items())]
        argv = ["env", *assignments, "sh", "-c", script, "devc-tasks", *args]
        return self.executor.run(argv, stdin=stdin, timeout=timeout)

    def _clean(self, text: str) -> str:
        return redact(text.strip(), self.secrets)

    def probe(self) -> Probe:
        result = self.executor.run(["sh", "-c", plan.PROBE_SCRIPT], timeout=30)
        if result.exit_code in (126, 127) and "devc-probe" not in result.stdout:
            raise TailscaleFailed(f"cannot run /bin/sh in {self.executor.description}: {self._clean(result.stderr or result.stdout)}")
        return plan.parse_probe(result.stdout)

    # -- up -----------------------------------------------------------------

    def up(self, wish: UpWish, key: Callable[[], Secret] | None, *, daemon_wait: float = 20.0, max_steps: int = 6) -> UpResult:
        """Run the connect logic; ``key`` is called only when the node must log in."""
        result = UpResult(outcome="connected", wanted_hostname=wish.hostname)
        probe = self.probe()
        recovered = False
        for _ in range(max_steps):
            step = plan.next_step(probe, wish)
            if isinstance(step, plan.Fail):
                raise step.error
            if isinstance(step, plan.Skip):
                result.outcome, result.skip_reason, result.probe = "skipped", step.reason, probe
                return result
            if isinstance(step, plan.Done):
                result.outcome = "connected" if result.steps else "already-connected"
                result.probe = probe
                result.warnings.extend(connect_warnings(probe, wish))
                return result
            self.on_step(step.describe())
            result.steps.append(step.describe())
            try:
                self._run_step(step, probe, wish, key, daemon_wait=daemon_wait)
            except (TailscaleFailed, TimedOut) as e:
                # tailscaled died under the step (killed, crashed): start it again, once
                after = self.probe()
                if recovered or isinstance(step, plan.StartDaemon) or not _daemon_died(probe, after):
                    raise
                recovered = True
                result.warnings.append(f"tailscaled stopped during '{step.describe()}' ({e.message}); devc-tasks started it again")
                probe = after
                continue
            result.used_key = result.used_key or isinstance(step, plan.Login)
            probe = self.probe()
        raise TailscaleFailed(
            f"the node did not settle after {max_steps} steps ({', '.join(result.steps)}); last state: "
            f"{probe.status.backend_state if probe.status else 'daemon not answering'}",
            fix="Check `tailscale status` and /var/log/tailscaled.log in the container.",
        )

    def _run_step(self, step: plan.Step, probe: Probe, wish: UpWish, key: Callable[[], Secret] | None, *, daemon_wait: float) -> None:
        cli = self._require_cli(probe)
        if isinstance(step, plan.StartDaemon):
            self.start_daemon(step.argv, cli=cli, wait=daemon_wait)
        elif isinstance(step, plan.WaitRunning):
            self.wait_running(cli, wish.timeout)
        elif isinstance(step, plan.Login):
            assert key is not None
            secret = key()
            self.secrets = (*self.secrets, secret)
            self._tailscale_up(step.argv, wish, stdin=secret.reveal().encode() + b"\n")
        elif isinstance(step, plan.Connect):
            self._tailscale_up(step.argv, wish, stdin=None)
        elif isinstance(step, plan.ApplySettings):
            self._run(step.argv, what="set")
        else:  # pragma: no cover - the planner returns only the steps above
            raise AssertionError(step)

    def start_daemon(self, argv: Sequence[str], *, cli: str, wait: float) -> None:
        env = {"DEVC_WAIT": str(max(1, int(wait))), "DEVC_LOCK_WAIT": str(max(1, int(wait))), "DEVC_CLI": cli}
        r = self._sh(_START_DAEMON, argv, env=env, timeout=2 * wait + 20)
        if r.exit_code == 0:
            return
        log = self._clean(r.stderr)
        if r.exit_code == _DAEMON_DIED:
            if is_tun_error(log):
                raise TunMissing(f"tailscaled exited: it cannot create its TUN device. Its last log lines:\n{log}", fix=plan.tun_fix())
            raise DaemonFailed(f"tailscaled exited right after it started. Its last log lines ({plan.DAEMON_LOG}):\n{log}")
        if r.exit_code == _DAEMON_SLOW:
            raise TimedOut(
                f"tailscaled did not answer on {plan.SOCKET} within {wait:g} s. Its last log lines:\n{log}",
                fix=f"Look at {plan.DAEMON_LOG} in the container.",
            )
        if r.exit_code == _FOREIGN_DAEMON:
            raise DaemonFailed(
                f"tailscaled already runs in the container but does not listen on {plan.SOCKET} (another --socket?):\n{log}",
                fix="Let devc-tasks run it: `inv tailscale.restart` stops that daemon and starts one on the standard socket and state file.",
            )
        if r.exit_code == _LOCK_BUSY:
            raise TimedOut(f"another devc-tasks command held {plan.LOCK_FILE} for {wait:g} s", fix="Wait for it to finish, then retry.")
        raise DaemonFailed(f"starting tailscaled failed (exit {r.exit_code}): {log or self._clean(r.stdout)}")

    def _tailscale_up(self, argv: Sequence[str], wish: UpWish, *, stdin: bytes | None) -> None:
        bound = int(wish.timeout) + 15  # tailscale up --timeout plus its own start-up
        env = {"DEVC_LOCK_WAIT": str(bound), "DEVC_BOUND": str(bound), "DEVC_KEY_ON_STDIN": "1" if stdin is not None else "0"}
        r = self._sh(_UP, argv, env=env, stdin=stdin, timeout=2 * bound + 20)
        if r.exit_code == 0:
            return
        text = self._clean("\n".join(t for t in (r.stderr, r.stdout) if t.strip()))
        flat = " ".join(text.split())  # tailscale wraps some messages over several lines
        if r.exit_code == _LOCK_BUSY:
            raise TimedOut(f"another `up` kept {plan.LOCK_FILE} for {wish.timeout:g} s", fix="Wait for it to finish, then retry.")
        if r.exit_code == _NEEDS_APPROVAL:
            raise LoginRejected("the node logged in but waits for approval by a tailnet admin (NeedsMachineAuth)", fix=APPROVAL_FIX)
        if r.exit_code == _KILLED_BY_TIMEOUT:
            raise TimedOut(f"`tailscale up` did not return within {bound} s and was stopped", fix="Check `tailscale status` in the container, or raise --timeout.")
        if "timeout waiting for Tailscale service to enter a Running state" in flat:
            raise TimedOut(
                f"the node did not reach Running within {wish.timeout:g} s (tailscale up --timeout): {text}",
                fix="Check that the key is valid and not used up, that the control server is reachable, or raise --timeout.",
            )
        known = classify_tailscale_error(text, what="up")
        if known is not None:
            raise known
        raise TailscaleFailed(f"`tailscale up` failed (exit {r.exit_code}): {text}")

    def wait_running(self, cli: str, timeout: float) -> None:
        r = self._sh(_WAIT_RUNNING, [], env={"DEVC_WAIT": str(max(1, int(timeout))), "DEVC_CLI": cli}, timeout=timeout + 15)
        if r.exit_code != 0:
            raise TimedOut(f"the node did not reach Running within {timeout:g} s", fix="Check `tailscale status` and the health messages in the container.")

    # -- other operations ---------------------------------------------------

    def _require_cli(self, probe: Probe) -> str:
        if probe.tailscale is None:
            raise TailscaleNotInstalled("the `tailscale` CLI is not installed in the container")
        return probe.tailscale

    def _run(self, argv: Sequence[str], *, what: str, seconds: int = 30) -> ExecResult:
        """One tailscale command, bounded inside the container too (the exec's own read
        timeout cannot stop a command that hangs there)."""
        r = self._sh(plan.SH_LIB + 'bounded "$DEVC_BOUND" "$@"', argv, env={"DEVC_BOUND": str(seconds)}, timeout=seconds + 15)
        if r.exit_code == _KILLED_BY_TIMEOUT:
            raise TimedOut(f"`tailscale {what}` did not return within {seconds} s and was stopped", fix="Check tailscaled in the container (`tailscale status`).")
        if r.exit_code != 0:
            text = self._clean("\n".join(t for t in (r.stderr, r.stdout) if t.strip()))
            known = classify_tailscale_error(text, what=what)
            if known is not None:
                raise known
            raise TailscaleFailed(f"`tailscale {what}` failed: {self._clean(r.stderr or r.stdout)}")
        return r

    def _simple(self, probe: Probe, *args: str, what: str) -> ExecResult:
        return self._run([self._require_cli(probe), f"--socket={plan.SOCKET}", *args], what=what)

    def down(self, *, logout: bool = False) -> tuple[Probe, list[str]]:
        """`tailscale down` (and logout); a daemon that is not running is already down.
        Returns the node afterwards and what was done."""
        before = self.probe()
        done: list[str] = []
        self._require_cli(before)
        if before.status is None:
            return before, ["tailscaled is not running: nothing to stop"]
        if before.status.backend_state != "Stopped" or not logout:
            # the user asked for it: never stop at the lose-ssh confirmation
            r = self._simple(before, "down", "--accept-risk=lose-ssh", what="down")
            done.append("already stopped" if "already stopped" in r.stderr else "stopped")
        if logout:
            self._simple(before, "logout", what="logout")
            done.append("logged out")
        return self.probe(), done

    def logout(self, *, daemon_wait: float = 20.0) -> tuple[Probe, list[str]]:
        """Log the node out; a node without identity, or one already logged out, is done
        (exit 0). With the daemon down but an identity on the state volume, tailscaled is
        started first: only it can tell the control server that the node leaves."""
        before = self.probe()
        cli = self._require_cli(before)
        done: list[str] = []
        if before.status is None and before.daemon_pid is None:
            if not before.has_identity:  # a `{}` or post-logout file is none (a broken one: nothing to log out)
                return before, ["no node identity: already logged out"]
            argv = plan.tailscaled_argv(before.tailscaled or "tailscaled", userspace=not before.tun)
            self.on_step("start tailscaled")
            self.start_daemon(argv, cli=cli, wait=daemon_wait)
            done.append("started tailscaled")
            before = self.probe()
        if before.status is None:
            raise DaemonFailed("tailscaled is not answering, so the node cannot log out", fix="Run `inv tailscale.restart`, then log out again.")
        if not before.status.logged_in:
            return before, [*done, "already logged out"]
        self._simple(before, "logout", what="logout")
        return self.probe(), [*done, "logged out"]

    def stop_daemon(self) -> None:
        r = self._sh(_STOP_DAEMON, [], env={"DEVC_LOCK_WAIT": "30"}, timeout=60)
        if r.exit_code != 0:
            raise DaemonFailed(f"could not stop tailscaled: {self._clean(r.stderr)}")

    def restart(self, wish: UpWish, *, rename: bool = False, daemon_wait: float = 20.0) -> tuple[Probe, UpResult]:
        """Restart tailscaled and reconnect from the state volume, never with a key.

        The node keeps its settings (name, SSH, routes, tags) unless ``rename``
        asks for the wish's hostname; a daemon that ran without TUN comes back so.
        """
        before = self.probe()
        self._require_cli(before)
        self.on_step("stop tailscaled")
        self.stop_daemon()
        keep = before.prefs
        keyless = dataclasses.replace(
            wish,
            have_key=False,
            require_key=False,
            userspace=wish.userspace or (before.status is not None and not before.status.tun),
        )
        if keep is not None:
            keyless = dataclasses.replace(
                keyless,
                hostname=wish.hostname if rename or not keep.hostname else keep.hostname,
                ssh=keep.run_ssh,
                accept_routes=keep.route_all,
                advertise_tags=keep.advertise_tags,
            )
        result = self.up(keyless, None, daemon_wait=daemon_wait)
        result.steps.insert(0, "stop tailscaled")
        return before, result


def _daemon_died(before: Probe, after: Probe) -> bool:
    """The daemon answered when the step began and no tailscaled runs now."""
    return before.status is not None and after.status is None and after.daemon_pid is None


def connect_warnings(probe: Probe, wish: UpWish) -> list[str]:
    """What the user should know about a connected node."""
    out: list[str] = []
    st = probe.status
    if st is None:
        return out
    if plan.collision(st, wish.hostname):
        out.append(
            f"the MagicDNS name is {st.self.magic_dns_name}, not {wish.hostname}: another node already holds "
            f"the name {wish.hostname!r} (often an old copy of this container whose state was lost). "
            "Remove the stale node (`tailscale.prune --yes` with API credentials on the host, or the admin console), "
            "then run `tailscale.restart` or `up` again."
        )
    if not st.tun:
        out.append("tailscaled runs in userspace-networking mode: other processes reach the tailnet only through its SOCKS5/HTTP proxy")
    return out
