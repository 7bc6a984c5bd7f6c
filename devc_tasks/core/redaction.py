"""What no message may carry: the forms a Tailscale secret takes in text, apart from any
secret we hold, and characters that act on a terminal. Kept apart from ``secrets`` so
that ``errors`` can clean every message it is given without an import cycle."""

from __future__ import annotations

import re

__all__ = ["redact_known_forms", "inert"]

_KEY_CHARS = r"[A-Za-z0-9_\-]"
# Any Tailscale secret (tskey-auth-, tskey-client-, tskey-api-, ...); a key that runs
# to the end of a line may go on at the start of the next (wrapped output).
_TSKEY = re.compile(rf"tskey-(?:{_KEY_CHARS}+|(?=[ \t]*\r?\n))(?:[ \t]*\r?\n[ \t]*{_KEY_CHARS}+)?")
# tailscale's flag, as Go's flag package reads it: one dash or two, `=` or a space.
_KEY_FLAG = re.compile(r"(?<![\w-])(--?auth-?key(?:=|[ \t]+))(?!file:)(\S+)", re.IGNORECASE)


def redact_known_forms(text: str) -> str:
    """Hide any ``tskey-`` secret and the value of tailscale's ``--auth-key``/``-authkey``
    flags (a ``file:`` reference stays)."""
    text = _KEY_FLAG.sub(lambda m: m.group(1) + "...", text)
    return _TSKEY.sub("tskey-...", text)


def inert(text: str) -> str:
    """``text`` with every character that would act on a terminal written as its escape:
    ESC sequences (colours, a retitled window, a cleared screen), a carriage return that
    overwrites the line, bidirectional overrides (U+202E shows text reversed), other
    controls and invisible format characters. Text from outside reaches messages (a
    word Invoke could not place, tailscale's own error text); newlines and tabs stay."""
    if text.isprintable():
        return text
    text = text.replace("\r\n", "\n")
    return "".join(ch if ch.isprintable() or ch in "\n\t" else ch.encode("unicode_escape").decode("ascii") for ch in text)
