"""Show and back up a container's state directory through the archive API; read a
backup file back (bounded) for restore.
"""

from __future__ import annotations

import os
import tarfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devc_tasks.core.archive import DEFAULT_MAX_SIZE, STATE_FILE_NAME, CheckedArchive, archive_limit, backup_label, default_backup_name, validate_archive
from devc_tasks.core.errors import DevcError, EngineUnreachable, StateVolumeError, UnsafeArchive, UsageError
from devc_tasks.core.identity import state_identity_of_bytes
from devc_tasks.core.paths import STATE_DIR
from devc_tasks.core.persistence import StateMount, persistence_warning
from devc_tasks.shell.state.mount import state_mount_of
from devc_tasks.shell.state.transport import StateContainer, get_archive, state_file_identity, state_file_size, stream_errors

__all__ = ["BackupResult", "StateReport", "backup", "backup_path", "check_backup_target", "read_archive", "show"]

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
    size = state_file_size(sc)
    file_identity = state_file_identity(sc) if size else "absent"
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
    """``--output`` (a file, or a folder for the default name), else the default name here.

    As with ``cp``, a path ending in ``/`` names a folder: one that is not there is a usage error
    (a file called ``newdir`` would be a surprise), never created."""
    name = default_backup_name(backup_label(sc.name, sc.labels), now or datetime.now(UTC))
    base = cwd or Path.cwd()
    if not output:
        return base / name
    path = Path(output).expanduser()
    if not path.is_absolute():
        path = base / path
    if path.is_dir():
        return path / name
    if output.endswith(("/", os.sep)):
        raise UsageError(f"--output {output}: {path} is not a folder", fix=f"Create it first (`mkdir -p {path}`), or drop the trailing / to name the file.")
    return path


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
    got = get_archive(sc, STATE_DIR)
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
            except stream_errors() as e:
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
        limit = archive_limit(max_size)
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
