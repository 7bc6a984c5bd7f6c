"""Running the connect logic through an executor (the single-script operations are ``control``).

The decisions are in ``core.plan``; this module runs one step at a time, probes
again, and stops on Done, Skip or Fail. Every in-container command is bounded
(``timeout`` in the container when it has one, and the executor's read
timeout). Mutating steps hold a lock file in the container so two ``up``s at
once log in only once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from devc_tasks.core.errors import TailscaleFailed, TimedOut
from devc_tasks.core.outcome import connect_warnings, daemon_died
from devc_tasks.core.probe import Probe
from devc_tasks.core.secrets import Secret
from devc_tasks.shell.control import NodeControl

if TYPE_CHECKING:  # the planner is loaded by `up` and `restart`, not by a probe (`status`)
    from devc_tasks.core import plan
    from devc_tasks.core.plan import UpWish

__all__ = ["Node", "UpResult"]

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
class Node(NodeControl):
    """Tailscale in one container (or on this machine): the connect logic (``up``,
    ``restart``) on top of the single-script operations of ``NodeControl``."""

    def up(self, wish: UpWish, key: Callable[[], Secret] | None, *, daemon_wait: float = 20.0, max_steps: int = 6) -> UpResult:
        """Run the connect logic; ``key`` is called only when the node must log in."""
        from devc_tasks.core import plan

        result = UpResult(outcome="connected", wanted_hostname=wish.hostname)
        probe = self.probe(prefs=True)  # the planner compares and repeats the node's settings
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
                result.warnings.extend(connect_warnings(probe, wish.hostname))
                return result
            self.on_step(step.describe())
            result.steps.append(step.describe())
            try:
                after_step = self._run_step(step, probe, wish, key, daemon_wait=daemon_wait)
            except (TailscaleFailed, TimedOut) as e:
                # tailscaled died under the step (killed, crashed): start it again, once
                after = self.probe(prefs=True)
                if recovered or isinstance(step, plan.StartDaemon) or not daemon_died(probe, after):
                    raise
                recovered = True
                result.warnings.append(f"tailscaled stopped during '{step.describe()}' ({e.message}); devc-tasks started it again")
                probe = after
                continue
            result.used_key = result.used_key or isinstance(step, plan.Login)
            # the step's own exec probed the node once it was done; else one exec more
            probe = after_step if after_step is not None else self.probe(prefs=True)
        raise TailscaleFailed(
            f"the node did not settle after {max_steps} steps ({', '.join(result.steps)}); last state: "
            f"{probe.status.backend_state if probe.status else 'daemon not answering'}",
            fix="Check `tailscale status` and /var/log/tailscaled.log in the container.",
        )

    def _run_step(self, step: plan.Step, probe: Probe, wish: UpWish, key: Callable[[], Secret] | None, *, daemon_wait: float) -> Probe | None:
        """Run one step; the node as the step's script probed it at its end, when it did."""
        from devc_tasks.core import plan

        cli = self._require_cli(probe)
        if isinstance(step, plan.StartDaemon):
            return self.start_daemon(step.argv, cli=cli, wait=daemon_wait)
        elif isinstance(step, plan.WaitRunning):
            return self.wait_running(cli, wish.timeout)
        elif isinstance(step, plan.Login):
            assert key is not None
            secret = key()
            self.secrets = (*self.secrets, secret)
            return self._up_then(step.argv, step.then, wish, stdin=secret.reveal().encode() + b"\n")
        elif isinstance(step, plan.Connect):
            return self._up_then(step.argv, step.then, wish, stdin=None)
        elif isinstance(step, plan.ApplySettings):
            self._run(step.argv, what="set")
            return None
        else:  # pragma: no cover - the planner returns only the steps above
            raise AssertionError(step)

    def _up_then(self, argv: Sequence[str], then: Sequence[str], wish: UpWish, *, stdin: bytes | None) -> Probe | None:
        """`tailscale up`, then the `set` that restores what up could not say (``plan.lan_restore``);
        after a `set` the probe up's exec took is stale: None, so the loop probes again."""
        after = self._tailscale_up(argv, wish, stdin=stdin)
        if not then:
            return after
        self._run(then, what="set")
        return None

    def restart(self, wish: UpWish, *, rename: bool = False, daemon_wait: float = 20.0) -> tuple[Probe, UpResult]:
        """Restart tailscaled and reconnect from the state volume, never with a key.

        The node keeps its settings (name, SSH, routes, tags) unless ``rename``
        asks for the wish's hostname; a daemon that ran without TUN comes back so.
        """
        before = self.probe(prefs=True)  # the settings it keeps
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
