"""What doctor saw (``Facts``, gathered once by ``shell/doctor_gather.py``) and what it
judged (one ``Check`` per row, made by ``core/doctor_checks.py``). Pure data.

A check ``fail``s when ``up`` would fail because of it (no engine, no
running container, no TUN device or capability, tailscale missing, a
malformed key, an unreadable configuration); anything ``up`` copes with but
the user should know about is a ``warn``; a check that cannot be judged
because an earlier one failed is a ``skip`` that says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from devc_tasks.core.errors import DevcError
from devc_tasks.core.hostname import HostnameChoice
from devc_tasks.core.persistence import StateMount
from devc_tasks.core.probe import Probe

__all__ = ["FAIL", "PASS", "SKIP", "WARN", "Check", "ConfigFacts", "ContainerFacts", "EngineFacts", "Facts", "ok"]

PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"

TITLES: dict[str, str] = {
    "engine": "Docker engine",
    "config": "devcontainer.json",
    "container": "container",
    "running": "running",
    "tun": "TUN device",
    "net_admin": "NET_ADMIN",
    "net_raw": "NET_RAW",
    "state_volume": "state volume",
    "tailscale": "tailscale",
    "tailscaled": "tailscaled",
    "daemon": "daemon",
    "socket": "socket",
    "backend_state": "backend state",
    "ssh": "Tailscale SSH",
    "hostname": "hostname",
    "dns_name": "DNS name",
    "auth_key": "auth key",
}
"""Check names (stable, for ``--json``) in report order, and their titles for people."""


@dataclass(frozen=True, kw_only=True)
class Check:
    name: str
    """One of ``TITLES``."""
    status: str
    """``pass``, ``warn``, ``fail`` or ``skip``."""
    seen: str
    fix: str | None = None

    @property
    def title(self) -> str:
        return TITLES[self.name]

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "status": self.status, "seen": self.seen, "fix": self.fix}


# --- facts -----------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class EngineFacts:
    url: str
    local: bool
    version: str | None
    context: str | None = None
    """The Docker context that named the engine, None for a URL (--host, DOCKER_HOST, the default socket)."""


@dataclass(frozen=True, kw_only=True)
class ConfigFacts:
    path: Path
    name: str | None
    service: str | None
    is_compose: bool


@dataclass(frozen=True, kw_only=True)
class ContainerFacts:
    name: str
    id: str
    status: str
    how: str

    @property
    def running(self) -> bool:
        return self.status == "running"


@dataclass(frozen=True, kw_only=True)
class Facts:
    """Everything ``gather`` learnt; ``*_error`` holds the error of a stage that failed."""

    local: bool = False
    config_read: bool = True
    """False when ``--container`` alone named the container (``up`` does not read the configuration then)."""
    workspace: Path | None = None
    config: ConfigFacts | None = None
    config_error: DevcError | None = None
    engine: EngineFacts | None = None
    engine_error: DevcError | None = None
    container: ContainerFacts | None = None
    container_error: DevcError | None = None
    state_mount: StateMount | None = None
    """What holds the state directory (``state.inspect_state_mount``); None when the container could not be inspected."""
    probe: Probe | None = None
    probe_error: DevcError | None = None
    wanted: HostnameChoice | None = None
    wanted_error: DevcError | None = None
    key_source: str | None = None
    key_error: DevcError | None = None
    userspace: bool = False
    """The user means to run ``up --userspace``: no TUN device is needed."""


def ok(checks: Sequence[Check]) -> bool:
    """Nothing blocks ``up``: warnings and skips are fine."""
    return not any(c.status == FAIL for c in checks)


def config_kind(facts: Facts) -> str:
    """``compose``, ``image`` or ``unknown``: which syntax the fixes are written in."""
    if facts.config is None:
        return "unknown"
    return "compose" if facts.config.is_compose else "image"


def service_name(facts: Facts) -> str:
    return (facts.config.service if facts.config else None) or "SERVICE"


def probe_gap(facts: Facts) -> str | None:
    """Why there is no probe of the container, or None when there is one."""
    if facts.probe is not None:
        return None
    if not facts.local:
        if facts.engine is None:
            return "no Docker engine"
        if facts.container is None:
            return "no container"
        if not facts.container.running:
            return "the container is not running"
    if facts.probe_error is not None:
        return f"the probe failed: {facts.probe_error.message}"
    return "not probed"


def daemon_gap(facts: Facts) -> str | None:
    gap = probe_gap(facts)
    if gap:
        return gap
    p = facts.probe
    assert p is not None
    if p.tailscale is None:
        return "tailscale is not installed"
    return None
