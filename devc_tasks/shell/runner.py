"""One container's tailscale reached through an executor: the plumbing every node
operation shares. Scripts run bounded with their settings as ``env`` words (never
a secret), output is redacted of the secrets in play, and the probe reads the
container in one exec. ``control.NodeControl`` and ``node.Node`` build on it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from devc_tasks.core import paths, probe, scripts
from devc_tasks.core.errors import TailscaleFailed, TailscaleNotInstalled, TimedOut
from devc_tasks.core.outcome import classify_tailscale_error
from devc_tasks.core.probe import Probe
from devc_tasks.core.scripts import (
    KILLED_BY_TIMEOUT,
)
from devc_tasks.core.secrets import Secret, redact
from devc_tasks.shell.executors import ExecResult, Executor

__all__ = ["ScriptRunner"]


@dataclass
class ScriptRunner:
    """Tailscale in one container (or on this machine), driven through an executor."""

    executor: Executor
    on_step: Callable[[str], None] = lambda text: None
    secrets: tuple[Secret | None, ...] = ()

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

    def probe(self, *, prefs: bool = False, version: bool = False) -> Probe:
        """The container in one exec; ``prefs`` and ``version`` add the CLI calls only some
        tasks need (`status` needs neither: one CLI call)."""
        result = self.executor.run(probe.probe_argv(prefs=prefs, version=version), timeout=30)
        if result.exit_code in (126, 127) and "devc-probe" not in result.stdout:
            raise TailscaleFailed(f"cannot run /bin/sh in {self.executor.description}: {self._clean(result.stderr or result.stdout)}")
        return probe.parse_probe(result.stdout)

    def _require_cli(self, probe: Probe) -> str:
        if probe.tailscale is None:
            raise TailscaleNotInstalled("the `tailscale` CLI is not installed in the container")
        return probe.tailscale

    def _run(self, argv: Sequence[str], *, what: str, seconds: int = 30) -> ExecResult:
        """One tailscale command, bounded inside the container too (the exec's own read
        timeout cannot stop a command that hangs there)."""
        r = self._sh(scripts.SH_LIB + 'bounded "$DEVC_BOUND" "$@"', argv, env={"DEVC_BOUND": str(seconds)}, timeout=seconds + 15)
        if r.exit_code == KILLED_BY_TIMEOUT:
            raise TimedOut(f"`tailscale {what}` did not return within {seconds} s and was stopped", fix="Check tailscaled in the container (`tailscale status`).")
        if r.exit_code != 0:
            text = self._clean("\n".join(t for t in (r.stderr, r.stdout) if t.strip()))
            known = classify_tailscale_error(text, what=what)
            if known is not None:
                raise known
            raise TailscaleFailed(f"`tailscale {what}` failed: {self._clean(r.stderr or r.stdout)}")
        return r

    def _simple(self, probe: Probe, *args: str, what: str) -> ExecResult:
        return self._run([self._require_cli(probe), f"--socket={paths.SOCKET}", *args], what=what)
