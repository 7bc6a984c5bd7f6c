"""What `up` and `prune` do with the Tailscale API on the host.

Before a node without identity logs in: find the stale copies of it (offline
devices with its name or ``name-N`` and exactly its tags, never itself) and
warn, or delete them with ``--replace``; mint a single-use, pre-authorized,
short-lived key when the key comes from the API. After the login step: delete
the minted key whatever happened (a failure is a warning), and confirm that the
device is connected and authorized. The rule is ``apirules.judge``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from devc_tasks.core.apirules import ApiSettings, Device, describe_device, key_description, key_request, stale_copies, unanswered_mint
from devc_tasks.core.errors import ApiError, ApiForbidden, DevcError, UsageError
from devc_tasks.core.probe import Probe
from devc_tasks.shell.tsapi import MintedKey, NoAnswer, TailscaleApi

__all__ = ["HostApi", "must_log_in", "DEFAULT_KEY_EXPIRY"]

DEFAULT_KEY_EXPIRY = 600  # seconds: long enough for a login, short enough to be worthless soon


def must_log_in(probe: Probe) -> bool:
    """The node has no identity: `up` with a key would log it in (plan.next_step's Login)."""
    st = probe.status
    if st is None:
        return not probe.has_identity  # a `{}` or post-logout state file is no identity
    if st.connecting:
        # NoState + HaveNodeKey right after a start: it connects by itself; its own device
        # looks offline and its status has no Self.ID yet, so --replace would delete it
        return False
    if st.backend_state in ("NeedsLogin", "NoState"):
        return True
    return st.backend_state == "Stopped" and not st.logged_in


MAX_KEYS_LOOKED_AT = 50
"""After an unanswered create, how many of the tailnet's keys are read (one request each) at most."""


def create_or_clean_up(api: TailscaleApi, body: dict[str, Any], *, warn: Callable[[str], None], step: Callable[[str], None]) -> MintedKey:
    """Create a key; when the request goes unanswered the API may still have made it, usable until
    it expires: look for it (our description, created since the request) and delete it, else say
    what to look for in the admin console. The error itself is raised in any case."""
    since = datetime.now(UTC)
    try:
        return api.create_key(body)
    except NoAnswer:
        description, expiry = body.get("description", ""), body.get("expirySeconds")
        left = f"If the API made it anyway, the key {description!r} is usable until it expires ({expiry} s): delete it in the admin console (Settings > Keys)."
        try:
            ids = api.key_ids()
            found = [k for k in (api.key(i) for i in ids[:MAX_KEYS_LOOKED_AT]) if k is not None and unanswered_mint(k, description=description, since=since)]
            for k in found:
                api.delete_key(str(k["id"]))
                step(f"deleted the auth key {k['id']} that the unanswered request made")
            if not found:
                looked = f"only {MAX_KEYS_LOOKED_AT} of the tailnet's {len(ids)} keys were looked at" if len(ids) > MAX_KEYS_LOOKED_AT else "no such key is listed yet"
                warn(f"the key request went unanswered; {looked}. {left}")
        except DevcError as e:
            warn(f"the key request went unanswered and looking for the key failed ({e.message}). {left}")
        raise


@dataclass
class HostApi:
    """The API work of one `up` (or `prune`) run."""

    settings: ApiSettings
    hostname: str
    tags: tuple[str, ...]
    timeout: float = 30.0
    ephemeral: bool = False
    key_expiry: int = DEFAULT_KEY_EXPIRY
    container: str = ""
    warn: Callable[[str], None] = lambda text: None
    step: Callable[[str], None] = lambda text: None
    minted: MintedKey | None = None
    deleted: list[Device] = field(default_factory=list)
    stale: list[Device] = field(default_factory=list)
    checked: bool = False
    _api: TailscaleApi | None = None

    @property
    def api(self) -> TailscaleApi:
        if self._api is None:
            self._api = TailscaleApi(self.settings, timeout=self.timeout)
        return self._api

    # -- stale copies -------------------------------------------------------

    def find_stale(self, *, self_node_id: str | None) -> tuple[list[Device], list[tuple[Device, str]]]:
        return stale_copies(self.api.devices(), hostname=self.hostname, tags=self.tags, self_node_id=self_node_id)

    def delete_devices(self, devices: Sequence[Device]) -> list[Device]:
        done = []
        for d in devices:
            self.api.delete_device(d.node_id or d.id)
            self.step(f"deleted stale copy {describe_device(d)}")
            done.append(d)
        self.deleted.extend(done)
        return done

    def before_login(self, *, self_node_id: str | None, replace: bool) -> None:
        """Report (or, with ``replace``, delete) the stale copies of this node."""
        self.checked = True
        try:
            stale, _kept = self.find_stale(self_node_id=self_node_id)
        except ApiForbidden as e:
            if replace:
                raise
            self.warn(f"not checking for stale copies of {self.hostname}: {e.message}")
            return
        self.stale = stale
        if not stale:
            return
        if replace:
            self.delete_devices(stale)
            return
        names = "; ".join(describe_device(d) for d in stale)
        self.warn(
            f"{len(stale)} stale cop{'y' if len(stale) == 1 else 'ies'} of {self.hostname} on the tailnet (offline, same name and tags): {names}. "
            f"This login will get a name like {self.hostname}-1. Run `up --replace` (or set tailscale.replace: true) "
            "to delete them first, or `tailscale.prune --yes`."
        )

    # -- the key ------------------------------------------------------------

    def mint(self) -> str:
        """A single-use, pre-authorized, tagged key expiring in ``key_expiry`` seconds."""
        if self.minted is not None:
            return self.minted.key.reveal()
        if self.settings.kind == "oauth" and not self.tags:
            raise UsageError(
                "an OAuth client can only mint tagged auth keys, and no tags were given",
                fix="Pass --advertise-tags=tag:NAME (a tag the OAuth client owns), or set tailscale.tags in invoke.yaml.",
            )
        body = key_request(tags=self.tags, ephemeral=self.ephemeral, expiry_seconds=self.key_expiry, description=key_description(self.container or self.hostname))
        self.minted = create_or_clean_up(self.api, body, warn=self.warn, step=self.step)
        self.step(f"minted a single-use auth key {self.minted.id} (expires in {self.key_expiry} s)")
        return self.minted.key.reveal()

    def revoke(self) -> None:
        """Delete the minted key, whatever the login did; a failure is only a warning."""
        if self.minted is None:
            return
        key_id = self.minted.id
        try:
            self.api.delete_key(key_id)
            self.step(f"deleted the auth key {key_id}")
        except DevcError as e:
            self.warn(f"could not delete the minted auth key {key_id} (it expires by itself within {self.key_expiry} s): {e.message}")

    # -- after up -------------------------------------------------------------

    def confirm(self, node_id: str | None) -> dict[str, Any] | None:
        """The device as the API sees it; a warning when it is not connected and authorized."""
        if not node_id:
            return None
        try:
            devices = self.api.devices()
        except ApiError as e:
            self.warn(f"could not confirm the device through the Tailscale API: {e.message}")
            return None
        me = next((d for d in devices if d.node_id == node_id or d.id == node_id), None)
        if me is None:
            self.warn(f"the Tailscale API does not list this node ({node_id})")
            return {"node_id": node_id, "listed": False}
        if not me.connected or not me.authorized:
            self.warn(f"the Tailscale API shows {me.name}: connected={me.connected}, authorized={me.authorized}")
        return {"node_id": me.node_id, "listed": True, "name": me.name, "connected": me.connected, "authorized": me.authorized, "tags": list(me.tags)}

    def report(self) -> dict[str, Any]:
        return {
            "credentials": self.settings.describe(),
            "minted_key": self.minted.id if self.minted else None,
            "stale_copies": [d.to_dict() for d in self.stale if d not in self.deleted],
            "deleted": [d.to_dict() for d in self.deleted],
        }

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
