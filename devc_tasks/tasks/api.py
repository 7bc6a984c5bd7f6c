"""The Tailscale API on the host: what `up` needs from it, and the `prune` task."""

from __future__ import annotations

import os
import sys
from typing import Any

from invoke import task

from devc_tasks.core.errors import DevcError, NotConnected, UsageError
from devc_tasks.tasks.common import _help, _output, _seconds, _selectors, _setting, boundary, config_section, parse_tags

API_HELP = {
    "oauth_secret_file": "Read the OAuth client secret from this file ('-' for stdin). Default: TAILSCALE_OAUTH_CLIENT_SECRET on the host.",
}


def _section(c: Any) -> dict[str, Any]:
    return dict(config_section(getattr(c, "config", None)))


def config_tags(c: Any, given: str | None) -> tuple[str, ...]:
    """--advertise-tags, else tailscale.tags (a list or a comma-separated string)."""
    if given is not None:
        return parse_tags(given)
    raw = _section(c).get("tags")
    if isinstance(raw, list | tuple):
        raw = ",".join(str(t) for t in raw)
    return parse_tags(raw or None)


def host_api(c: Any, out: Any, *, hostname: str, tags: tuple[str, ...], container: str, oauth_secret_file: str | None, timeout: float) -> Any:
    """``api.login.host_api`` with this run's configuration and output."""
    from devc_tasks.api.login import host_api as make

    return make(section=_section(c), environ=os.environ, hostname=hostname, tags=tags, container=container,
                oauth_secret_file=oauth_secret_file, timeout=timeout, warn=out.warn, step=out.step)


@task(
    auto_shortflags=False,
    help=_help(
        hostname="The node name whose stale copies to look for (default: the name `up` would use).",
        advertise_tags="The tags this node gets (default: the node's own, else tailscale.tags).",
        yes="Delete without asking.",
        dry_run="Only list the stale copies.",
        timeout="Seconds for each API request (default 60).",
        **API_HELP,
    ),
)
def prune(c, hostname=None, advertise_tags=None, yes=False, dry_run=False, timeout=None, oauth_secret_file=None, container=None, workspace=None, host=None, context=None, local=False, json=False):
    """Delete the stale copies of this devcontainer's node (offline, same name or name-N, same tags) through the Tailscale API."""
    out = _output(json)
    with boundary(out):
        from devc_tasks.core.apirules import describe_device
        from devc_tasks.shell.node import Node
        from devc_tasks.shell.target import resolve, wanted_hostname

        wait = _seconds(_setting(c, "timeout", timeout), "--timeout")
        target = resolve(_selectors(container, workspace, host, context, local), optional=True)
        name = wanted_hostname(target, hostname).name
        self_id = None
        node_tags: tuple[str, ...] | None = None
        if target.executor is not None:
            # Its own device must never be judged a stale copy: when the container holds a
            # node identity whose ID cannot be read (tailscaled stopped, exec failed), that
            # device is offline under this very name and tags, so prune refuses.
            unknown: str | None = None
            try:
                probe = Node(target.executor).probe(prefs=True)  # the node's own tags
                if probe.status is not None and probe.status.logged_in:
                    self_id = probe.status.self.id
                    if probe.prefs is not None:
                        node_tags = tuple(probe.prefs.advertise_tags)
                elif probe.status is None and probe.has_state:
                    unknown = "its tailscaled is not running"
            except DevcError as e:
                unknown = f"it could not be asked ({e.message})"
            if unknown and not self_id:
                raise NotConnected(
                    f"prune cannot tell which device is {target.label}'s own node: {unknown}, and its state holds a node identity "
                    "that would look like a stale copy of itself",
                    fix="Start it first (`tailscale.up`), then prune.",
                )
        tags = parse_tags(advertise_tags) if advertise_tags is not None else (node_tags if node_tags is not None else config_tags(c, None))
        api = host_api(c, out, hostname=name, tags=tags, container=name, oauth_secret_file=oauth_secret_file, timeout=wait)
        if api is None:
            raise UsageError(
                "prune needs Tailscale API credentials on the host",
                fix="Set TAILSCALE_OAUTH_CLIENT_ID and TAILSCALE_OAUTH_CLIENT_SECRET (scope devices:core), or TAILSCALE_API_KEY.",
            )
        try:
            stale, kept = api.find_stale(self_node_id=self_id)
            doc: dict[str, Any] = {
                "ok": True,
                "hostname": name,
                "tags": list(tags),
                "stale": [d.to_dict() for d in stale],
                "kept": [{**d.to_dict(), "reason": why} for d, why in kept],
                "deleted": [],
            }
            rows = [(describe_device(d), "stale copy") for d in stale] + [(describe_device(d), f"kept: {why}") for d, why in kept]
            if stale and not dry_run:
                if not yes:
                    if not sys.stdin.isatty():
                        listing = "; ".join(describe_device(d) for d in stale)
                        raise UsageError(
                            f"prune would delete {len(stale)} device(s): {listing}; it asks for confirmation, and this run is not interactive",
                            fix="Pass --yes to delete them, or --dry-run to only list them.",
                        )
                    if not out.confirm(f"Delete {len(stale)} stale cop{'y' if len(stale) == 1 else 'ies'} of {name} from the tailnet?"):
                        raise DevcError("not confirmed: nothing was deleted")
                doc["deleted"] = [d.to_dict() for d in api.delete_devices(stale)]
        finally:
            api.close()
        title = f"stale copies of {name}" + (" (deleted)" if doc["deleted"] else "")
        if not rows:
            out.emit(doc, out.lines(f"No device uses the name {name}: nothing to prune."), kind="prune")
        else:
            out.emit(doc, out.table(title, ["Device", "Verdict"], [list(r) for r in rows]), kind="prune")


TASKS = (prune,)
