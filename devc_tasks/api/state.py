"""The state volume in the Python API: backup and restore of /var/lib/tailscale.

Both go through the Engine's archive API, so they work on a stopped container
too, and take no ``local``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from devc_tasks.api.node import PathArg, target
from devc_tasks.api.types import OnEvent, Progress
from devc_tasks.core.errors import UsageError
from devc_tasks.core.options import seconds
from devc_tasks.shell.state.backup import BackupResult
from devc_tasks.shell.state.restore import RestoreResult
from devc_tasks.shell.state.transport import StateContainer

__all__ = ["state_backup", "state_restore", "BackupReport", "RestoreReport"]


@dataclass(frozen=True)
class BackupReport:
    """``state.backup``: the tar written (mode 0600; it holds the node's private keys)."""

    container: str
    result: BackupResult

    @property
    def path(self) -> Path:
        return self.result.path


@dataclass(frozen=True)
class RestoreReport:
    """``state.restore``: what was put back, and the node when its daemon answers."""

    container: str
    archive: str
    result: RestoreResult
    warnings: list[str] = field(default_factory=list)


def _open(container: str | None, workspace: PathArg | None, host: str | None, context: str | None, environ: Mapping[str, str] | None) -> StateContainer:
    from devc_tasks.shell.state.transport import open_state

    return open_state(target(container, workspace, host, context, False, environ, allow_stopped=True))


def state_backup(
    *,
    container: str | None = None,
    workspace: PathArg | None = None,
    host: str | None = None,
    context: str | None = None,
    output: PathArg | None = None,
    force: bool = False,
    environ: Mapping[str, str] | None = None,
    on_event: OnEvent | None = None,
) -> BackupReport:
    """Back up /var/lib/tailscale to a tar (mode 0600) at ``output`` (a file, or a folder
    for the default name ``tailscale-state-<project>-<UTC time>.tar``; default: here).
    An existing file is replaced only with ``force``. The tar holds the node's private
    keys: the report's warnings say so, and where it went."""
    from devc_tasks.shell.state.backup import backup, backup_path

    progress = Progress(on_event)
    sc = _open(container, workspace, host, context, environ)
    progress.container = sc.name
    progress.emit("resolve", f"found {sc.name}")
    path = backup_path(sc, os.fspath(output) if output is not None else None)
    progress.emit("backup", f"back up to {path}")
    result = backup(sc, path, force=force)
    progress.emit("done", f"backed up to {result.path}")
    return BackupReport(sc.name, result)


def state_restore(
    file: PathArg,
    *,
    container: str | None = None,
    workspace: PathArg | None = None,
    host: str | None = None,
    context: str | None = None,
    stop_daemon: bool = False,
    max_size: str | int | None = None,
    daemon_wait: float = 20.0,
    environ: Mapping[str, str] | None = None,
    on_event: OnEvent | None = None,
) -> RestoreReport:
    """Restore /var/lib/tailscale from a backup, after checking it (regular files only,
    no links, no absolute paths or ``..``, at most ``max_size``, default 64M) before the
    engine is even asked: a refused archive changes nothing. A running tailscaled is
    stopped and started again only with ``stop_daemon``."""
    from devc_tasks.core.archive import DEFAULT_MAX_SIZE, parse_size
    from devc_tasks.shell.state.backup import read_archive
    from devc_tasks.shell.state.restore import restore

    name = os.fspath(file)
    if name.startswith("-"):
        raise UsageError(f"{name!r} is an option, not a backup file", fix="Usage: inv tailscale.state.restore FILE [--stop-daemon]; help: inv --help tailscale.state.restore")
    settle = seconds(daemon_wait, "daemon_wait")
    limit = parse_size(max_size) if max_size is not None else DEFAULT_MAX_SIZE
    archive, warnings = read_archive(Path(name).expanduser(), max_size=limit)
    progress = Progress(on_event)
    sc = _open(container, workspace, host, context, environ)
    progress.container = sc.name
    progress.emit("resolve", f"found {sc.name}")
    result = restore(sc, archive, stop_daemon=stop_daemon, daemon_wait=settle, on_step=progress.step)
    progress.emit("done", ", ".join(result.steps))
    return RestoreReport(sc.name, name, result, [*warnings, *result.warnings])
