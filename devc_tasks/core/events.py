"""What a progress line is, for scripts: ``--events`` (and ``api.Event``) name each step.

The shell reports a step as the text a person reads ("start tailscaled"); a script
wants a stable word. ``event_kind`` maps one to the other, table-driven, so a new
step text that no rule names shows up as ``"step"`` (and a unit test catches it).
"""

from __future__ import annotations

__all__ = ["EVENT_KINDS", "event_kind"]

# (text prefix, event): the first prefix that matches names the step.
_RULES: tuple[tuple[str, str], ...] = (
    ("start tailscaled", "start-daemon"),
    ("stop tailscaled and replace", "replace"),
    ("stop tailscaled and empty", "empty"),
    ("stop tailscaled", "stop-daemon"),
    ("wait for Running", "wait"),
    ("log in with the auth key", "login"),
    ("bring the node up", "connect"),
    ("change ", "settings"),
    ("copy the archive", "copy"),
    ("replace ", "replace"),
    ("back up to", "backup"),
    ("log out", "logout"),
    ("minted ", "api"),
    ("deleted ", "api"),
)

EVENT_KINDS = frozenset(
    {kind for _, kind in _RULES}
    | {"resolve", "probe", "down", "backup", "warning", "error", "done", "step"}
)
"""Every value of an event's ``"event"`` field (README, "Events")."""


def event_kind(step: str) -> str:
    """The event word for a step's text; ``"step"`` for one no rule names."""
    for prefix, kind in _RULES:
        if step.startswith(prefix):
            return kind
    return "step"
