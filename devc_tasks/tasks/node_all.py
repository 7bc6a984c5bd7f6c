"""``--all``: ``down`` and ``status`` over every devcontainer on an engine, one row each,
bounded per row.
"""

from __future__ import annotations

from typing import Any

from devc_tasks.core.errors import DevcError, UsageError
from devc_tasks.tasks.node_report import status_doc

ALL_TIMEOUT = 20.0  # seconds one container of --all may take before its row is an error

ALL_HELP = "Every devcontainer on the engine, concurrently, one row each"
ROW_TIMEOUT_HELP = f"With --all: seconds each container may take before its row is an error (default {ALL_TIMEOUT:g})."


def down_all(out: Any, host: str | None, context: str | None, *, logout: bool, yes: bool, timeout: float, label: str | None = None) -> DevcError | None:
    """`down` in every running devcontainer at once, after asking; the first row's error, if any."""
    import sys

    from devc_tasks.api.types import Progress
    from devc_tasks.core.events import event_kind
    from devc_tasks.shell.executors import DockerExecutor
    from devc_tasks.tasks.fleet import Clamped, list_devcontainers, run_each
    from devc_tasks.tasks.ui import node_doc

    engine, infos = list_devcontainers(host, context, label)
    running = [i for i in infos if i.running]
    what = "log out" if logout else "disconnect"
    if running and not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"down --all would {what} {len(running)} devcontainer(s); it asks for confirmation, and this run is not interactive",
                fix="Pass --yes to confirm.",
            )
        names = ", ".join(i.name for i in running)
        if not out.confirm(f"{what.capitalize()} tailscale in {len(running)} devcontainer(s): {names}?"):
            raise DevcError("not confirmed: nothing was changed")

    progress = Progress(out.on_event)

    def one(info: Any) -> Any:
        from devc_tasks.shell.node import Node

        executor = DockerExecutor(client=engine.client, container_id=info.id, description=f"container {info.name}")
        after, done = Node(Clamped(executor, timeout), on_step=lambda text: progress.emit(event_kind(text), text, container=info.name)).down(logout=logout)
        progress.emit("down", ", ".join(done), container=info.name)
        return after, done

    docs: list[dict[str, Any]] = []
    first: DevcError | None = None
    for row in run_each(running, one, timeout=timeout, what=f"`tailscale {'logout' if logout else 'down'}`"):
        if row.error is not None:
            first = first or row.error
            docs.append(all_doc(row.item, ok=False, error=row.error.message, error_kind=row.error.kind))
        else:
            after, done = row.value  # type: ignore[misc]  # value is set when error is None
            docs.append(all_doc(row.item, ok=True, done=done, **node_doc(after.status)))
    progress.emit("done", f"{len(docs)} devcontainer(s)")
    rows = [(d["container"], ", ".join(d.get("done") or []) or "-", d.get("error") or (d.get("backend_state") or "daemon down")) for d in docs]
    out.emit({"ok": first is None, "containers": docs}, out.table(f"down --all ({len(docs)} running devcontainers)", ["Container", "Done", "State / error"], rows), kind="down.all")
    return first


def all_row(d: dict[str, Any]) -> tuple[str, ...]:
    """One row of `status --all`: a stopped container shows its state and no node."""
    if d.get("error"):
        tailscale = d["error"]
    elif d["container_state"] != "running":
        tailscale = "-"
    elif not d["installed"]:
        tailscale = "not installed"
    else:
        tailscale = d.get("backend_state") or "daemon down"
    return (d["container"], d["container_state"], tailscale, d.get("hostname") or "-", d.get("dns_name") or "-", ", ".join(d.get("ips") or []) or "-")


# every `status --all --json` row has these keys (None when unknown), whatever its state
_ROW_KEYS = ("hostname", "dns_name", "backend_state", "ips", "online")


def all_doc(info: Any, **fields: Any) -> dict[str, Any]:
    from devc_tasks.core.container_choice import LABEL_LOCAL_FOLDER

    doc = {"container": info.name, "workspace": info.labels.get(LABEL_LOCAL_FOLDER), "container_state": info.status, **fields}
    for k in _ROW_KEYS:
        doc.setdefault(k, None)
    return doc


def status_all(host: str | None, context: str | None, timeout: float, label: str | None = None) -> list[dict[str, Any]]:
    """One document per devcontainer, stopped ones included (with their container state;
    they cannot be probed). Running ones are probed concurrently; one that cannot be probed,
    or does not answer within ``timeout``, gets an error row and holds up no other."""
    from devc_tasks.shell.executors import DockerExecutor
    from devc_tasks.shell.node import Node
    from devc_tasks.tasks.fleet import Clamped, list_devcontainers, run_each
    from devc_tasks.tasks.ui import node_doc

    engine, infos = list_devcontainers(host, context, label)
    running = [i for i in infos if i.running]

    def probe(info: Any) -> Any:
        executor = DockerExecutor(client=engine.client, container_id=info.id, description=f"container {info.name}")
        return Node(Clamped(executor, timeout)).probe()

    probed = {row.item.id: row for row in run_each(running, probe, timeout=timeout, what="the probe")}
    docs: list[dict[str, Any]] = []
    for info in infos:
        row = probed.get(info.id)
        if row is None:
            docs.append(all_doc(info, installed=None, **node_doc(None)))
        elif row.error is not None:
            docs.append(all_doc(info, installed=None, error=row.error.message, error_kind=row.error.kind))
        else:
            docs.append(all_doc(info, **status_doc(info.name, row.value)))
    return docs
