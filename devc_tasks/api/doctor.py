"""doctor in the Python API: every pre-flight check, with its fix."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from devc_tasks.api.node import PathArg
from devc_tasks.core.doctor_facts import Check

__all__ = ["doctor", "DoctorReport"]


@dataclass(frozen=True)
class DoctorReport:
    """Every pre-flight check; ``ok`` when nothing blocks ``up`` (else the task exits 40)."""

    checks: list[Check]
    ok: bool


def doctor(
    *,
    container: str | None = None,
    workspace: PathArg | None = None,
    host: str | None = None,
    context: str | None = None,
    local: bool = False,
    hostname: str | None = None,
    userspace: bool = False,
    environ: Mapping[str, str] | None = None,
) -> DoctorReport:
    """Check everything Tailscale needs in the devcontainer. A failed check is a row, not
    an exception (``report.ok`` is False; the task then exits 40); only a bad option raises."""
    from devc_tasks.core.doctor_checks import run_checks
    from devc_tasks.core.doctor_facts import ok
    from devc_tasks.shell.doctor_gather import gather
    from devc_tasks.shell.target import Selectors

    sel = Selectors(container=container, workspace=os.fspath(workspace) if workspace is not None else None, host=host, context=context, local=local)
    checks = run_checks(gather(sel, hostname=hostname, userspace=userspace, environ=os.environ if environ is None else environ))
    return DoctorReport(checks, ok(checks))
