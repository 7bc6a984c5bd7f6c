"""Where the auth key comes from, read once and bounded: ``--auth-key-file``, stdin
(``-``) or ``TAILSCALE_AUTHKEY``; never a command-line value. The key is wrapped in a
``core.secrets.Secret`` at once, so it can only be revealed where it is sent.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

from devc_tasks.core.errors import UsageError
from devc_tasks.core.secrets import ENV_AUTHKEY, Secret, clean_key, looks_like_key, redact

__all__ = ["KeySource", "resolve_key", "MAX_KEY_BYTES"]

MAX_KEY_BYTES = 4096
"""The most a key file or stdin may hold: a key is ~60 characters (an OAuth client
secret with its parameters ~200); more is the wrong file (or ``/dev/zero``)."""


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
            self._secret = clean_key(self._reader(), "standard input" if self.source.endswith(" -") else self.source)
        return self._secret

    def __repr__(self) -> str:
        return f"KeySource({self.source!r})"


def _decode(raw: bytes | str, where: str) -> str:
    if len(raw) > MAX_KEY_BYTES:
        raise UsageError(
            f"the auth key from {where} is longer than {MAX_KEY_BYTES} bytes: that is no auth key",
            fix="Give the file that holds just the key (tskey-auth-...).",
        )
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(
            f"the auth key from {where} is not UTF-8 text: that is no auth key",
            fix="Give the file that holds just the key (tskey-auth-...).",
        ) from None


def _read_stream(stream: IO[str] | IO[bytes], where: str) -> str:
    """At most ``MAX_KEY_BYTES`` + 1 bytes: an endless source (``/dev/zero``) ends the read."""
    binary = getattr(stream, "buffer", None)  # sys.stdin: read bytes, decode strictly ourselves
    source = binary if binary is not None else stream
    return _decode(source.read(MAX_KEY_BYTES + 1), where)


def resolve_key(
    *,
    authkey_file: str | None,
    host_env: Mapping[str, str],
    container_env: Mapping[str, str],
    stdin: IO[str] | None = None,
    minter: tuple[str, Callable[[], str]] | None = None,
) -> KeySource:
    """The design's order: --authkey-file (``-`` is stdin), host env, a key minted through
    the Tailscale API (``minter``: its description and the call; run only on ``load``),
    container env.

    A ``--authkey-file`` value that is the key itself (``tskey-...``, no such
    file) is refused before anything is read, and is never echoed: not in the
    error, not as the key's source.
    """
    if authkey_file:
        if authkey_file == "-":
            stream = stdin if stdin is not None else sys.stdin
            return KeySource("--authkey-file -", lambda: _read_stream(stream, "standard input"))
        path = Path(authkey_file).expanduser()
        shown = redact(authkey_file)
        if looks_like_key(authkey_file) and not os.path.lexists(path):
            raise UsageError(
                "--authkey-file takes the path of a file that holds the key, and it was given what looks like "
                "the key itself (tskey-...); it was not used",
                fix=(
                    "Put the key in a file (mode 600) and pass its path, or pipe it in with `--authkey-file -`. "
                    "A key typed on a command line stays in the shell history and shows in `ps`: "
                    "revoke it in the admin console and make a new one."
                ),
            )
        where = f"--authkey-file {shown}"

        def read_file() -> str:
            try:
                with open(path, "rb") as f:
                    return _read_stream(f, where)
            except OSError as e:
                raise UsageError(
                    f"cannot read --authkey-file {shown}: {e.strerror or e}",
                    fix="Give a readable file holding the key, or `-` to read it from stdin.",
                ) from None

        return KeySource(where, read_file)
    value = host_env.get(ENV_AUTHKEY, "")
    if value.strip():
        return KeySource(f"{ENV_AUTHKEY} (host)", Secret(value).reveal)
    if minter is not None:
        return KeySource(minter[0], minter[1])
    value = container_env.get(ENV_AUTHKEY, "")
    if value.strip():
        return KeySource(f"{ENV_AUTHKEY} (container)", Secret(value).reveal)
    return KeySource(None)
