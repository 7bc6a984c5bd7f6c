"""What the node operations of the Python API return, and ``Event``.

One dataclass per operation; ``doctor``'s, ``plan``'s and the state volume's
live with their operations (``api/doctor``, ``api/plan``, ``api/state``), so
that `status` loads none of their code, while every report's annotations still
resolve (``typing.get_type_hints``, as cattrs or pydantic use it). The tasks
render exactly these (``tasks/node_report``, ``tasks/state``), so a script
calling the API and a person running the task see the same facts. None of them
holds a key: only where the key came from (``key_source``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devc_tasks.core.errors import DevcError
from devc_tasks.core.events import event_kind
from devc_tasks.core.hostname import HostnameChoice
from devc_tasks.core.probe import Probe
from devc_tasks.core.secrets import redact
from devc_tasks.core.status import Status
from devc_tasks.shell.node import UpResult

__all__ = [
    "Event",
    "OnEvent",
    "UpReport",
    "ChangeReport",
    "StatusReport",
]


@dataclass(frozen=True)
class Event:
    """One step of a long operation, for a script that shows its own progress
    (``--events`` prints ``to_dict()`` as one JSON line on stderr).

    ``event`` is a stable word (``resolve``, ``probe``, ``start-daemon``, ``login``,
    ``wait``, ``done``, ... see ``core.events.EVENT_KINDS``); ``step`` the text a
    person reads; ``elapsed_ms`` counts from the start of the call. Redacted: no
    key ever appears in an event.
    """

    event: str
    step: str | None
    container: str | None
    elapsed_ms: int
    message: str | None = None
    """A warning's text."""
    hostname: str | None = None
    """The node name, on ``up``'s ``resolve`` event."""

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"event": self.event, "step": self.step, "elapsed_ms": self.elapsed_ms, "container": self.container}
        if self.message is not None:
            doc["message"] = self.message
        if self.hostname is not None:
            doc["hostname"] = self.hostname
        return doc


OnEvent = Callable[[Event], None]


class Progress:
    """Turns the shell's step texts (``on_step``) and warnings into ``Event``\\ s, timed
    from the call's start, redacted, and safe to call from ``--all``'s threads."""

    def __init__(self, on_event: OnEvent | None, container: str | None = None) -> None:
        self._on_event = on_event
        self.container = container
        self._t0 = time.monotonic()
        self._lock = threading.Lock()

    def emit(self, kind: str, step: str | None = None, *, message: str | None = None, container: str | None = None, hostname: str | None = None) -> None:
        if self._on_event is None:
            return
        ms = int((time.monotonic() - self._t0) * 1000)
        event = Event(kind, redact(step) if step else step, container or self.container, ms, redact(message) if message else message, hostname)
        with self._lock:
            self._on_event(event)

    def step(self, text: str) -> None:
        """The shell's ``on_step``: the event word is read from the text."""
        self.emit(event_kind(text), text)

    def warn(self, text: str) -> None:
        self.emit("warning", None, message=text)


@dataclass(frozen=True)
class UpReport:
    """What ``up`` (or ``restart``) did and the node afterwards."""

    container: str
    """The container's name ("this machine" with ``local``)."""
    result: UpResult
    """Outcome (``connected``, ``already-connected``, ``skipped``), steps, warnings, the final probe."""
    key_source: str | None
    """Where the key came from when a login used it (never the key); None otherwise."""
    hostname: HostnameChoice | None
    ssh_user: str = "root"
    api: dict[str, Any] | None = None
    """The Tailscale API's part (minted key id, deleted copies, the device), when it was used."""
    host_peer: dict[str, Any] | None = None
    """Whether this host's own tailscale sees the node; None without one."""

    @property
    def outcome(self) -> str:
        return self.result.outcome

    @property
    def status(self) -> Status | None:
        return self.result.probe.status if self.result.probe else None

    @property
    def warnings(self) -> list[str]:
        return self.result.warnings


@dataclass(frozen=True)
class ChangeReport:
    """``down`` or ``logout``: what was done, and the node afterwards."""

    container: str
    node: Probe
    done: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StatusReport:
    """The node's state. Not Running is a state, not an exception: ``error`` says why
    (``NotConnected`` exit 5, ``TailscaleNotInstalled`` 21) and the task exits with it."""

    container: str
    probe: Probe
    error: DevcError | None

    @property
    def ok(self) -> bool:
        return self.error is None
