"""Backup archives as another machine might have made them, for the restore tests."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable


def foreign_tar(entries: Iterable[tuple[str, int, bytes | None]], *, uid: int = 1000, user: str = "vscode") -> bytes:
    """A plain tar of (name, mode, payload) entries (payload None: a directory), owned by
    ``uid`` with the given modes: what restore must not carry over."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, mode, payload in entries:
            info = tarfile.TarInfo(name)
            info.mode, info.uid, info.gid, info.uname, info.gname = mode, uid, uid, user, user
            if payload is None:
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            else:
                info.size = len(payload)
                tf.addfile(info, io.BytesIO(payload))
    return buf.getvalue()
