"""The checks a state archive must pass before restore, and backup names and sizes. Pure.

Restore refuses an archive unless every member is a regular file or a
directory with a relative name free of ``..``, the files add up to at most
``DEFAULT_MAX_SIZE`` (64 MiB; ``--max-size``), and it holds a non-empty
``tailscaled.state``. Members sit either under one top directory
``tailscale/`` (what ``get_archive`` and ``state.backup`` write) or directly
at the top (relative to the state directory). A refused archive changes
nothing. Backups are plain (uncompressed) tars, and no archive larger than the
limit plus room for headers is read. What restore writes is a new tar built
from the checked members only, owned by root, files mode 0600 and directories
0700 exactly, whatever the archive says (the node's private keys stay root's).
Members with a modification time a tar header cannot hold are refused.
"""

from __future__ import annotations

import io
import math
import re
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from devc_tasks.core.errors import UnsafeArchive, UsageError
from devc_tasks.core.identity import StateIdentity, state_identity_of_bytes
from devc_tasks.core.paths import DIR_MODE, FILE_MODE, STATE_DIR, STATE_FILE

__all__ = ["ARCHIVE_TOP", "DEFAULT_MAX_SIZE", "MAX_MEMBERS", "STATE_FILE_NAME", "CheckedArchive", "Member", "backup_label", "default_backup_name", "files_text", "parse_size", "validate_archive"]

STATE_FILE_NAME = STATE_FILE.rsplit("/", 1)[1]  # tailscaled.state
ARCHIVE_TOP = STATE_DIR.rsplit("/", 1)[1]  # "tailscale": get_archive(STATE_DIR) puts everything under it
DEFAULT_MAX_SIZE = 64 * 1024 * 1024
"""Restore refuses archives whose files add up to more (a state directory holds kilobytes)."""
MAX_MEMBERS = 10_000
_MAX_MTIME = 8**11
"""The first modification time a ustar header cannot hold (year 2242)."""


# --- backup names and sizes (pure) --------------------------------------------


def backup_label(container_name: str, labels: Mapping[str, str] | None) -> str:
    """The name part of a default backup file: compose project, else workspace folder, else container."""
    labels = labels or {}
    project = labels.get("com.docker.compose.project")
    if project:
        return project
    folder = labels.get("devcontainer.local_folder")
    if folder and folder.rstrip("/\\"):
        return re.split(r"[/\\]", folder.rstrip("/\\"))[-1]
    return container_name.lstrip("/")


def default_backup_name(label: str, now: datetime) -> str:
    """``tailscale-state-<label>-<YYYYmmddTHHMMSSZ>.tar``; a naive ``now`` is taken as UTC."""
    utc = now.astimezone(UTC) if now.tzinfo else now
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip(".-") or "container"
    return f"tailscale-state-{safe}-{utc:%Y%m%dT%H%M%SZ}.tar"


_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2, "mib": 1024**2, "g": 1024**3, "gb": 1024**3, "gib": 1024**3}


def parse_size(text: str | int, flag: str = "--max-size") -> int:
    """Bytes from ``65536``, ``64K``, ``64M``, ``1G`` (binary units)."""
    if isinstance(text, int):
        value = text
    else:
        m = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]*)\s*", str(text))
        if not m or m.group(2).lower() not in _UNITS:
            raise UsageError(f"{flag} takes a size such as 65536, 512K or 64M, not {text!r}")
        value = int(m.group(1)) * _UNITS[m.group(2).lower()]
    if value <= 0:
        raise UsageError(f"{flag} must be more than 0 bytes")
    return value


# --- archive validation (pure) --------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Member:
    """One checked archive member, its path relative to the state directory, as restore writes it
    (owned by root: ``uid``/``gid`` 0, whatever the archive said)."""

    path: str
    is_dir: bool
    size: int
    mode: int
    uid: int
    gid: int
    mtime: float


@dataclass(frozen=True, kw_only=True)
class CheckedArchive:
    """An archive restore accepts, rebuilt from its checked members only."""

    members: tuple[Member, ...]
    layout: str  # "top-dir" (members under tailscale/) or "relative"
    top_mode: int | None  # the mode restore gives the state directory itself (DIR_MODE) when the archive has it
    total_size: int
    contents: Mapping[str, bytes] = field(repr=False)

    @property
    def files(self) -> tuple[Member, ...]:
        return tuple(m for m in self.members if not m.is_dir)

    @property
    def state_identity(self) -> StateIdentity:
        """What the archive's state file holds, from its content: a ``{}`` written by a
        fresh daemon, or a file a logout left behind, is no identity."""
        if not any(m.path == STATE_FILE_NAME and not m.is_dir for m in self.members):
            return "absent"
        return state_identity_of_bytes(self.contents.get(STATE_FILE_NAME, b""))

    @property
    def has_identity(self) -> bool:
        return self.state_identity == "identity"

    def tar(self, prefix: str = "", *, now: float = 0.0) -> bytes:
        """A clean tar of the members (parents first), under ``prefix/`` when given; that
        folder's mtime is ``now`` (the shell reads the clock)."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as out:
            if prefix:
                top = tarfile.TarInfo(prefix)
                top.type, top.mode, top.mtime = tarfile.DIRTYPE, DIR_MODE, now
                top.uname = top.gname = "root"
                out.addfile(top)
            for m in self.members:
                info = tarfile.TarInfo(f"{prefix}/{m.path}" if prefix else m.path)
                info.mode, info.uid, info.gid, info.mtime = m.mode, m.uid, m.gid, m.mtime
                info.uname = info.gname = "root"
                if m.is_dir:
                    info.type = tarfile.DIRTYPE
                    out.addfile(info)
                else:
                    data = self.contents[m.path]
                    info.type, info.size = tarfile.REGTYPE, len(data)
                    out.addfile(info, io.BytesIO(data))
        return buf.getvalue()


def _refuse(member: str, why: str) -> UnsafeArchive:
    return UnsafeArchive(
        f"refusing the archive: member {member!r} {why}; nothing was changed",
        fix="Restore only archives made by `inv tailscale.state.backup` (or `docker cp CONTAINER:/var/lib/tailscale -`).",
    )


def _kind_problem(info: tarfile.TarInfo) -> str | None:
    if info.issym():
        return f"is a symbolic link (to {info.linkname!r})"
    if info.islnk():
        return f"is a hard link (to {info.linkname!r})"
    if info.ischr() or info.isblk():
        return "is a device file"
    if info.isfifo():
        return "is a FIFO"
    if not (info.isreg() or info.isdir()):
        return f"has an unsupported type ({info.type!r})"
    return None


def _mtime_problem(info: tarfile.TarInfo) -> str | None:
    """A modification time restore cannot write back: not a finite number of seconds
    from 1970 up to what a tar header holds (a PAX header can say ``inf`` or ``1e400``,
    a GNU base-256 field 2**88; each crashed the tar writer with OverflowError)."""
    try:
        value = float(info.mtime)
    except (OverflowError, TypeError, ValueError):
        value = math.inf
    if math.isfinite(value) and 0 <= value < _MAX_MTIME:
        return None
    shown = str(info.mtime)
    return f"has a modification time out of range ({shown[:24]}{'...' if len(shown) > 24 else ''})"


_COMPRESSED = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"))


def archive_limit(max_size: int, max_members: int = MAX_MEMBERS) -> int:
    """The most bytes of archive read for ``max_size`` bytes of files: headers and padding on top."""
    return max_size + 1024 * (max_members + 20)


def validate_archive(data: bytes, *, max_size: int = DEFAULT_MAX_SIZE, max_members: int = MAX_MEMBERS) -> CheckedArchive:
    """Check a backup archive before anything changes; raise ``UnsafeArchive`` naming the bad member.

    Only plain tars are read (a compressed one could expand past any limit).
    The archive itself may be at most ``archive_limit`` bytes, so no header
    (PAX, GNU long name) can make it read more; members are checked as they
    come, so an oversized or hostile one stops the reading before its data is read.
    """
    for magic, kind in _COMPRESSED:
        if data.startswith(magic):
            raise UnsafeArchive(
                f"refusing the archive: it is {kind}-compressed; backups are plain tar archives; nothing was changed",
                fix="Decompress it first (a backup from `inv tailscale.state.backup` is a plain .tar).",
            )
    limit = archive_limit(max_size, max_members)
    if len(data) > limit:
        raise UnsafeArchive(
            f"refusing the archive: it is {len(data)} bytes, more than {limit} bytes "
            f"({max_size} bytes of files, --max-size, plus headers); nothing was changed"
        )
    raw: list[tuple[tuple[str, ...], tarfile.TarInfo, bytes | None]] = []
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
            for n, info in enumerate(tf, start=1):
                name = info.name
                if n > max_members:
                    raise _refuse(name, f"is one too many: the archive has more than {max_members} members")
                if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
                    raise _refuse(name, "has control characters in its name")
                if name.startswith("/"):
                    raise _refuse(name, "has an absolute path")
                steps = name.split("/")
                if ".." in steps:
                    raise _refuse(name, "leads out of the state directory (`..`)")
                problem = _kind_problem(info) or _mtime_problem(info)
                if problem:
                    raise _refuse(name, problem)
                parts = tuple(p for p in steps if p not in ("", "."))
                content = None
                if info.isreg():
                    if info.size < 0:
                        raise _refuse(name, "has a negative size")
                    if info.issparse():
                        raise _refuse(name, "is a sparse file")
                    total += info.size
                    if total > max_size:
                        raise _refuse(name, f"takes the files past the size limit of {max_size} bytes (--max-size)")
                    if not parts:
                        raise _refuse(name, "is a file without a name")
                    f = tf.extractfile(info)
                    content = f.read() if f is not None else b""
                    if len(content) != info.size:
                        raise _refuse(name, "is truncated")
                raw.append((parts, info, content))
            # a tar ends with zero blocks; tarfile stops quietly at a cut-off header
            tf.fileobj.seek(tf.offset)
            end = tf.fileobj.read(512)
            if len(end) < 512 or end.strip(b"\0"):
                raise UnsafeArchive("refusing the archive: it is truncated (no end-of-archive marker); nothing was changed")
    except (tarfile.TarError, EOFError, OSError, ValueError) as e:
        raise UnsafeArchive(f"refusing the archive: it is not a readable tar archive ({e}); nothing was changed") from None
    if not raw:
        raise UnsafeArchive("refusing the archive: it is empty; nothing was changed")

    # Layout: everything under one top directory tailscale/ (as get_archive and
    # state.backup write it), else relative to the state directory.
    top_dir = all(parts and parts[0] == ARCHIVE_TOP for parts, _, _ in raw)
    if top_dir and any(parts == (ARCHIVE_TOP,) and not info.isdir() for parts, info, _ in raw):
        top_dir = False
    members: dict[tuple[str, ...], Member] = {}
    contents: dict[str, bytes] = {}
    top_mode: int | None = None
    for parts, info, content in raw:
        rel = parts[1:] if top_dir else parts
        if not rel:
            if info.isdir():
                top_mode = DIR_MODE
            continue
        path = "/".join(rel)
        if rel in members:
            raise _refuse(info.name, "appears twice")
        members[rel] = Member(
            path=path,
            is_dir=info.isdir(),
            size=info.size if content is not None else 0,
            # root's alone, whatever the archive says: set, not capped (a 000 file
            # would stay unreadable, a 0644 directory would lose its x bit)
            mode=DIR_MODE if info.isdir() else FILE_MODE,
            uid=0,
            gid=0,
            mtime=float(info.mtime),
        )
        if content is not None:
            contents[path] = content
    for rel, m in members.items():
        for i in range(1, len(rel)):
            parent = members.get(rel[:i])
            if parent is not None and not parent.is_dir:
                raise _refuse(m.path, f"sits under the file {parent.path!r}")
    checked = CheckedArchive(
        members=tuple(members[k] for k in sorted(members)),
        layout="top-dir" if top_dir else "relative",
        top_mode=top_mode,
        total_size=total,
        contents=contents,
    )
    if not checked.has_identity:
        where = f"{ARCHIVE_TOP}/{STATE_FILE_NAME}" if top_dir else STATE_FILE_NAME
        held = {
            "absent": f"it holds no non-empty {where}",
            "broken": f"its {where} is not valid JSON",
            "none": f"its {where} has no logged-in profile (a fresh daemon's `{{}}`, or what a logout leaves)",
        }[checked.state_identity]
        raise UnsafeArchive(
            f"refusing the archive: {held}, so it is no node identity; nothing was changed",
            fix="Is this a backup made by `inv tailscale.state.backup`? To start over with a new identity use `inv tailscale.state.reset`.",
        )
    return checked


def files_text(n: int) -> str:
    """"1 file", "3 files": how many files a backup or a restore held."""
    return "1 file" if n == 1 else f"{n} files"
