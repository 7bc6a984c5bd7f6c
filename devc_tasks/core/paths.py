"""Where tailscale lives inside a container: the socket, the state directory and file,
the daemon's log, the lock file, and the modes restore gives the state it writes.

One place for these facts, so the scripts, the compose rendering, the probe and
the state transport agree on them.
"""

from __future__ import annotations

__all__ = ["SOCKET", "STATE_DIR", "STATE_FILE", "DAEMON_LOG", "LOCK_FILE"]

SOCKET = "/var/run/tailscale/tailscaled.sock"
STATE_DIR = "/var/lib/tailscale"
STATE_FILE = f"{STATE_DIR}/tailscaled.state"
DAEMON_LOG = "/var/log/tailscaled.log"
LOCK_FILE = "/run/devc-tasks-tailscale.lock"
STATE_MAX_BYTES = 4 * 1024 * 1024
"""tailscaled's state file holds a few KiB per login profile; a file past this is not one
tailscaled wrote (or is damaged): the probe does not read it, and up/status stop with its size."""
FILE_MODE = 0o600
DIR_MODE = 0o700
"""Restore writes every file with mode 0600 and every directory 0700, owned by root."""
