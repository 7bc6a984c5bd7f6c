"""Whether a tailscaled state file holds a node identity, decided from its content.

tailscaled writes ``{}`` into a missing or empty state file on every start, so a
non-empty file is no sign of an identity; a logout leaves ``_current-profile``
behind with an empty ``_profiles``. An identity is a current profile that
``_profiles`` lists and whose ``profile-XXXX`` entry exists (ipn/ipnlocal
profiles.go, ipn/store). Invalid JSON makes tailscaled fall back to an
in-memory store and stay in NoState: that file is "broken", not "none".

Pure functions only. The probe never ships the file's values out of the
container (they hold private keys): it sends the file with every value
blanked, plus the decoded ``_current-profile`` and ``_profiles`` (profile IDs
and names, no keys).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Literal

__all__ = ["StateIdentity", "state_identity", "state_identity_of_bytes", "BROKEN_STATE_FIX"]

StateIdentity = Literal["absent", "none", "identity", "broken"]

BROKEN_STATE_FIX = (
    "The state file /var/lib/tailscale/tailscaled.state is not valid JSON, so tailscaled cannot use it "
    "(it stays in NoState). Restore a backup with `inv tailscale.state.restore FILE --stop`, or start over "
    "with a new identity: `inv tailscale.state.reset` (then `up` with an auth key)."
)


def state_identity(skeleton: str | None, current: str | None, profiles: str | None) -> StateIdentity:
    """``skeleton``: the file with values blanked (None when it is missing or empty);
    ``current``/``profiles``: the decoded values of ``_current-profile`` and ``_profiles``,
    None when they could not be decoded in the container (no ``base64``)."""
    if skeleton is None or not skeleton.strip():
        return "absent"
    try:
        doc = json.loads(skeleton)
    except (ValueError, RecursionError):  # tailscaled's decoder refuses deep nesting too
        return "broken"
    if not isinstance(doc, dict):
        return "broken"
    if "_current-profile" not in doc:
        return "none"
    if current is None or profiles is None:
        # no decoded values: a logout deletes every profile-XXXX entry, so their presence decides
        return "identity" if any(str(k).startswith("profile-") for k in doc) else "none"
    cur = current.strip()
    try:
        listed = json.loads(profiles) if profiles.strip() else {}
    except (ValueError, RecursionError):
        return "broken"
    if cur and isinstance(listed, dict) and cur in listed and f"profile-{cur}" in doc:
        return "identity"
    return "none"


def _decode(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return None


def state_identity_of_bytes(data: bytes) -> StateIdentity:
    """The same decision from the file's whole content (a backup archive on the host)."""
    text = data.decode("utf-8", "replace")
    if not text.strip():
        return "absent"
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return "broken"
    if not isinstance(doc, dict):
        return "broken"
    skeleton = json.dumps({k: "" for k in doc})
    return state_identity(skeleton, _decode(doc.get("_current-profile")) or "", _decode(doc.get("_profiles")) or "")
