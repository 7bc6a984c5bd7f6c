"""The state volume: what holds ``/var/lib/tailscale``; backup, restore, reset.

The pure part comes first and takes plain data: which mount holds the state
directory (from ``docker inspect`` output), whether it survives a recreate and
what to say when it does not, the default backup name, and the validation of a
backup archive before restore. The Engine part follows: the archive API
(``get_archive``/``put_archive``, which work on a stopped container too) and
the few execs that restore and reset need in a running one.

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
import os
import re
import tarfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devc_tasks.core import plan
from devc_tasks.core.errors import ContainerNotRunning, DevcError, EngineUnreachable, StateVolumeError, TimedOut, UnsafeArchive, UsageError
from devc_tasks.core.identity import StateIdentity, state_identity_of_bytes
from devc_tasks.core.plan import STATE_DIR, STATE_FILE

__all__ = [
    "ANONYMOUS_LABEL",
    "ARCHIVE_TOP",
    "DEFAULT_MAX_SIZE",
    "DIR_MODE",
    "FILE_MODE",
    "MAX_MEMBERS",
    "STATE_DIR",
    "STATE_FILE",
    "STATE_FILE_NAME",
    "BackupResult",
    "CheckedArchive",
    "Member",
    "ResetResult",
    "RestoreResult",
    "StateContainer",
    "StateMount",
    "StateReport",
    "backup",
    "backup_label",
    "backup_path",
    "check_backup_target",
    "default_backup_name",
    "inspect_state_mount",
    "is_anonymous_volume",
    "open_state",
    "parse_size",
    "persistence_problem",
    "persistence_warning",
    "read_archive",
    "require_running",
    "reset",
    "restore",
    "show",
    "validate_archive",
]

STATE_FILE_NAME = STATE_FILE.rsplit("/", 1)[1]  # tailscaled.state
ARCHIVE_TOP = STATE_DIR.rsplit("/", 1)[1]  # "tailscale": get_archive(STATE_DIR) puts everything under it
DEFAULT_MAX_SIZE = 64 * 1024 * 1024
"""Restore refuses archives whose files add up to more (a state directory holds kilobytes)."""
MAX_MEMBERS = 10_000
FILE_MODE = 0o600
DIR_MODE = 0o700
"""Restore writes every file with mode 0600 and every directory 0700, owned by root."""
_MAX_MTIME = 8**11
"""The first modification time a ustar header cannot hold (year 2242)."""
ANONYMOUS_LABEL = "com.docker.volume.anonymous"
"""Set by Docker 23+ on anonymous volumes; older engines only give them a 64-hex name."""

_HEX64 = re.compile(r"[0-9a-f]{64}")

# --- which mount holds the state directory (pure) ----------------------------


@dataclass(frozen=True, kw_only=True)
class StateMount:
    """What the container mounts at the state directory (or at a folder above it)."""

    kind: str
    """``volume`` (named), ``anonymous``, ``bind``, ``tmpfs``, ``none``, or another Docker mount type as is."""
    destination: str | None = None
    """Where it is mounted: ``STATE_DIR`` or a parent such as ``/var/lib``; None for ``none``."""
    name: str | None = None
    """The volume's real name (compose prefixes the project: ``<project>_tailscale-state``)."""
    source: str | None = None
    """The host path of a bind mount (or where the engine keeps a volume)."""
    driver: str | None = None
    created: str | None = None
    read_only: bool = False

    @property
    def persistent(self) -> bool:
        """The identity outlives the container (a recreate or rebuild keeps it)."""
        return self.kind in ("volume", "bind")

    def describe(self) -> str:
        where = "" if self.destination in (None, STATE_DIR) else f" at {self.destination} (holds {STATE_DIR})"
        ro = ", read-only" if self.read_only else ""
        if self.kind == "volume":
            return f"named volume {self.name}{where}{ro}"
        if self.kind == "anonymous":
            return f"anonymous volume {(self.name or '?')[:12]}{where}{ro}"
        if self.kind == "bind":
            return f"bind mount {self.source}{where}{ro}"
        if self.kind == "tmpfs":
            return f"tmpfs{where}"
        if self.kind == "none":
            return "nothing mounted (the container's own filesystem)"
        return f"{self.kind} mount {self.name or self.source or ''}{where}{ro}".replace("  ", " ")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "destination": self.destination,
            "name": self.name,
            "source": self.source,
            "driver": self.driver,
            "created": self.created,
            "read_only": self.read_only,
            "persistent": self.persistent,
        }


def _norm_dest(path: str) -> str:
    path = "/" + path.strip("/")
    return re.sub(r"/+", "/", path)


def _holds_state(dest: str) -> bool:
    return dest == STATE_DIR or STATE_DIR.startswith(dest.rstrip("/") + "/")


def is_anonymous_volume(name: str | None, volume: Mapping[str, Any] | None) -> bool:
    """Docker 23+ labels anonymous volumes; before that, only the 64-hex name tells."""
    labels = (volume or {}).get("Labels") or {}
    if ANONYMOUS_LABEL in labels:
        return True
    return not name or bool(_HEX64.fullmatch(name))


def inspect_state_mount(container_attrs: Mapping[str, Any], volume_lookup: Callable[[str], Mapping[str, Any] | None]) -> StateMount:
    """The mount that holds ``STATE_DIR``: the one at it, else the deepest one above it.

    ``container_attrs`` is ``docker inspect`` of the container; ``volume_lookup``
    gives ``docker volume inspect`` of a volume name (None when it is gone).
    ``--tmpfs`` mounts appear only in ``HostConfig.Tmpfs``, so that is read too.
    """
    entries: list[dict[str, Any]] = [dict(m) for m in container_attrs.get("Mounts") or () if isinstance(m, Mapping)]
    tmpfs = (container_attrs.get("HostConfig") or {}).get("Tmpfs") or {}
    for dest in tmpfs:
        entries.append({"Type": "tmpfs", "Destination": dest, "RW": True})
    best: dict[str, Any] | None = None
    best_dest = ""
    for m in entries:
        dest = _norm_dest(str(m.get("Destination") or m.get("Target") or ""))
        if dest == "/" or not _holds_state(dest):
            continue
        if best is None or len(dest) > len(best_dest):
            best, best_dest = m, dest
    if best is None:
        return StateMount(kind="none")
    kind = str(best.get("Type") or "volume")
    read_only = best.get("RW") is False
    if kind == "volume":
        name = best.get("Name") or None
        volume = volume_lookup(name) if name else None
        return StateMount(
            kind="anonymous" if is_anonymous_volume(name, volume) else "volume",
            destination=best_dest,
            name=name,
            source=best.get("Source") or (volume or {}).get("Mountpoint") or None,
            driver=best.get("Driver") or (volume or {}).get("Driver") or None,
            created=(volume or {}).get("CreatedAt") or None,
            read_only=read_only,
        )
    if kind == "bind":
        return StateMount(kind="bind", destination=best_dest, source=best.get("Source") or None, read_only=read_only)
    return StateMount(kind=kind, destination=best_dest, name=best.get("Name") or None, source=best.get("Source") or None, read_only=read_only)


def _volume_fix() -> str:
    from devc_tasks.core.compose import fix_text

    return (
        f"Mount a named volume at {STATE_DIR}. "
        + fix_text(("state-volume",))
        + "\nBack up first (`inv tailscale.state.backup`), rebuild the container, then restore "
        "(`inv tailscale.state.restore FILE --stop-daemon`) to keep this node."
    )


def state_mount_of(client: Any, container_attrs: Mapping[str, Any]) -> StateMount:
    """``inspect_state_mount`` with the Engine answering the volume look-ups."""
    from devc_tasks.shell.engine import volume_lookup

    return inspect_state_mount(container_attrs, volume_lookup(client))


def persistence_problem(mount: StateMount) -> tuple[str, str] | None:
    """(message, fix) when the node's identity will not survive, else None. For `up` and `doctor`."""
    if mount.kind == "none":
        return (
            (
                f"nothing is mounted at {STATE_DIR}: the node's identity lives in the container's own filesystem "
                "and is lost when the container is recreated (rebuilt); the next `up` then needs a new key and "
                "registers a new node, whose name gets a -1 suffix while the old one remains"
            ),
            _volume_fix(),
        )
    if mount.kind == "anonymous":
        return (
            (
                f"{STATE_DIR} is on an anonymous volume ({(mount.name or '?')[:12]}): a recreated container gets a "
                "fresh one, so the node's identity does not survive a rebuild"
            ),
            _volume_fix(),
        )
    if mount.kind == "tmpfs":
        return (f"{STATE_DIR} is on a tmpfs: the node's identity is lost whenever the container stops", _volume_fix())
    if mount.read_only:
        return (
            f"{mount.describe()}: tailscaled cannot save the node's identity there",
            "Mount it read-write (drop `:ro` / `readonly`) and recreate the container.",
        )
    if not mount.persistent:
        return (f"{STATE_DIR} is on a {mount.kind} mount, which may not keep the node's identity", _volume_fix())
    return None


def persistence_warning(mount: StateMount) -> str | None:
    """The warning `up` and `doctor` print when the identity will not survive a recreate."""
    problem = persistence_problem(mount)
    return None if problem is None else f"{problem[0]}.\n{problem[1]}"


def target_persistence_warning(target: Any) -> str | None:
    """The persistence warning for a resolved container; None with --local (no Engine to ask)."""
    if target.engine is None or target.executor is None:
        return None
    return persistence_warning(state_mount_of(target.engine.client, target.executor.inspect()))


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

    def tar(self, prefix: str = "") -> bytes:
        """A clean tar of the members (parents first), under ``prefix/`` when given."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as out:
            if prefix:
                top = tarfile.TarInfo(prefix)
                top.type, top.mode, top.mtime = tarfile.DIRTYPE, DIR_MODE, time.time()
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


def _archive_limit(max_size: int, max_members: int = MAX_MEMBERS) -> int:
    """The most bytes of archive read for ``max_size`` bytes of files: headers and padding on top."""
    return max_size + 1024 * (max_members + 20)


def validate_archive(data: bytes, *, max_size: int = DEFAULT_MAX_SIZE, max_members: int = MAX_MEMBERS) -> CheckedArchive:
    """Check a backup archive before anything changes; raise ``UnsafeArchive`` naming the bad member.

    Only plain tars are read (a compressed one could expand past any limit).
    The archive itself may be at most ``_archive_limit`` bytes, so no header
    (PAX, GNU long name) can make it read more; members are checked as they
    come, so an oversized or hostile one stops the reading before its data is read.
    """
    for magic, kind in _COMPRESSED:
        if data.startswith(magic):
            raise UnsafeArchive(
                f"refusing the archive: it is {kind}-compressed; backups are plain tar archives; nothing was changed",
                fix="Decompress it first (a backup from `inv tailscale.state.backup` is a plain .tar).",
            )
    limit = _archive_limit(max_size, max_members)
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


# --- the Engine part --------------------------------------------------------------


@dataclass
class StateContainer:
    """One container's state directory, reached through the Engine; it may be stopped."""

    client: Any
    id: str
    name: str
    attrs: dict[str, Any] = field(repr=False)  # inspect holds the container's env, a key included
    executor: Any = None  # DockerExecutor, for the execs restore and reset run in a running container

    @property
    def status(self) -> str:
        return str((self.attrs.get("State") or {}).get("Status") or "unknown")

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def labels(self) -> Mapping[str, str]:
        return (self.attrs.get("Config") or {}).get("Labels") or {}


def open_state(target: Any) -> StateContainer:
    """The container a resolved ``Target`` names (found with ``allow_stopped=True``)."""
    if target.engine is None or target.found is None:
        raise UsageError("the state tasks go through the Docker Engine's archive API: they take no --local")
    found = target.found.container
    return StateContainer(client=target.engine.client, id=found.id, name=found.name, attrs=target.executor.inspect(), executor=target.executor)


def _stream_errors() -> tuple[type[BaseException], ...]:
    import docker.errors
    import requests.exceptions
    import urllib3.exceptions

    return (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, docker.errors.DockerException)


def _get_archive(sc: StateContainer, path: str) -> tuple[Iterator[bytes], dict[str, Any]] | None:
    """``get_archive`` (works on a stopped container); None when ``path`` does not exist."""
    import docker.errors

    from devc_tasks.shell.engine import sdk_call

    def call() -> tuple[Iterator[bytes], dict[str, Any]] | None:
        try:
            return sc.client.api.get_archive(sc.id, path)
        except docker.errors.NotFound:
            return None

    return sdk_call(f"docker cp {sc.name}:{path}", call)


def _put_archive(sc: StateContainer, path: str, data: bytes) -> None:
    import docker.errors

    from devc_tasks.shell.engine import sdk_call

    def call() -> None:
        try:
            ok = sc.client.api.put_archive(sc.id, path, data)
        except docker.errors.APIError as e:  # the engine answered: a write problem, not a lost engine
            raise StateVolumeError(
                f"cannot write {path} in {sc.name}: {e.explanation or e}",
                fix="Is the state volume (or the container's filesystem) mounted read-only?",
            ) from None
        if not ok:
            raise StateVolumeError(f"the Docker engine refused to write {path} in {sc.name}")

    sdk_call(f"docker cp - {sc.name}:{path}", call)


def _state_file_identity(sc: StateContainer) -> StateIdentity:
    """What the state file holds, read through the archive API (works on a stopped
    container); its content stays in this process."""
    got = _get_archive(sc, STATE_FILE)
    if got is None:
        return "absent"
    chunks, _ = got
    try:
        with tarfile.open(fileobj=io.BufferedReader(_ChunkReader(chunks)), mode="r|") as tf:
            for info in tf:
                if info.isreg() and info.size <= DEFAULT_MAX_SIZE:
                    f = tf.extractfile(info)
                    return state_identity_of_bytes(f.read() if f is not None else b"")
    except (tarfile.TarError, OSError, ValueError):
        return "broken"
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return "absent"


def _state_file_size(sc: StateContainer) -> int | None:
    """Size of the state file from the archive API's stat header (its data is never read); None when there is none."""
    got = _get_archive(sc, STATE_FILE)
    if got is None:
        return None
    chunks, stat = got
    close = getattr(chunks, "close", None)
    if close is not None:
        close()
    return int((stat or {}).get("size") or 0)


class _ChunkReader(io.RawIOBase):
    """A readable stream over the archive API's chunks, so tarfile can stream through them."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._rest:
            try:
                self._rest = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._rest))
        buffer[:n] = self._rest[:n]
        self._rest = self._rest[n:]
        return n


def _listing(sc: StateContainer) -> set[str] | None:
    """The paths in the state directory, relative to it; None when it does not exist.

    Streams through the archive (file data is skipped, never held), so a big
    state directory costs time, not memory.
    """
    got = _get_archive(sc, STATE_DIR)
    if got is None:
        return None
    chunks, _ = got
    out: set[str] = set()
    try:
        with tarfile.open(fileobj=_ChunkReader(chunks), mode="r|") as tf:
            for info in tf:
                parts = [p for p in info.name.split("/") if p not in ("", ".")][1:]
                if parts:
                    out.add("/".join(parts))
    except _stream_errors() as e:
        raise EngineUnreachable(f"{sc.name}:{STATE_DIR}: lost the Docker engine while reading: {e}") from None
    except tarfile.TarError as e:
        raise StateVolumeError(f"cannot read {STATE_DIR} of {sc.name} through the archive API: {e}") from None
    return out


def _exec(sc: StateContainer, script: str, *args: str, what: str, timeout: float = 60) -> str:
    r = sc.executor.run(["sh", "-c", script, "devc-tasks", *args], timeout=timeout)
    if r.exit_code != 0:
        raise StateVolumeError(f"{what} failed in {sc.name} (exit {r.exit_code}): {(r.stderr or r.stdout).strip()}")
    return r.stdout


# -- show -----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StateReport:
    container: str
    container_id: str
    container_status: str
    mount: StateMount
    has_identity: bool
    state_file_size: int | None
    state_broken: bool = False  # the state file is not valid JSON
    status: Any | None  # status.Status when the daemon answers
    daemon_running: bool | None  # None: container stopped, or the probe failed
    probe_error: str | None = None

    @property
    def warning(self) -> str | None:
        return persistence_warning(self.mount)


def show(sc: StateContainer) -> StateReport:
    mount = state_mount_of(sc.client, sc.attrs)
    size = _state_file_size(sc)
    file_identity = _state_file_identity(sc) if size else "absent"
    has_identity = file_identity == "identity"
    status = None
    daemon: bool | None = None
    probe_error = None
    if sc.running:
        from devc_tasks.shell.node import Node

        try:
            probe = Node(sc.executor).probe()
        except DevcError as e:
            probe_error = e.message
        else:
            status = probe.status
            daemon = probe.daemon_pid is not None or probe.status is not None
            if probe.status is not None:
                # the daemon knows best (it may hold an identity it has not written yet)
                has_identity = probe.has_identity
    return StateReport(
        container=sc.name,
        container_id=sc.id,
        container_status=sc.status,
        mount=mount,
        has_identity=has_identity,
        state_file_size=size,
        state_broken=file_identity == "broken",
        status=status,
        daemon_running=daemon,
        probe_error=probe_error,
    )


# -- backup ---------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class BackupResult:
    path: Path
    size: int
    files: int
    has_identity: bool
    warnings: tuple[str, ...] = ()
    restorable: bool = True
    """False when restore (with its default limit) would refuse the file; the warnings say why."""


def backup_path(sc: StateContainer, output: str | None, now: datetime | None = None, cwd: Path | None = None) -> Path:
    """``--output`` (a file, or a folder for the default name), else the default name here."""
    name = default_backup_name(backup_label(sc.name, sc.labels), now or datetime.now(UTC))
    base = cwd or Path.cwd()
    if not output:
        return base / name
    path = Path(output).expanduser()
    if not path.is_absolute():
        path = base / path
    return path / name if path.is_dir() else path


def _create_private(path: Path, *, exclusive: bool) -> int:
    """Open for writing with mode 0600 from the first moment; never follows a symlink."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        if exclusive:
            raise UsageError(f"{path} already exists; not overwriting it", fix="Pass --force to replace it, or choose another --output.") from None
        raise
    except OSError as e:
        raise StateVolumeError(f"cannot create {path}: {e.strerror or e}") from None
    os.fchmod(fd, 0o600)
    return fd


def check_backup_target(path: Path, *, force: bool) -> None:
    """Refuse, before anything happens, a backup file that cannot or must not be written."""
    if not path.parent.is_dir():
        raise UsageError(f"{path.parent} is not a folder", fix="Create it, or choose another --output.")
    if not force and (path.exists() or path.is_symlink()):
        raise UsageError(f"{path} already exists; not overwriting it", fix="Pass --force to replace it, or choose another --output.")


def backup(sc: StateContainer, path: Path, *, force: bool = False) -> BackupResult:
    """A tar of the state directory through the archive API, written with mode 0600.

    Without ``force`` an existing file is never touched; with it, the new
    backup is written beside it and renamed over it only when complete.
    """
    check_backup_target(path, force=force)
    got = _get_archive(sc, STATE_DIR)
    if got is None:
        raise StateVolumeError(
            f"{sc.name} has no {STATE_DIR}: there is nothing to back up",
            fix="tailscaled has not run in this container yet (`inv tailscale.up`), or its state lives elsewhere.",
        )
    chunks, _ = got
    target = path if not force else path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
    fd = _create_private(target, exclusive=not force)
    size = 0
    done = False
    try:
        with os.fdopen(fd, "wb") as f:
            try:
                for chunk in chunks:
                    f.write(chunk)
                    size += len(chunk)
            except _stream_errors() as e:
                raise EngineUnreachable(f"lost the Docker engine while reading {sc.name}:{STATE_DIR}: {e}") from None
            f.flush()
            os.fsync(f.fileno())
        if force:
            os.replace(target, path)
        done = True
    except OSError as e:
        raise StateVolumeError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        if not done:
            try:
                os.unlink(target)
            except OSError:
                pass
    # Read back as restore will read it: a file past restore's limit is refused
    # on its size, never loaded whole; then only its headers are scanned.
    warnings: list[str] = []
    try:
        checked, _ = read_archive(path, max_size=DEFAULT_MAX_SIZE)
    except UnsafeArchive as e:
        warnings.append(f"restore would refuse this backup as it is: {e.message.replace('; nothing was changed', '')}")
        files, has_identity = _scan_backup(path, warnings)
        return BackupResult(path=path, size=size, files=files, has_identity=has_identity, warnings=tuple(warnings), restorable=False)
    return BackupResult(path=path, size=size, files=len(checked.files), has_identity=checked.has_identity)


def _scan_backup(path: Path, warnings: list[str]) -> tuple[int, bool]:
    """(files, has identity) of a backup restore refuses, from its headers only (file data is skipped)."""
    files, has_identity = 0, False
    try:
        with tarfile.open(path, mode="r:") as tf:
            for i in tf:
                if i.isreg():
                    files += 1
                    if i.name.split("/")[-1] == STATE_FILE_NAME and i.name.count("/") == 1 and 0 < i.size <= DEFAULT_MAX_SIZE:
                        f = tf.extractfile(i)
                        has_identity = has_identity or (f is not None and state_identity_of_bytes(f.read()) == "identity")
    except (tarfile.TarError, EOFError, OSError, ValueError) as e:
        warnings.append(f"{path} cannot be read back as a tar archive: {e}")
    return files, has_identity


# -- restore --------------------------------------------------------------------


def read_archive(path: Path, *, max_size: int = DEFAULT_MAX_SIZE) -> tuple[CheckedArchive, list[str]]:
    """Read and check a backup file; the warnings say what the user should know about it.

    Only a regular file is opened, and without blocking: a FIFO or a device
    would hang the read.
    """
    try:
        if not _is_regular(os.stat(path).st_mode):
            raise UsageError(f"{path} is not a regular file")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not _is_regular(st.st_mode):  # swapped since the stat
            raise UsageError(f"{path} is not a regular file")
        limit = _archive_limit(max_size)
        if st.st_size > limit:
            raise UnsafeArchive(f"refusing the archive: {path} is {st.st_size} bytes, more than the limit of {max_size} bytes of files (--max-size); nothing was changed")
        data = f.read(limit + 1)
    warnings = []
    if st.st_mode & 0o077:
        warnings.append(f"{path} can be read by other users and holds the node's private keys: chmod 600 {path}")
    return validate_archive(data, max_size=max_size), warnings


def _is_regular(mode: int) -> bool:
    import stat

    return stat.S_ISREG(mode)


@dataclass(frozen=True, kw_only=True)
class RestoreResult:
    files: int
    size: int
    layout: str
    steps: tuple[str, ...]
    daemon_restarted: bool
    status: Any | None  # after the restore, when the daemon answers
    warnings: tuple[str, ...] = ()


_LOCK_WAIT = 30
_DAEMON_RUNS = 3
_OLD_KEPT = 4
_STOPPED = "devc-stopped"


def _locked(body: str) -> str:
    """``body`` after plan.SH_LIB, holding the lock `up` takes (tailscale._LOCK): no `up` can
    start tailscaled while it runs. Exits 75 (tailscale._LOCK_BUSY) when the lock stays taken."""
    from devc_tasks.shell.node import _LOCK

    return plan.SH_LIB + f"DEVC_LOCK_WAIT={_LOCK_WAIT}\n" + _LOCK + body


# Stops every tailscaled (SIGTERM, SIGKILL after 10 s) when $STOP is 1, saying so
# on stdout; with STOP=0 a running one means another command started it: exit 3.
_STOP_ALL = r"""
if [ -n "$(ts_pids)" ]; then
  [ "$STOP" = 1 ] || { echo "tailscaled is running (started meanwhile?)" >&2; exit %(runs)d; }
  echo %(stopped)s
  stop_tailscaled || exit 1
fi
""" % {"runs": _DAEMON_RUNS, "stopped": _STOPPED}

# Under the lock: stops tailscaled, then swaps the staged copy in by renames
# only (same filesystem): the old entries move aside to $T.old, the staged ones
# move up. If a rename fails, the old entries are put back: the identity that
# was there is never lost half-way. If putting them back fails too, $T.old is
# kept (never deleted: it may hold the only copy of the identity), its path
# printed as devc-kept=..., and the script exits 4 (_OLD_KEPT).
_SWAP = "D=$1; T=$2; STOP=$3\n" + _STOP_ALL + r"""
O="$T.old"
rm -rf "$O" && mkdir "$O" || exit 1
entries() {
  for e in "$1"/* "$1"/.[!.]* "$1"/..?*; do
    { [ -e "$e" ] || [ -L "$e" ]; } && [ "$e" != "$T" ] && [ "$e" != "$O" ] && printf '%%s\n' "$e"
  done
  return 0
}
phase=1
if entries "$D" | while IFS= read -r e; do mv "$e" "$O"/ || exit 1; done; then
  phase=2
  if entries "$T" | while IFS= read -r e; do mv "$e" "$D"/ || exit 1; done; then
    rmdir "$T" && rm -rf "$O"
    chmod %(dir_mode)s "$D"
    exit 0
  fi
fi
if [ "$phase" = 2 ]; then entries "$D" | while IFS= read -r e; do rm -rf "$e"; done; fi
# put back; never over (or into) an entry of the same name
if entries "$O" | while IFS= read -r e; do
     n="$D/${e##*/}"; { [ -e "$n" ] || [ -L "$n" ]; } && exit 1; mv "$e" "$D"/ || exit 1
   done && rmdir "$O"; then
  echo "the swap failed; the previous state is back in place" >&2
  exit 1
fi
echo "devc-kept=$O"
echo "the swap failed and the previous state could not all be put back" >&2
exit %(kept)d
""" % {"dir_mode": format(DIR_MODE, "o"), "kept": _OLD_KEPT}

# Under the lock (so after any swap still running): after a failed restore, the
# staged copy goes; $T.old goes only when empty, else it is kept and reported.
_AFTER_FAILED_SWAP = r"""
T=$1; O="$1.old"
rm -rf "$T"
if [ -d "$O" ] && ! rmdir "$O" 2>/dev/null; then echo "devc-kept=$O"; fi
exit 0
"""


def _run_locked(sc: StateContainer, body: str, *args: str) -> tuple[Any, bool]:
    """(exec result, whether it stopped tailscaled); the caller checks the result with ``_check_locked``."""
    r = sc.executor.run(["sh", "-c", _locked(body), "devc-tasks", *args], timeout=_LOCK_WAIT + 90)
    return r, _STOPPED in r.stdout.split()


def _check_locked(sc: StateContainer, r: Any, what: str) -> str:
    from devc_tasks.shell.node import _LOCK_BUSY

    if r.exit_code == 0:
        return r.stdout
    if r.exit_code == _LOCK_BUSY:
        raise TimedOut(f"{what}: another devc-tasks command held {plan.LOCK_FILE} for {_LOCK_WAIT} s; nothing was changed", fix="Wait for it to finish, then retry.")
    if r.exit_code == _DAEMON_RUNS:
        raise StateVolumeError(
            f"{what}: tailscaled started in {sc.name} meanwhile (another `up`?); nothing was changed",
            fix="Pass --stop-daemon: restore then stops tailscaled, replaces the state and starts it again.",
        )
    raise StateVolumeError(f"{what} failed in {sc.name} (exit {r.exit_code}): {(r.stderr or r.stdout).strip()}")


def _quietly(call: Callable[[], Any]) -> None:
    """Clean-up after a failure: the first error is the one to report."""
    try:
        call()
    except Exception:  # noqa: BLE001
        pass


_SETTLING = ("Starting", "NoState")


def restore(
    sc: StateContainer,
    archive: CheckedArchive,
    *,
    stop_daemon: bool = False,
    daemon_wait: float = 20.0,
    on_step: Callable[[str], None] = lambda text: None,
) -> RestoreResult:
    """Put a checked archive in place of the state directory.

    A running container gets an exact copy: the archive goes to a staging
    folder first, so a failed copy leaves the old state alone; then tailscaled
    is stopped (only with ``stop_daemon``), the folder emptied, the copy moved
    in (stop and swap in one exec holding `up`'s lock), and a daemon that ran
    is started again, also when a step fails. When a failed swap (or one cut
    off half-way) could not put the previous state back, that state stays
    where the swap set it aside (``<stage>.old``), the error says where, and
    tailscaled stays stopped: the only copy of an identity is never deleted.
    A stopped container gets the archive through ``put_archive``.
    """
    if not sc.running:
        return _restore_stopped(sc, archive, on_step)
    from devc_tasks.shell.node import Node

    node = Node(sc.executor, on_step=on_step)
    before = node.probe()
    daemon_ran = before.daemon_pid is not None or before.status is not None
    if daemon_ran and not stop_daemon:
        raise StateVolumeError(
            f"tailscaled is running in {sc.name}: restoring under it would mix two identities; nothing was changed",
            fix="Pass --stop-daemon: restore then stops tailscaled, replaces the state and starts it again.",
        )
    userspace = before.status is not None and not before.status.tun
    argv = plan.tailscaled_argv(before.tailscaled or "tailscaled", userspace=userspace)
    cli = before.tailscale or "tailscale"
    stage = f"{STATE_DIR}/.devc-restore-{uuid.uuid4().hex[:10]}"
    _exec(sc, 'mkdir -p "$1" && chmod 700 "$1"', stage, what=f"creating {stage}")
    steps: list[str] = []
    restart = daemon_ran
    swapping = False
    try:
        on_step("copy the archive into the container")
        _put_archive(sc, stage, archive.tar())
        on_step(f"stop tailscaled and replace {STATE_DIR}" if daemon_ran else f"replace {STATE_DIR}")
        # one exec under `up`'s lock: no `up` can start tailscaled between the stop and the swap
        swapping = True
        r, stopped = _run_locked(sc, _SWAP, STATE_DIR, stage, "1" if stop_daemon else "0")
        restart = restart or stopped
        if stopped:
            steps.append("stopped tailscaled")
        if r.exit_code != _OLD_KEPT:
            _check_locked(sc, r, f"replacing {STATE_DIR}")
        else:
            raise StateVolumeError(f"replacing {STATE_DIR} failed in {sc.name}: {(r.stderr or r.stdout).strip()}")
        steps.append(f"restored {_files(len(archive.files))}")
    except BaseException as exc:
        # whatever failed: no staging folder left behind, never the previous state
        # deleted, and a daemon that ran runs again unless its state is set aside
        kept = _after_failed_swap(sc, stage)
        if kept == _UNKNOWN and not swapping:
            kept = None  # the swap never ran: nothing was set aside
        if restart and kept is None:
            on_step("start tailscaled")
            _quietly(lambda: node.start_daemon(argv, cli=cli, wait=daemon_wait))
        if kept is None or not isinstance(exc, Exception):
            raise
        raise _kept_error(sc, kept, exc, daemon_stopped=restart) from exc
    if restart:
        on_step("start tailscaled")
        node.start_daemon(argv, cli=cli, wait=daemon_wait)
    warnings: list[str] = []
    status = None
    if restart:
        steps.append("started tailscaled")
        status = _settle(node, daemon_wait)
        warnings.extend(_after_restore_warnings(status))
    else:
        warnings.append("tailscaled was not running; `inv tailscale.up` starts it with the restored identity (no key needed)")
    return RestoreResult(
        files=len(archive.files), size=archive.total_size, layout=archive.layout, steps=tuple(steps),
        daemon_restarted=restart, status=status, warnings=tuple(warnings),
    )


_UNKNOWN = "unknown"


def _after_failed_swap(sc: StateContainer, stage: str) -> str | None:
    """Clean up after a failed restore: the staged copy goes, ``<stage>.old`` (the previous
    state set aside) only when empty. Its path when kept; ``_UNKNOWN`` when the container
    cannot be asked (then nothing was deleted either); None when nothing is set aside."""
    try:
        r, _ = _run_locked(sc, _AFTER_FAILED_SWAP, stage)
    except Exception:  # noqa: BLE001 - the first error is the one to report
        return _UNKNOWN
    if r.exit_code != 0:
        return _UNKNOWN
    m = re.search(r"^devc-kept=(.+)$", r.stdout, re.M)
    return m.group(1) if m else None


def _kept_error(sc: StateContainer, kept: str, exc: BaseException, *, daemon_stopped: bool) -> DevcError:
    """The failure, saying where the previous identity is: it is never deleted."""
    old = kept if kept != _UNKNOWN else "a folder .devc-restore-*.old"
    first = exc.message if isinstance(exc, DevcError) else f"{type(exc).__name__}: {exc}"
    where = (
        f"the previous state (the node's identity) is kept in {old} in {sc.name}, not deleted"
        if kept != _UNKNOWN
        else f"{sc.name} could not be asked whether the previous state is back; if not, it is in {old} under {STATE_DIR}, not deleted"
    )
    daemon = "; tailscaled was not started again" if daemon_stopped else ""
    return StateVolumeError(
        f"{first}; {where}{daemon}",
        fix=(
            f"Look at {STATE_DIR} in the container (`docker exec -it {sc.name} sh`): move the entries of {old} back "
            f"into {STATE_DIR} (after removing what the failed restore left there), then run `inv tailscale.up` "
            "(no key needed); or run the restore again."
        ),
    )


def _files(n: int) -> str:
    return "1 file" if n == 1 else f"{n} files"


def _settle(node: Any, wait: float) -> Any:
    """Probe until the backend leaves Starting (bounded); the last status seen."""
    deadline = time.monotonic() + wait
    status = node.probe().status
    while (status is None or status.backend_state in _SETTLING) and time.monotonic() < deadline:
        time.sleep(0.3)
        status = node.probe().status
    return status


def _after_restore_warnings(status: Any) -> list[str]:
    if status is None:
        return ["tailscaled does not answer after the restore; see /var/log/tailscaled.log in the container"]
    if status.backend_state == "NeedsLogin":
        return [
            (
                "the node came back logged out (NeedsLogin): the control server no longer accepts this backup's node key "
                "(the node was logged out, e.g. by `state.reset`, or removed). Run `inv tailscale.up` with an auth key."
            )
        ]
    if status.backend_state in _SETTLING:
        what = "connecting (the daemon waits for control's first network map)" if status.connecting else status.backend_state
        return [f"the node is still {what}; check `inv tailscale.status` in a moment (no key needed)"]
    return []


def _restore_stopped(sc: StateContainer, archive: CheckedArchive, on_step: Callable[[str], None]) -> RestoreResult:
    listing = _listing(sc)
    present = listing or set()
    on_step("copy the archive into the stopped container")
    # into the parent, the state directory itself included: the Engine sets the owner
    # and mode of an existing directory from the archive too, so it becomes root's 0700
    parent = STATE_DIR.rsplit("/", 1)[0] or "/"
    warnings = []
    try:
        _put_archive(sc, parent, archive.tar(prefix=ARCHIVE_TOP))
    except StateVolumeError:
        if listing is None:
            raise
        # the parent may be read-only (a --read-only root filesystem) while the volume is not
        _put_archive(sc, STATE_DIR, archive.tar())
        warnings.append(f"{STATE_DIR} itself kept its owner and mode (its parent is read-only); what it holds is root's, 0600/0700")
    wanted = {m.path for m in archive.members}
    stale = sorted(p for p in present if p not in wanted and not any(w.startswith(p + "/") for w in wanted))
    if stale:
        shown = ", ".join(stale[:5]) + (f" and {len(stale) - 5} more" if len(stale) > 5 else "")
        warnings.append(
            f"the container is stopped, so files the archive does not hold stayed in {STATE_DIR}: {shown}. "
            "For an exact copy start the container and run restore again with --stop-daemon."
        )
    warnings.append("the container is stopped; once it runs, `inv tailscale.up` brings the node up with the restored identity (no key needed)")
    return RestoreResult(
        files=len(archive.files), size=archive.total_size, layout=archive.layout,
        steps=(f"restored {_files(len(archive.files))}",), daemon_restarted=False, status=None, warnings=tuple(warnings),
    )


# -- reset ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ResetResult:
    steps: tuple[str, ...]
    backup: BackupResult | None
    node_id: str | None  # the node that was there before
    logged_out: bool
    removed: int  # entries removed from the state directory
    warnings: tuple[str, ...] = ()


_PRESENT = r"""
if [ ! -d "$1" ]; then echo missing; elif [ -n "$(find "$1" -mindepth 1 | head -n 1)" ]; then echo files; else echo empty; fi
"""

# Under the lock: stops tailscaled, then empties the state directory (when there is one).
_EMPTY = "D=$1; STOP=1\n" + _STOP_ALL + r"""
set -e
[ -d "$D" ] || exit 0
n=$(find "$D" -mindepth 1 | wc -l)
# rm per top entry, not `find -delete`: BusyBox find may lack -delete
for e in "$D"/* "$D"/.[!.]* "$D"/..?*; do
  if [ -e "$e" ] || [ -L "$e" ]; then rm -rf "$e"; fi
done
left=$(find "$D" -mindepth 1 | head -n 1)
if [ -n "$left" ]; then echo "still there: $left" >&2; exit 1; fi
echo "removed=$n"
"""


def require_running(sc: StateContainer, what: str) -> None:
    if not sc.running:
        raise ContainerNotRunning(
            f"container {sc.name} is {sc.status}: {what} needs it running (to log the node out and empty {STATE_DIR})",
            fix=f"Start it (`docker start {sc.name}`), then run it again.",
        )


def reset(
    sc: StateContainer,
    *,
    backup_to: Path | None,
    force: bool = False,
    logout: bool = True,
    on_step: Callable[[str], None] = lambda text: None,
) -> ResetResult:
    """Back up, log out, stop tailscaled, empty the state directory; in that order.

    The backup comes first so that nothing is lost if a later step fails. After a
    logout the control server no longer accepts the backup's node key: restoring
    it gives a node that must log in again. ``logout=False`` keeps the node on the
    tailnet, so a restore brings the same node back. When restore would refuse
    the backup, the reset stops before anything is deleted. The caller checks
    that the container runs (``require_running``) before asking for confirmation.
    """
    from devc_tasks.shell.node import Node

    out = _exec(sc, _PRESENT, STATE_DIR, what=f"looking at {STATE_DIR}").strip()
    present = None if out == "missing" else out == "files"
    node = Node(sc.executor, on_step=on_step)
    probe = node.probe()
    steps: list[str] = []
    saved = None
    # the daemon's word when it answers, else the state file's content
    has_identity = probe.has_identity
    warnings: list[str] = []
    if backup_to is not None and present:
        on_step(f"back up to {backup_to}")
        saved = backup(sc, backup_to, force=force)
        if not has_identity:
            # nothing a restore could bring back: the backup is a courtesy, not a condition
            warnings.append("the state directory held no node identity (a fresh daemon's `{}`, or what a logout leaves)")
        elif not saved.restorable:
            raise StateVolumeError(
                f"not resetting {sc.name}: the backup just written to {saved.path} could not be restored "
                f"({'; '.join(saved.warnings)}); nothing was deleted",
                fix="Look at what the state directory holds; to reset without a usable backup, pass --no-backup.",
            )
        steps.append(f"backed up to {saved.path}")
    node_id = probe.status.self.id if probe.status is not None else None
    logged_out = False

    if logout and probe.status is not None and probe.status.logged_in:
        on_step("log out")
        node.logout()
        logged_out = True
        steps.append("logged out")
    elif logout and probe.status is None and present and has_identity:
        warnings.append(
            "tailscaled was not running, so the node could not log out: it stays listed on the tailnet. "
            "Remove it in the Tailscale admin console (or restore the backup, run `up`, then reset again)."
        )
    on_step(f"stop tailscaled and empty {STATE_DIR}")
    # one exec under `up`'s lock: no `up` can start tailscaled between the stop and the emptying
    r, stopped = _run_locked(sc, _EMPTY, STATE_DIR)
    if stopped:
        steps.append("stopped tailscaled")
    out = _check_locked(sc, r, f"emptying {STATE_DIR}")
    m = re.search(r"^removed=(\d+)$", out, re.M)
    removed = int(m.group(1)) if m else 0
    if m:
        steps.append(f"emptied {STATE_DIR}")
    if not steps:
        steps.append(f"{STATE_DIR} is already empty")
    return ResetResult(
        steps=tuple(steps), backup=saved, node_id=node_id or None, logged_out=logged_out, removed=removed, warnings=tuple(warnings)
    )
