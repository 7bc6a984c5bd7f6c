"""The container as one probe saw it: ``PROBE_SCRIPT``'s output parsed into a ``Probe``.

Pure: the shell (``shell/node.py``) runs the script and hands its text here.
"""

from __future__ import annotations

from dataclasses import dataclass

from devc_tasks.core.errors import StateVolumeError, TailscaleFailed
from devc_tasks.core.identity import StateIdentity, state_identity
from devc_tasks.core.paths import STATE_FILE, STATE_MAX_BYTES
from devc_tasks.core.scripts import AFTER_MARK, PROBE_SCRIPT
from devc_tasks.core.status import Prefs, Status, parse_prefs, parse_status, short_version

__all__ = ["Probe", "huge_state", "parse_probe", "probe_argv", "after_probe"]

CAP_NET_ADMIN = 12
CAP_NET_RAW = 13


def probe_argv(*, prefs: bool = False, version: bool = False) -> list[str]:
    """The probe's command line: the optional CLI calls a task needs, and no other."""
    wants = [w for w, on in (("prefs", prefs), ("version", version)) if on]
    return ["sh", "-c", PROBE_SCRIPT, "devc-probe", *wants]


def after_probe(stdout: str) -> Probe | None:
    """The probe a step's script printed after AFTER_MARK on success; None when it printed none."""
    _, mark, rest = stdout.rpartition(AFTER_MARK + "\n")
    return parse_probe(rest) if mark else None


def _json_object(lines: list[str]) -> str | None:
    """The JSON object in a section: from the first line that opens it to the last that
    closes it. The CLI may print warnings around it (e.g. a client/daemon version mismatch)."""
    starts = [i for i, line in enumerate(lines) if line.startswith("{")]
    ends = [i for i, line in enumerate(lines) if line.rstrip().endswith("}")]
    if not starts or not ends or ends[-1] < starts[0]:
        return None
    return "\n".join(lines[starts[0] : ends[-1] + 1])


def huge_state(size: int) -> StateVolumeError:
    """A state file past ``STATE_MAX_BYTES`` is not one tailscaled wrote: say its size and how to recover."""
    return StateVolumeError(
        f"{STATE_FILE} is {size} bytes, far larger than tailscaled ever writes (a few KiB per login profile): "
        "it is damaged or not tailscaled's; devc-tasks does not read it",
        fix="Look at it (`inv tailscale.state.show`), keep a copy (`inv tailscale.state.backup`), then put a good backup back "
        "(`inv tailscale.state.restore FILE --stop-daemon`) or start afresh (`inv tailscale.state.reset`).",
    )


@dataclass(frozen=True, kw_only=True)
class Probe:
    """The container as one probe saw it."""

    tun: bool
    tailscale: str | None  # path of the CLI, None when not installed
    tailscaled: str | None
    daemon_pid: int | None
    socket: bool
    has_state: bool  # the state file exists and is not empty (not yet an identity: see `identity`)
    state_identity: StateIdentity = "absent"  # what the state file's content says
    capeff: int | None
    uid: int | None
    version: str | None  # the CLI's short version (probed only when asked for: `doctor`)
    daemon_version: str | None  # the running daemon's short version, when it answered
    status: Status | None  # None when the daemon did not answer
    status_error: str | None  # what the CLI said when it did not
    prefs: Prefs | None  # probed only when asked for (`up`, `restart`, `doctor`)

    @property
    def answering(self) -> bool:
        return self.status is not None

    @property
    def has_identity(self) -> bool:
        """The node has an identity: from the daemon when it answers (HaveNodeKey, not
        logged out), else from the state file's content."""
        if self.status is not None:
            return self.status.logged_in or self.status.have_node_key
        return self.state_identity == "identity"

    @property
    def state_broken(self) -> bool:
        """The state file is not valid JSON: tailscaled runs from memory and stays in NoState."""
        if self.status is not None and self.status.have_node_key:
            return False
        return self.state_identity == "broken"

    def has_cap(self, bit: int) -> bool | None:
        return None if self.capeff is None else bool(self.capeff >> bit & 1)


def parse_probe(text: str) -> Probe:
    values: dict[str, str] = {}
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("--- "):
            current = sections.setdefault(line[4:].strip(), [])
            continue
        if current is not None:
            current.append(line)
        elif "=" in line:
            k, _, v = line.partition("=")
            values[k.strip()] = v.strip()
    if values.get("devc-probe") != "1":
        raise TailscaleFailed("the container probe printed something unexpected", fix="Does the container have a POSIX /bin/sh?")
    status_lines = sections.get("status", [])
    status_json = _json_object(status_lines)
    status = None
    status_error = None
    if values.get("status_rc") == "0" and status_json is not None:
        status = parse_status(status_json)
    elif status_lines:
        status_error = "\n".join(status_lines).strip() or None
    prefs_json = _json_object(sections.get("prefs", []))
    state_text = "\n".join(sections["state"]) if values.get("state") == "1" and "state" in sections else None
    state_current = "\n".join(sections["state_current"]) if "state_current" in sections else None
    state_profiles = "\n".join(sections["state_profiles"]) if "state_profiles" in sections else None
    prefs = parse_prefs(prefs_json) if status is not None and prefs_json is not None else None

    def opt(key: str) -> str | None:
        return values.get(key) or None

    def num(key: str, base: int = 10) -> int | None:
        try:
            return int(values[key], base)
        except (KeyError, ValueError):
            return None

    size_lines = [line.strip() for line in sections.get("state_size", []) if line.strip()]
    state_size = int(size_lines[0]) if size_lines and size_lines[0].isdigit() else None
    if state_size is not None and state_size > STATE_MAX_BYTES:
        raise huge_state(state_size)
    return Probe(
        tun=values.get("tun") == "1",
        tailscale=opt("tailscale"),
        tailscaled=opt("tailscaled"),
        daemon_pid=num("daemon_pid"),
        socket=values.get("socket") == "1",
        has_state=values.get("state") == "1",
        state_identity=state_identity(state_text, state_current, state_profiles) if values.get("state") == "1" else "absent",
        capeff=num("capeff", 16),
        uid=num("uid"),
        version=next((short_version(line) for line in sections.get("version", []) if line.strip()), None),
        daemon_version=short_version(status.version) if status is not None and status.version else None,
        status=status,
        status_error=status_error,
        prefs=prefs,
    )
