"""The auth key: where it comes from, and keeping it out of every output.

The key lives in a ``Secret`` whose ``repr``/``str`` never show it; only the
stdin writer of a login calls ``reveal``. Any text that comes back from
tailscale passes through ``redact`` before it is shown, logged or raised.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from devc_tasks.core.errors import UsageError
from devc_tasks.core.redaction import redact_known_forms

__all__ = ["Secret", "redact", "looks_like_key", "ENV_AUTHKEY"]

ENV_AUTHKEY = "TAILSCALE_AUTHKEY"


def looks_like_key(text: str) -> bool:
    """True for text that holds a Tailscale secret (``tskey-...``): never to be echoed."""
    return "tskey-" in text.lower()


class Secret:
    """A value that never prints itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('tskey-...')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> str | tuple[object, ...]:  # pickling would copy the value out
        raise TypeError("a Secret cannot be pickled")


def clean_key(raw: str, where: str) -> Secret:
    value = raw.strip()
    if not value:
        raise UsageError(f"the auth key from {where} is empty", fix="Put the key (tskey-auth-...) there, or leave it out to skip login.")
    if any(c.isspace() for c in value):
        raise UsageError(f"the auth key from {where} contains whitespace", fix="Put exactly one key (tskey-auth-...) there.")
    if not (value.isascii() and value.isprintable()):
        raise UsageError(
            f"the auth key from {where} holds control or non-ASCII characters, which no auth key has",
            fix="Put exactly one key (tskey-auth-...) there.",
        )
    return Secret(value)


def _spelled_out(secret: str) -> re.Pattern[str]:
    """The secret with any whitespace between its characters: wrapped over lines, it is still it."""
    return re.compile(r"\s*".join(re.escape(ch) for ch in secret))


def redact(text: str, secrets: Iterable[Secret | None] = ()) -> str:
    """Hide every auth key in text that came back from tailscale (or anywhere): the
    secrets we hold (also wrapped over lines), any ``tskey-`` secret, and the value of
    tailscale's ``--auth-key``/``-authkey`` flags (a ``file:`` reference stays)."""
    for s in secrets:
        if s is not None and s.reveal().strip():
            text = _spelled_out(s.reveal().strip()).sub("tskey-...", text)
    return redact_known_forms(text)
