"""Choosing the Tailscale node name of a devcontainer.

Tailscale itself sanitizes whatever hostname it is given (``util/dnsname``),
but it does so silently and lossily: ``café`` becomes ``caf`` and an emoji-only
name becomes nothing. We therefore pick the name ourselves, before calling
``tailscale up``, so that the name is predictable, shown to the user, and
never rejected later. The Tailscale rules are mirrored byte for byte
(``sanitize_label``) so that we can predict what
Tailscale would do; ``clean_label`` is our friendlier variant used for the
names we build.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from dataclasses import dataclass

__all__ = [
    "MAX_LABEL_BYTES",
    "HostnameChoice",
    "sanitize_label",
    "is_valid_label",
    "clean_label",
    "short_host",
    "choose_hostname",
]

MAX_LABEL_BYTES = 63
"""A DNS label holds at most 63 bytes (RFC 1035); Tailscale truncates there."""

_DEVC = "devc"
_DEVC_SUFFIX = "-devc"
_SEPARATOR_DEVC = "-devc-"
_FALLBACK_HOST = "host"

# Characters Tailscale turns into '-' instead of dropping.
_SEPARATORS = frozenset(b" .@_")
# Letters that NFKD does not decompose but that have an obvious ASCII spelling;
# without this table ``Straße`` would lose its ``ß`` entirely.
_ASCII_SPELLINGS = str.maketrans(
    {
        "ß": "ss",
        "ẞ": "SS",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "ø": "o",
        "Ø": "O",
        "đ": "d",
        "Đ": "D",
        "ł": "l",
        "Ł": "L",
        "þ": "th",
        "Þ": "TH",
        "ð": "d",
        "Ð": "D",
        "ı": "i",
    }
)


def _is_alnum(byte: int) -> bool:
    """ASCII letter or digit; Go's ``isalphanum`` in util/dnsname (bytes, not runes)."""
    return 0x30 <= byte <= 0x39 or 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A


def _sanitize_bytes(raw: bytes) -> str:
    """The body of Tailscale's SanitizeLabel, without its 63-byte truncation.

    Shared by the faithful copy and by ``clean_label`` so the two can only
    differ where we mean them to.
    """
    start, end = 0, len(raw)
    while start < end and not _is_alnum(raw[start]):
        start += 1
    while end > start and not _is_alnum(raw[end - 1]):
        end -= 1
    out = bytearray()
    for byte in raw[start:end]:
        if _is_alnum(byte) or byte == 0x2D:  # '-'
            out.append(byte | 0x20 if 0x41 <= byte <= 0x5A else byte)
        elif byte in _SEPARATORS:
            out.append(0x2D)
        # every other byte, including each byte of a non-ASCII character, is dropped
    return out.decode("ascii")


def sanitize_label(text: str) -> str:
    """Tailscale's ``dnsname.SanitizeLabel``, byte for byte.

    Kept exact (including its quirks: truncation before trimming, no
    collapsing of ``-`` runs, non-ASCII bytes dropped) so that we can tell the
    user what Tailscale would have made of a name.
    """
    return _sanitize_bytes(text.encode("utf-8", "surrogateescape")[:MAX_LABEL_BYTES])


def is_valid_label(text: str) -> bool:
    """True for 1..63 bytes of ``[A-Za-z0-9-]`` starting and ending with a letter or digit.

    This is what ``tailscale up --hostname`` accepts without complaint; anything
    else we clean before it gets there.
    """
    raw = text.encode("utf-8", "surrogateescape")
    if not 1 <= len(raw) <= MAX_LABEL_BYTES:
        return False
    if not (_is_alnum(raw[0]) and _is_alnum(raw[-1])):
        return False
    return all(_is_alnum(b) or b == 0x2D for b in raw)


def _collapse_dashes(text: str) -> str:
    while "--" in text:
        text = text.replace("--", "-")
    return text


def clean_label(text: str) -> str:
    """SanitizeLabel with two improvements, for names we build or repair.

    Accented letters are folded to ASCII first (``café`` gives ``cafe``, not
    Tailscale's ``caf``) and runs of ``-`` are collapsed (``a - b`` gives
    ``a-b``). There is no truncation here: the caller decides which part of a
    composite name to shorten. The result may be empty.
    """
    folded = unicodedata.normalize("NFKD", text.translate(_ASCII_SPELLINGS))
    return _collapse_dashes(_sanitize_bytes(folded.encode("utf-8", "surrogateescape")))


def _bound(label: str, limit: int = MAX_LABEL_BYTES) -> str:
    """Cut a cleaned (ASCII) label to ``limit`` bytes without leaving a trailing '-'."""
    return label[:limit].rstrip("-")


def short_host(name: str) -> str:
    """The first DNS label of a machine name, cleaned: ``build-01.corp.example`` gives ``build-01``.

    A bare IP address has no meaningful first label (``10`` of ``10.0.0.5``
    identifies nothing), so it is kept whole as ``10-0-0-5``.
    """
    name = name.strip().rstrip(".")
    try:
        ipaddress.ip_address(name)
    except ValueError:
        name = name.split(".", 1)[0]
    return clean_label(name)


@dataclass(frozen=True, kw_only=True)
class HostnameChoice:
    """The node name we settled on, and where each part came from.

    Carrying the provenance lets ``status``/``doctor`` explain the name
    instead of just printing it.
    """

    name: str
    """The final node name: a valid label of at most 63 bytes, never empty."""
    source: str
    """``--hostname``, ``TAILSCALE_HOSTNAME (host)``, ``TAILSCALE_HOSTNAME (container)`` or ``derived``."""
    project: str | None
    """The project part as used (cleaned, possibly shortened); None for overrides."""
    project_source: str | None
    """``devcontainer.json name``, ``workspace folder`` or ``default``; None for overrides."""
    host: str | None
    """The host part as used; None for overrides."""
    host_source: str | None
    """Passed through from the caller (e.g. ``this machine``); None for overrides."""
    warnings: tuple[str, ...] = ()
    """Things the user should know, e.g. an override that had to be sanitized."""


def _label_problem(text: str) -> str:
    """Say in words why ``text`` is not a valid label (for warnings)."""
    raw = text.encode("utf-8", "surrogateescape")
    if len(raw) > MAX_LABEL_BYTES:
        return f"it is {len(raw)} bytes long, more than {MAX_LABEL_BYTES}"
    if any(not (_is_alnum(b) or b == 0x2D) for b in raw):
        return "only ASCII letters, digits and '-' are allowed"
    return "it must start and end with a letter or digit"


def _derive_project(project_name: str | None, workspace_name: str | None) -> tuple[str, str]:
    """The project part and its source, falling back name -> workspace folder -> ``devc``.

    A trailing ``-devc`` is dropped because we append ``-devc-<host>``
    ourselves; a name that is nothing but ``devc`` counts as no name.
    """
    for raw, source in ((project_name, "devcontainer.json name"), (workspace_name, "workspace folder")):
        if raw is None:
            continue
        project = clean_label(raw)
        # "devc" alone is only the marker we add anyway; "devc-devc-host" says nothing.
        if project == _DEVC or project.endswith(_DEVC_SUFFIX):
            project = project.removesuffix(_DEVC).rstrip("-")
        if project:
            return project, source
    return _DEVC, "default"


def _join_bounded(project: str, host: str) -> tuple[str, str]:
    """Shorten ``project`` (then, only if unavoidable, ``host``) so the name fits 63 bytes.

    The host part is what tells two machines' containers apart, so it
    survives whole whenever a one-letter project would leave room for it.
    """
    if len(f"x{_SEPARATOR_DEVC}{host}") > MAX_LABEL_BYTES:
        host = _bound(host, MAX_LABEL_BYTES - len(f"x{_SEPARATOR_DEVC}"))
    project = _bound(project, MAX_LABEL_BYTES - len(f"{_SEPARATOR_DEVC}{host}"))
    return project, host


def choose_hostname(
    *,
    flag: str | None,
    host_env: str | None,
    container_env: str | None,
    project_name: str | None,
    workspace_name: str | None,
    engine_host: str,
    engine_host_source: str,
) -> HostnameChoice:
    """Pick the node name: an explicit wish if there is one, else ``<project>-devc-<host>``.

    An invalid wish is repaired here, with a warning, rather than handed to
    ``tailscale up`` (which would reject it or silently mangle it). A wish that
    repairs to nothing is skipped with a warning: the next source (or the
    derived name) decides.
    """
    warnings: list[str] = []
    for raw, source in (
        (flag, "--hostname"),
        (host_env, "TAILSCALE_HOSTNAME (host)"),
        (container_env, "TAILSCALE_HOSTNAME (container)"),
    ):
        wish = (raw or "").strip()
        if not wish:
            continue
        if "tskey-" in wish.lower():  # it would become the node's name, seen by the whole tailnet
            from devc_tasks.core.errors import UsageError

            raise UsageError(
                f"{source} holds what looks like an auth key (tskey-...), not a hostname; it was not used",
                fix="Set the hostname to a name; the key goes in a file given with --authkey-file, or in TAILSCALE_AUTHKEY.",
            )
        if is_valid_label(wish):
            return HostnameChoice(
                name=wish, source=source, project=None, project_source=None, host=None, host_source=None,
                warnings=tuple(warnings),
            )
        cleaned = _bound(clean_label(wish))
        if cleaned:
            warnings.append(f"{source} {wish!r} is not a valid hostname ({_label_problem(wish)}); using {cleaned!r}")
            return HostnameChoice(
                name=cleaned,
                source=source,
                project=None,
                project_source=None,
                host=None,
                host_source=None,
                warnings=tuple(warnings),
            )
        warnings.append(f"{source} {wish!r} has no letters or digits usable in a hostname; ignoring it")

    project, project_source = _derive_project(project_name, workspace_name)
    host = short_host(engine_host) or _FALLBACK_HOST
    project, host = _join_bounded(project, host)
    return HostnameChoice(
        name=f"{project}{_SEPARATOR_DEVC}{host}",
        source="derived",
        project=project,
        project_source=project_source,
        host=host,
        host_source=engine_host_source,
        warnings=tuple(warnings),
    )
