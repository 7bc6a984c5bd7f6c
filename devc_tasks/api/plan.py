"""``up --dry-run`` in the Python API: what ``up`` with the same arguments would do.

Its own module, with its report, so that the planner's dry run is loaded by
``plan`` and ``up`` only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from devc_tasks.api.node import PathArg, _prepare
from devc_tasks.api.types import OnEvent
from devc_tasks.core.hostname import HostnameChoice
from devc_tasks.core.plan import DryRun, dry_run
from devc_tasks.core.secrets import Secret

__all__ = ["plan", "PlanReport"]


@dataclass(frozen=True)
class PlanReport:
    """What ``up`` would do (``up --dry-run``): nothing was changed, the key not read."""

    container: str
    hostname: HostnameChoice
    key_source: str | None
    plan: DryRun


def plan(
    *,
    container: str | None = None,
    workspace: PathArg | None = None,
    host: str | None = None,
    context: str | None = None,
    local: bool = False,
    hostname: str | None = None,
    authkey_file: PathArg | None = None,
    authkey: Secret | None = None,
    ssh: bool = True,
    accept_routes: bool = False,
    advertise_tags: Sequence[str] = (),
    timeout: float = 60.0,
    daemon_wait: float = 20.0,
    require_key: bool = False,
    userspace: bool = False,
    key_expiry: float | None = None,
    ephemeral: bool = False,
    replace: bool = False,
    oauth_secret_file: str | None = None,
    api_config: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    on_event: OnEvent | None = None,
) -> PlanReport:
    """What ``up`` with the same arguments would do (``up --dry-run``): one probe, the
    steps with their exact command lines, the key's source; nothing changed, nothing
    minted, the key not read."""
    p = _prepare(dict(locals()))
    try:
        return PlanReport(p.target.label, p.choice, p.key.source, dry_run(p.node.probe(prefs=True), p.wish))
    finally:
        if p.api is not None:
            p.api.close()
