"""Starting and stopping tailscaled, `tailscale up` under the lock, and leaving the
tailnet (down, logout): each one script from ``core.scripts``, its exit code read
back into a typed error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from devc_tasks.core import paths
from devc_tasks.core.errors import DaemonFailed, LoginRejected, TailscaleFailed, TimedOut, TunMissing
from devc_tasks.core.outcome import APPROVAL_FIX, classify_tailscale_error, is_tun_error
from devc_tasks.core.probe import Probe, after_probe
from devc_tasks.core.scripts import (
    DAEMON_DIED,
    DAEMON_SLOW,
    FOREIGN_DAEMON,
    KILLED_BY_TIMEOUT,
    LOCK_BUSY,
    NEEDS_APPROVAL,
    START_DAEMON_SCRIPT,
    STOP_DAEMON_SCRIPT,
    UP_SCRIPT,
    WAIT_RUNNING_SCRIPT,
)
from devc_tasks.shell.runner import ScriptRunner

if TYPE_CHECKING:  # a probe (`status`) loads no planner; the steps that need it import it
    from devc_tasks.core.plan import UpWish

__all__ = ["NodeControl"]


@dataclass
class NodeControl(ScriptRunner):
    """The node operations that run one script each (the connect logic is ``node.Node``)."""

    def start_daemon(self, argv: Sequence[str], *, cli: str, wait: float) -> Probe | None:
        """Start tailscaled and wait for it; the node as the script probed it at its end."""
        lock_wait = max(1, int(wait))
        env = {"DEVC_WAIT": str(lock_wait), "DEVC_LOCK_WAIT": str(lock_wait), "DEVC_CLI": cli}
        r = self._sh(START_DAEMON_SCRIPT, argv, env=env, timeout=2 * wait + 20)
        if r.exit_code == 0:
            return after_probe(r.stdout)
        log = self._clean(r.stderr)
        if r.exit_code == DAEMON_DIED:
            if is_tun_error(log):
                from devc_tasks.core.plan import tun_fix

                raise TunMissing(f"tailscaled exited: it cannot create its TUN device. Its last log lines:\n{log}", fix=tun_fix())
            raise DaemonFailed(f"tailscaled exited right after it started. Its last log lines ({paths.DAEMON_LOG}):\n{log}")
        if r.exit_code == DAEMON_SLOW:
            raise TimedOut(
                f"tailscaled did not answer on {paths.SOCKET} within {wait:g} s. Its last log lines:\n{log}",
                fix=f"Look at {paths.DAEMON_LOG} in the container.",
            )
        if r.exit_code == FOREIGN_DAEMON:
            raise DaemonFailed(
                f"tailscaled already runs in the container but does not listen on {paths.SOCKET} (another --socket?):\n{log}",
                fix="Let devc-tasks run it: `inv tailscale.restart` stops that daemon and starts one on the standard socket and state file.",
            )
        if r.exit_code == LOCK_BUSY:
            raise TimedOut(f"another devc-tasks command held {paths.LOCK_FILE} for {lock_wait} s; nothing was changed", fix="Wait for it to finish, then retry.")
        raise DaemonFailed(f"starting tailscaled failed (exit {r.exit_code}): {log or self._clean(r.stdout)}")

    def _tailscale_up(self, argv: Sequence[str], wish: UpWish, *, stdin: bytes | None) -> Probe | None:
        bound = int(wish.timeout) + 15  # tailscale up --timeout plus its own start-up
        # a full `up` (every managed flag: a login, a tag change) sets what the wish asks
        # for; a bare `up` resumes the node with the settings it had: read them after
        full = any(a.startswith("--hostname=") for a in argv)
        env = {
            "DEVC_LOCK_WAIT": str(bound),
            "DEVC_BOUND": str(bound),
            "DEVC_KEY_ON_STDIN": "1" if stdin is not None else "0",
            "DEVC_AFTER_PREFS": "0" if full else "1",
        }
        r = self._sh(UP_SCRIPT, argv, env=env, stdin=stdin, timeout=2 * bound + 20)
        if r.exit_code == 0:
            return after_probe(r.stdout)
        text = self._clean("\n".join(t for t in (r.stderr, r.stdout) if t.strip()))
        flat = " ".join(text.split())  # tailscale wraps some messages over several lines
        if r.exit_code == LOCK_BUSY:
            raise TimedOut(
                f"another devc-tasks command kept {paths.LOCK_FILE} for {bound} s (--timeout {wish.timeout:g} s + 15 s for tailscale's start-up); nothing was changed",
                fix="Wait for it to finish, then retry.")
        if r.exit_code == NEEDS_APPROVAL:
            raise LoginRejected("the node logged in but waits for approval by a tailnet admin (NeedsMachineAuth)", fix=APPROVAL_FIX)
        if r.exit_code == KILLED_BY_TIMEOUT:
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

    def wait_running(self, cli: str, timeout: float) -> Probe | None:
        r = self._sh(WAIT_RUNNING_SCRIPT, [], env={"DEVC_WAIT": str(max(1, int(timeout))), "DEVC_CLI": cli}, timeout=timeout + 15)
        if r.exit_code != 0:
            raise TimedOut(f"the node did not reach Running within {timeout:g} s", fix="Check `tailscale status` and the health messages in the container.")
        return after_probe(r.stdout)

    def stop_daemon(self) -> None:
        r = self._sh(STOP_DAEMON_SCRIPT, [], env={"DEVC_LOCK_WAIT": "30"}, timeout=60)
        if r.exit_code != 0:
            raise DaemonFailed(f"could not stop tailscaled: {self._clean(r.stderr)}")

    def down(self, *, logout: bool = False, daemon_wait: float = 20.0) -> tuple[Probe, list[str]]:
        """`tailscale down` (and, with ``logout``, leave as ``logout`` does); a daemon that is
        not running is already down. Returns the node afterwards and what was done."""
        before = self.probe()
        cli = self._require_cli(before)
        done: list[str] = []
        if before.status is None:
            done.append("tailscaled is not running: nothing to stop")
        elif before.status.backend_state != "Stopped" or not logout:
            # the user asked for it: never stop at the lose-ssh confirmation
            r = self._simple(before, "down", "--accept-risk=lose-ssh", what="down")
            done.append("already stopped" if "already stopped" in r.stderr else "stopped")
        if logout:
            return self._leave(before, cli, done, daemon_wait)
        return (before if before.status is None else self.probe()), done

    def logout(self, *, daemon_wait: float = 20.0) -> tuple[Probe, list[str]]:
        """Log the node out; a node without identity, or one already logged out, is done (exit 0)."""
        before = self.probe()
        return self._leave(before, self._require_cli(before), [], daemon_wait)

    def _leave(self, before: Probe, cli: str, done: list[str], daemon_wait: float) -> tuple[Probe, list[str]]:
        """Leave the tailnet from the node ``before`` showed. With the daemon down but an
        identity on the state volume, tailscaled is started first: only it can tell the
        control server that the node leaves (an ephemeral node is then deleted)."""
        if before.status is None and before.daemon_pid is None:
            if not before.has_identity:  # a `{}` or post-logout file is none (a broken one: nothing to log out)
                return before, [*done, "no node identity: already logged out"]
            from devc_tasks.core.plan import tailscaled_argv

            argv = tailscaled_argv(before.tailscaled or "tailscaled", userspace=not before.tun)
            self.on_step("start tailscaled")
            self.start_daemon(argv, cli=cli, wait=daemon_wait)
            done = [*done, "started tailscaled"]
            before = self.probe()
        if before.status is None:
            raise DaemonFailed("tailscaled is not answering, so the node cannot log out", fix="Run `inv tailscale.restart`, then log out again.")
        if not before.status.logged_in:
            return before, [*done, "already logged out"]
        self._simple(before, "logout", what="logout")
        return self.probe(), [*done, "logged out"]
