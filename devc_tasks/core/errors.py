"""One error root for the library; tasks map these to ``Exit(message, code)``.

Each failure class carries its own exit code (documented in the README) and,
where there is one, the fix a user should apply. Messages never hold secrets:
every message and fix is redacted here, whoever raises it.
"""

from __future__ import annotations

from devc_tasks.core.redaction import inert, redact_known_forms

__all__ = [
    "DevcError",
    "UsageError",
    "ConfigError",
    "EngineUnreachable",
    "EngineRefused",
    "ContainerNotFound",
    "AmbiguousContainer",
    "ContainerNotRunning",
    "TunMissing",
    "TailscaleNotInstalled",
    "DaemonFailed",
    "LoginRejected",
    "TimedOut",
    "KeyRequired",
    "TailscaleFailed",
    "SshRefused",
    "NotConnected",
    "StateVolumeError",
    "UnsafeArchive",
    "ChecksFailed",
    "ApiError",
    "ApiUnauthorized",
    "ApiForbidden",
    "ApiRejected",
    "ApiNotFound",
    "ApiUnreachable",
    "ApiUnavailable",
    "Interrupted",
    "EXIT_CODES",
]


class DevcError(Exception):
    """Root of every error devc-tasks raises on purpose."""

    kind = "error"
    exit_code = 1

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        # Redacted and made inert here, once for every raiser: a key pasted where a tag, a
        # name or a path belongs is echoed by no message, and no text from outside (tailscale's
        # own output) acts on a terminal, whether a task or a script (devc_tasks.api) shows it.
        message = inert(redact_known_forms(message))
        fix = inert(redact_known_forms(fix)) if fix is not None else None
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        if self.fix:
            return f"{self.message}\n{self.fix}"
        return self.message

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"kind": self.kind, "message": self.message, "exit_code": self.exit_code}
        if self.fix:
            out["fix"] = self.fix
        return out


class UsageError(DevcError):
    """A bad option or option value."""

    kind, exit_code = "usage", 2


class ConfigError(DevcError):
    """devcontainer.json (or a compose file it names) is missing or unreadable."""

    kind, exit_code = "config", 3


class EngineUnreachable(DevcError):
    """The Docker Engine cannot be reached (socket, host, context, ssh)."""

    kind, exit_code = "engine_unreachable", 10


class EngineRefused(DevcError):
    """The Engine answered with an error that has no class of its own."""

    kind, exit_code = "engine_refused", 14


class ContainerNotFound(DevcError):
    """No container matches the selectors."""

    kind, exit_code = "container_not_found", 11


class AmbiguousContainer(DevcError):
    """Several containers match; the user must name one."""

    kind, exit_code = "container_ambiguous", 12


class ContainerNotRunning(DevcError):
    """The container exists but is stopped."""

    kind, exit_code = "container_not_running", 13


class TunMissing(DevcError):
    """No TUN character device, or NET_ADMIN/NET_RAW missing."""

    kind, exit_code = "tun_missing", 20


class TailscaleNotInstalled(DevcError):
    """``tailscale`` or ``tailscaled`` is not in the container."""

    kind, exit_code = "tailscale_not_installed", 21


class DaemonFailed(DevcError):
    """``tailscaled`` did not start, or died; carries its last log lines."""

    kind, exit_code = "daemon_failed", 22


class LoginRejected(DevcError):
    """The control server refused the auth key (invalid, expired, ...)."""

    kind, exit_code = "login_rejected", 23


class TimedOut(DevcError):
    """A bounded wait ran out; the message says what was awaited."""

    kind, exit_code = "timeout", 24


class KeyRequired(DevcError):
    """``--require-key`` was given but no auth key is available."""

    kind, exit_code = "key_required", 25


class TailscaleFailed(DevcError):
    """A tailscale command failed for a reason with no class of its own."""

    kind, exit_code = "tailscale_failed", 26


class SshRefused(DevcError):
    """Tailscale SSH was asked for, and the tailnet policy does not grant it to the node."""

    kind, exit_code = "ssh_refused", 27


class NotConnected(DevcError):
    """``status``: the node is not Running (stopped, logged out, daemon down)."""

    kind, exit_code = "not_connected", 5


class Interrupted(DevcError):
    """Ctrl-C (SIGINT): 130 as a shell reports it, and with ``--json`` still one document on stdout."""

    kind, exit_code = "interrupted", 130


class StateVolumeError(DevcError):
    """The state volume is missing, unreadable, or an operation on it failed."""

    kind, exit_code = "state_volume", 30


class UnsafeArchive(StateVolumeError):
    """A backup archive that restore refuses (links, absolute paths, ``..``, size)."""

    kind, exit_code = "unsafe_archive", 31


class ChecksFailed(DevcError):
    """``doctor`` or ``compose --check`` found something that blocks ``up``."""

    kind, exit_code = "checks_failed", 40


class ApiError(DevcError):
    """The Tailscale API answered something with no class of its own."""

    kind, exit_code = "api_error", 50


class ApiUnauthorized(ApiError):
    """401: the OAuth client id/secret or the API access token was refused."""

    kind, exit_code = "api_unauthorized", 51


class ApiForbidden(ApiError):
    """403: the credential lacks a scope (the message names it)."""

    kind, exit_code = "api_forbidden", 52


class ApiRejected(ApiError):
    """400: the API refused the request (e.g. tags the OAuth client may not use)."""

    kind, exit_code = "api_rejected", 53


class ApiNotFound(ApiError):
    """404 on a tailnet path: no such tailnet for this credential."""

    kind, exit_code = "api_tailnet_not_found", 54


class ApiUnreachable(ApiError):
    """The API did not answer within the connect/read timeouts (or refused the connection)."""

    kind, exit_code = "api_unreachable", 55


class ApiUnavailable(ApiError):
    """429 or 5xx, still after the bounded retries."""

    kind, exit_code = "api_unavailable", 56


EXIT_CODES: dict[str, int] = {
    cls.kind: cls.exit_code
    for cls in (
        DevcError,
        UsageError,
        ConfigError,
        EngineUnreachable,
        EngineRefused,
        ContainerNotFound,
        AmbiguousContainer,
        ContainerNotRunning,
        TunMissing,
        TailscaleNotInstalled,
        DaemonFailed,
        LoginRejected,
        TimedOut,
        KeyRequired,
        TailscaleFailed,
        SshRefused,
        NotConnected,
        StateVolumeError,
        UnsafeArchive,
        ChecksFailed,
        ApiError,
        ApiUnauthorized,
        ApiForbidden,
        ApiRejected,
        ApiNotFound,
        ApiUnreachable,
        ApiUnavailable,
        Interrupted,
    )
}
