"""devc-tasks as a Python library: the same operations as the tasks, for scripts.

Each function takes the tasks' selectors as keyword arguments (``container``,
``workspace``, ``host``, ``context``, ``local``) and the task's options under
the same names, and returns the dataclass the task renders: the tasks are thin
users of these functions (parse options, call, render), so the two cannot
disagree. Failures raise the typed errors of ``devc_tasks.core.errors``; each
``DevcError`` carries ``exit_code`` and ``kind`` (the README's exit-code table)
and a ``fix``.

The auth key is never a plain string argument: give ``authkey_file`` (a path,
``"-"`` for stdin), a ``Secret`` as ``authkey``, or TAILSCALE_AUTHKEY in
``environ``. Reports and events carry where the key came from, never the key.

Long operations take ``on_event``: it is called with an ``Event`` per step
(what ``--events`` prints as JSON lines)::

    from devc_tasks import api

    report = api.up(workspace="~/src/web", authkey_file="~/.config/tailscale/key")
    print(report.outcome, report.status.self.magic_dns_name if report.status else "")
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devc_tasks.api.doctor import DoctorReport, doctor
    from devc_tasks.api.node import down, logout, restart, status, up
    from devc_tasks.api.plan import PlanReport, plan
    from devc_tasks.api.state import BackupReport, RestoreReport, state_backup, state_restore
    from devc_tasks.api.types import ChangeReport, Event, OnEvent, StatusReport, UpReport
    from devc_tasks.core import errors
    from devc_tasks.core.errors import DevcError
    from devc_tasks.core.secrets import Secret

# Each name loads its own module on first use (PEP 562), so `status` pays for
# neither the doctor, the state archive code nor the Tailscale API client.
_HOME = {
    **dict.fromkeys(("doctor", "DoctorReport"), "devc_tasks.api.doctor"),
    **dict.fromkeys(("up", "down", "logout", "restart", "status"), "devc_tasks.api.node"),
    **dict.fromkeys(("plan", "PlanReport"), "devc_tasks.api.plan"),
    **dict.fromkeys(("state_backup", "state_restore", "BackupReport", "RestoreReport"), "devc_tasks.api.state"),
    **dict.fromkeys(("UpReport", "ChangeReport", "StatusReport", "Event", "OnEvent"), "devc_tasks.api.types"),
    "Secret": "devc_tasks.core.secrets",
    "DevcError": "devc_tasks.core.errors",
}

__all__ = [
    "up",
    "plan",
    "down",
    "logout",
    "restart",
    "status",
    "doctor",
    "state_backup",
    "state_restore",
    "UpReport",
    "PlanReport",
    "ChangeReport",
    "StatusReport",
    "DoctorReport",
    "BackupReport",
    "RestoreReport",
    "Event",
    "OnEvent",
    "Secret",
    "DevcError",
    "errors",
]


def __getattr__(name: str) -> Any:
    if name == "errors":
        value: Any = importlib.import_module("devc_tasks.core.errors")
    elif name in _HOME:
        value = getattr(importlib.import_module(_HOME[name]), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


class _Package(ModuleType):
    """The import system names each submodule on its package once loaded: `api.doctor` and
    `api.plan` (operations) would become the modules devc_tasks.api.doctor and .plan after
    `from devc_tasks.api.doctor import DoctorReport` or `api.PlanReport`, and calling them
    fail ('module' object is not callable). An operation's name keeps the operation."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, ModuleType) and value.__name__ == f"{__name__}.{name}" and name in _HOME:
            return  # __getattr__ answers with the operation
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
