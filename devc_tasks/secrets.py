"""The auth key: where it comes from, and keeping it out of every output.

The key lives in a ``Secret`` whose ``repr``/``str`` never show it; only the
stdin writer of a login calls ``reveal``. Any text that comes back from
tailscale passes through ``redact`` before it is shown, logged or raised.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO

from .errors import UsageError

__all__ = ["KeySource", "Secret", "redact", "resolve_key", "ENV_AUTHKEY"]

ENV_AUTHKEY = "TAILSCALE_AUTHKEY"
_TSKEY = re.compile(r"tskey-[A-Za-z0-9_\-]+")
_KEY_FLAG = re.compile(r"(--auth-?key[= ])(?!file:)(\S+)")


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


class KeySource:
    """Where the key comes from (for `doctor` and reports; never the value), and how to
    read it. The key is read on the first ``load``: only when the node must log in."""

    def __init__(self, source: str | None, reader: Callable[[], str] | None = None) -> None:
        self.source = source  # "--authkey-file PATH", "--authkey-file -", "TAILSCALE_AUTHKEY (host)", ...
        self._reader = reader
        self._secret: Secret | None = None

    @property
    def available(self) -> bool:
        return self.source is not None

    def load(self) -> Secret:
        if self._reader is None or self.source is None:
            raise UsageError("no auth key available")
        if self._secret is None:
            self._secret = _clean(self._reader(), "standard input" if self.source.endswith(" -") else self.source)
        return self._secret

    def __repr__(self) -> str:
        return f"KeySource({self.source!r})"


def _clean(raw: str, where: str) -> Secret:
    value = raw.strip()
    if not value:
        raise UsageError(f"the auth key from {where} is empty", fix="Put the key (tskey-auth-...) there, or leave it out to skip login.")
    if any(c.isspace() for c in value):
        raise UsageError(f"the auth key from {where} contains whitespace", fix="Put exactly one key (tskey-auth-...) there.")
    return Secret(value)


def resolve_key(
    *,
    authkey_file: str | None,
    host_env: Mapping[str, str],
    container_env: Mapping[str, str],
    stdin: IO[str] | None = None,
) -> KeySource:
    """The design's order: --authkey-file (``-`` is stdin), host env, container env."""
    if authkey_file:
        if authkey_file == "-":
            stream = stdin if stdin is not None else sys.stdin
            return KeySource("--authkey-file -", stream.read)
        path = Path(authkey_file).expanduser()

        def read_file() -> str:
            try:
                return path.read_text()
            except OSError as e:
                raise UsageError(
                    f"cannot read --authkey-file {authkey_file}: {e.strerror}",
                    fix="Give a readable file holding the key, or `-` to read it from stdin.",
                ) from None

        return KeySource(f"--authkey-file {authkey_file}", read_file)
    for env, where in ((host_env, "host"), (container_env, "container")):
        value = env.get(ENV_AUTHKEY, "")
        if value.strip():
            return KeySource(f"{ENV_AUTHKEY} ({where})", functools.partial(str, value))
    return KeySource(None)


def redact(text: str, secrets: Iterable[Secret | None] = ()) -> str:
    """Hide every auth key in text that came back from tailscale (or anywhere)."""
    for s in secrets:
        if s is not None and s.reveal():
            text = text.replace(s.reveal(), "tskey-...")
    text = _KEY_FLAG.sub(lambda m: m.group(1) + "...", text)
    return _TSKEY.sub("tskey-...", text)
