"""Where a container's state lives and whether it persists, asked of the Engine; the
rules are ``core.persistence``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from devc_tasks.core.persistence import StateMount, inspect_state_mount, persistence_warning


def state_mount_of(client: Any, container_attrs: Mapping[str, Any]) -> StateMount:
    """``inspect_state_mount`` with the Engine answering the volume look-ups."""
    from devc_tasks.shell.engine import volume_lookup

    return inspect_state_mount(container_attrs, volume_lookup(client))


def target_persistence_warning(target: Any) -> str | None:
    """The persistence warning for a resolved container; None with --local (no Engine to ask)."""
    if target.engine is None or target.executor is None:
        return None
    return persistence_warning(state_mount_of(target.engine.client, target.executor.inspect()))
