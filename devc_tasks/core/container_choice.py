"""Which container of several is the devcontainer: the labels the devcontainer CLI and
compose set, and the choice among the candidates an Engine listed. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devc_tasks.core.errors import (
    AmbiguousContainer,
    ContainerNotRunning,
)

__all__ = ["ContainerInfo", "choose_container"]

LABEL_LOCAL_FOLDER = "devcontainer.local_folder"
LABEL_CONFIG_FILE = "devcontainer.config_file"
LABEL_COMPOSE_PROJECT = "com.docker.compose.project"
LABEL_COMPOSE_SERVICE = "com.docker.compose.service"


# --- finding the container -------------------------------------------------


@dataclass(frozen=True)
class ContainerInfo:
    id: str
    name: str
    status: str  # running, exited, created, paused, ...
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.status == "running"


@dataclass(frozen=True)
class Found:
    container: ContainerInfo
    how: str  # how it was found, for `doctor` and error messages
    attrs: Mapping[str, Any] | None = None  # the inspect document, when the lookup fetched it


NAME_HINT = "Name it with --container NAME|ID (see `docker ps`), or run from the workspace folder / pass --workspace DIR."


def choose_container(candidates: Sequence[ContainerInfo], searched: str, *, allow_stopped: bool = False) -> ContainerInfo | None:
    """Pick one container from the matches of one search, or explain why not.

    A stopped container beside a running one is an old copy: the running one
    wins. Several running ones (or several stopped ones and none running) are
    ambiguous. None found returns None so the caller can try the next rule.
    ``allow_stopped`` accepts a stopped one (the state tasks use the archive API).
    """
    if not candidates:
        return None
    running = [c for c in candidates if c.running]
    pool = running or list(candidates)
    if len(pool) > 1:
        listing = "\n".join(f"  {c.name} ({c.id[:12]}, {c.status})" for c in pool)
        raise AmbiguousContainer(f"several containers match {searched}:\n{listing}", fix=NAME_HINT)
    chosen = pool[0]
    if not chosen.running and not allow_stopped:
        raise ContainerNotRunning(
            f"container {chosen.name} ({chosen.id[:12]}), found by {searched}, is {chosen.status}",
            fix="Start it first: `devcontainer up --workspace-folder DIR`, `docker compose up -d` or `docker start NAME`.",
        )
    return chosen


def workspace_candidates(workspace: Path, resolved: Path) -> list[str]:
    """The spellings of the workspace folder the devcontainer CLI may have recorded.

    The CLI stores the folder as it was given, symlinks not resolved: try the
    folder as we found it (from the logical current directory, see
    ``logical_cwd``) and its resolved form (``resolved``, which the shell reads).
    """
    return list(dict.fromkeys([str(workspace), str(resolved)]))
