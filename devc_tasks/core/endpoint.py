"""Which Docker Engine to use, decided as the docker CLI decides it.

The docker CLI picks an engine in this order: ``--host``, ``--context``,
``DOCKER_HOST``, ``DOCKER_CONTEXT``, the ``currentContext`` of the Docker
config file, the default socket; the ``default`` context is whatever
``DOCKER_HOST`` (or the default socket) says, with TLS from
``DOCKER_TLS_VERIFY``/``DOCKER_TLS``/``DOCKER_CERT_PATH``. We decide it
ourselves (not through ``docker.from_env``/``ContextAPI``) for three reasons:
the name of the engine must be known to say which one failed; the SDK's
``ContextAPI`` finds no context when the config folder has no ``config.json``
(the docker CLI does); and the SDK silently falls back to the default socket
for an unknown context name.

``choose_endpoint`` is pure: the context store is passed in. ``ContextStore``
reads the Docker config folder (``config.json`` and ``contexts/meta/*/meta.json``,
TLS material under ``contexts/tls/<id>/docker/``).
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from devc_tasks.core.errors import UsageError

__all__ = ["ContextMeta", "Endpoint", "TLSFiles", "check_url", "choose_endpoint", "default_tls", "is_local_url", "relative_socket"]

DEFAULT_URL = "unix:///var/run/docker.sock"


@dataclass(frozen=True, kw_only=True)
class TLSFiles:
    """The TLS material of an engine: files that exist, and whether the engine's certificate is verified."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    verify: bool = True


@dataclass(frozen=True, kw_only=True)
class ContextMeta:
    name: str
    host: str
    tls: TLSFiles | None = None


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """The engine to talk to, and how the user named it."""

    url: str
    context: str | None = None
    tls: TLSFiles | None = None

    @property
    def label(self) -> str:
        """The engine as the docker CLI names it: ``context "NAME" (URL)`` or the URL."""
        if self.context:
            return f'context "{self.context}" ({self.url})'
        return self.url

    @property
    def local(self) -> bool:
        return is_local_url(self.url)


def is_local_url(url: str) -> bool:
    """A unix socket or named pipe is this machine; tcp:// and ssh:// are another."""
    return url == "" or url.startswith(("unix://", "npipe://", "/"))


class Contexts(Protocol):
    def current(self) -> str | None: ...

    def get(self, name: str) -> ContextMeta | None: ...

    def names(self) -> list[str]: ...


def _truthy(value: str | None) -> bool:
    """The docker CLI's test for DOCKER_TLS and DOCKER_TLS_VERIFY: set and not empty."""
    return bool(value)


def default_tls(environ: Mapping[str, str], exists: Callable[[str], bool], home: str = "") -> TLSFiles | None:
    """TLS of the default context: ``DOCKER_TLS_VERIFY`` (verify) or ``DOCKER_TLS`` (encrypt only),
    files from ``DOCKER_CERT_PATH`` (else ``~/.docker``: HOME, else ``home``), each used only
    when it ``exists`` (the shell's check), as the CLI does."""
    verify = _truthy(environ.get("DOCKER_TLS_VERIFY"))
    if not verify and not _truthy(environ.get("DOCKER_TLS")):
        return None
    folder = environ.get("DOCKER_CERT_PATH") or os.path.join(environ.get("HOME") or home, ".docker")

    def pick(name: str) -> str | None:
        path = os.path.join(folder, name)
        return path if exists(path) else None

    # the CLI drops a missing client cert/key but not a missing CA when verifying ("could not read CA certificate")
    ca = os.path.join(folder, "ca.pem") if verify else pick("ca.pem")
    return TLSFiles(ca=ca, cert=pick("cert.pem"), key=pick("key.pem"), verify=verify)


_URL_FIX = "Give unix:///path, tcp://HOST:PORT or ssh://[USER@]HOST[:PORT]."


def _redact(url: str) -> str:
    """The URL with any password replaced: it is echoed in errors."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, hostpart = rest.partition("@")
    if sep and at and ":" in userinfo and "/" not in userinfo:
        return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{hostpart}"
    return url


def relative_socket(url: str) -> str | None:
    """The path of ``unix://relative/path``: the docker CLI keeps it as it is (cli opts/hosts.go
    ``parseSimpleProtoAddr``) and dials it from the current folder, so do we; None otherwise."""
    scheme, sep, path = url.partition("://")
    return path if sep and scheme == "unix" and path and not path.startswith("/") else None


def check_url(url: str) -> None:
    """Refuse, before anything is contacted, an engine URL the docker CLI refuses or this machine cannot use.

    The SDK would accept some (``http://``), misreport others as an engine that
    is down (``fd://``, ``npipe://`` off Windows), dial 127.0.0.1 for ``ssh://``
    with no host, and ignore an ssh path or password the CLI rejects
    (cli/connhelper/ssh ``ParseURL``).
    """
    scheme, sep, _ = url.partition("://")
    shown = _redact(url)
    if not sep:
        raise UsageError(f"not a Docker engine URL: {shown!r} has no scheme", fix=f"Write tcp://{url} for a TCP engine. {_URL_FIX}")
    if scheme == "npipe":
        raise UsageError(f"{shown!r} is a Windows named pipe; this machine is not Windows", fix=_URL_FIX)
    if scheme == "fd":
        raise UsageError(f"{shown!r} is socket activation for the engine itself (dockerd -H fd://), not a URL to reach it", fix=_URL_FIX)
    if scheme in ("http", "https"):
        raise UsageError(f"the docker CLI does not take {scheme}:// engine URLs: {shown!r}", fix=f"Write tcp://{url.partition('://')[2]} (with DOCKER_TLS_VERIFY=1 for TLS). {_URL_FIX}")
    if scheme not in ("unix", "tcp", "ssh"):
        raise UsageError(f"unsupported Docker engine URL scheme {scheme!r} in {shown!r}", fix=_URL_FIX)
    if scheme != "ssh":
        return
    try:
        parsed = urllib.parse.urlsplit(url)
        parsed.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as e:
        raise UsageError(f"not a Docker engine URL: {shown!r}: bad port or host ({e})", fix=_URL_FIX) from None
    if parsed.password is not None:
        raise UsageError(f"a plain-text password in an ssh:// engine URL is not supported (as in the docker CLI): {shown!r}", fix="Use an ssh key or agent; remove the password from the URL.")
    if not parsed.hostname:
        raise UsageError(f"no host specified in the ssh:// engine URL {shown!r}", fix=_URL_FIX)
    if parsed.path or parsed.query or parsed.fragment:
        raise UsageError(f"extra path, query or fragment after the host in the ssh:// engine URL {shown!r}", fix="ssh:// names the machine; its engine's socket is what `docker system dial-stdio` uses there. " + _URL_FIX)


def choose_endpoint(
    *, host: str | None, context: str | None, environ: Mapping[str, str], contexts: Contexts, exists: Callable[[str], bool], home: str = ""
) -> Endpoint:
    """The engine the docker CLI would use with these flags and this environment (``exists``
    and ``home``: the shell's file check and home folder, for the default TLS files)."""
    endpoint = _choose(host=host, context=context, environ=environ, contexts=contexts, exists=exists, home=home)
    check_url(endpoint.url)
    return endpoint


def _choose(*, host: str | None, context: str | None, environ: Mapping[str, str], contexts: Contexts, exists: Callable[[str], bool], home: str) -> Endpoint:
    if host and context:
        raise UsageError("--host and --context name two engines; give one of them")
    if host:
        return Endpoint(url=host, tls=default_tls(environ, exists, home) if host.startswith("tcp://") else None)
    name = context
    if not name and not environ.get("DOCKER_HOST"):
        name = environ.get("DOCKER_CONTEXT") or contexts.current()
    if name and name != "default":
        meta = contexts.get(name)
        if meta is None:
            known = ", ".join(["default", *sorted(contexts.names())])
            raise UsageError(f"unknown Docker context {name!r}", fix=f"Known contexts: {known}. See `docker context ls`.")
        return Endpoint(url=meta.host or DEFAULT_URL, context=name, tls=meta.tls if meta.host.startswith("tcp://") else None)
    url = environ.get("DOCKER_HOST") or DEFAULT_URL
    return Endpoint(url=url, context="default" if name == "default" else None, tls=default_tls(environ, exists, home) if url.startswith("tcp://") else None)
