"""Which mount holds the state directory (from ``docker inspect`` output), whether it
survives a recreate of the container, and what to say when it does not. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from devc_tasks.core.compose_render import fix_text
from devc_tasks.core.paths import STATE_DIR

__all__ = ["ANONYMOUS_LABEL", "StateMount", "inspect_state_mount", "is_anonymous_volume", "persistence_problem", "persistence_warning"]

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
    return (
        f"Mount a named volume at {STATE_DIR}. "
        + fix_text(("state-volume",))
        + "\nBack up first (`inv tailscale.state.backup`), rebuild the container, then restore "
        "(`inv tailscale.state.restore FILE --stop-daemon`) to keep this node."
    )


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
