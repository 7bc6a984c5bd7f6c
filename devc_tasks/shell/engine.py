"""The Docker Engine edge: the client, finding the container, running commands in it.

Everything here does I/O; the decisions it needs (which container of several,
which engine URL is local) are small pure functions so they can be tested
without an engine. Docker SDK errors are mapped to library errors here and
nowhere else. ``docker`` is imported inside functions: ``inv --list`` must not
pay for it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from devc_tasks.core.endpoint import Endpoint, TLSFiles, choose_endpoint, relative_socket
from devc_tasks.core.errors import (
    EngineUnreachable,
    UsageError,
)
from devc_tasks.shell.contexts import ContextStore, config_dir, tls_problem
from devc_tasks.shell.executors import sdk_call

__all__ = ["Engine", "open_engine", "volume_lookup"]

def volume_lookup(client: Any) -> Callable[[str], Mapping[str, Any] | None]:
    """``docker volume inspect`` as a function: None for a volume that does not exist."""

    def lookup(name: str) -> Mapping[str, Any] | None:
        import docker.errors

        def call() -> Mapping[str, Any] | None:
            try:
                return client.api.inspect_volume(name)
            except docker.errors.NotFound:
                return None

        return sdk_call("docker volume inspect", call)

    return lookup


# --- the engine ------------------------------------------------------------


@dataclass(frozen=True)
class Engine:
    client: Any
    url: str
    local: bool
    context: str | None = None

    @property
    def label(self) -> str:
        """The engine as the docker CLI names it: ``context "NAME" (URL)``, or the URL."""
        return Endpoint(url=self.url, context=self.context).label

    def host_name(self) -> tuple[str, str]:
        """The machine that runs the Engine, and where that came from.

        Never the container's hostname: it is the container id and changes
        with every recreate.
        """
        if self.local:
            return socket.gethostname(), "this machine"
        info = sdk_call("docker info", self.client.info)
        return str(info.get("Name") or "remote"), f"engine at {self.label}"


SSH_TRANSPORTS = ("auto", "paramiko", "ssh")


def ssh_transport(environ: Mapping[str, str], paramiko_installed: bool) -> str:
    """``paramiko`` or ``ssh`` (the system client): ``DEVC_SSH_TRANSPORT``, else paramiko when installed.

    A plain install has no paramiko; the system ssh client then serves, as it
    does for the docker CLI.
    """
    wanted = (environ.get("DEVC_SSH_TRANSPORT") or "auto").strip().lower()
    if wanted not in SSH_TRANSPORTS:
        raise UsageError(f"DEVC_SSH_TRANSPORT={wanted!r} is not a transport", fix="Use paramiko, ssh (the system ssh client) or auto.")
    if wanted == "auto":
        return "paramiko" if paramiko_installed else "ssh"
    return wanted


def _paramiko_installed() -> bool:
    try:
        import paramiko  # noqa: F401  (only on the ssh:// path, where it would be loaded anyway)
    except ImportError:
        return False
    return True


def _engine_fix(label: str) -> str:
    return (
        f"Is the Docker engine at {label} running and yours to use? "
        "Check `docker version`; pick another engine with --host URL or --context NAME."
    )


def _ssh_fix(url: str) -> str:
    return (
        f"Check that `docker -H {url} version` works from here without a prompt: it uses the same ssh "
        "(~/.ssh/config, your key or ssh agent, the engine's host key in ~/.ssh/known_hosts), and the docker CLI on the far side."
    )


def _tls_fix(endpoint: Endpoint) -> str:
    where = f"the TLS files of context {endpoint.context!r} (`docker context inspect {endpoint.context}`)" if endpoint.context else "DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem)"
    return (
        f"The TLS handshake with {endpoint.url} failed: check {where}: ca.pem must be the CA that signed the engine's certificate, "
        "and cert.pem/key.pem a client certificate that engine's CA signed; with DOCKER_TLS_VERIFY=1 all three are needed."
    )


def _tls_config(files: TLSFiles) -> Any:
    import docker.tls

    cert = (files.cert, files.key) if files.cert and files.key else None
    return docker.tls.TLSConfig(client_cert=cert, ca_cert=files.ca, verify=files.verify)


def _engine_ca_wins(api: Any) -> None:
    """Verify the engine against its own CA whatever REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE say.

    requests replaces a session's ``verify`` by those variables on every
    request (docker/docker-py#2433): a TLS engine with its own CA then fails
    with "self-signed certificate in certificate chain" where the docker CLI
    works. Proxies and the rest of the environment still apply.
    """
    merge = api.merge_environment_settings

    def merge_keeping_verify(url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        settings = merge(url, proxies, stream, verify, cert)
        if verify is None and (isinstance(api.verify, str) or api.verify is False):
            settings["verify"] = api.verify
        return settings

    api.merge_environment_settings = merge_keeping_verify


def _client(endpoint: Endpoint, environ: Mapping[str, str]) -> Any:
    """A connected ``docker.DockerClient`` for the endpoint; SDK errors pass through."""
    import docker

    if endpoint.url.startswith("ssh://"):
        if ssh_transport(environ, _paramiko_installed()) == "ssh":
            from devc_tasks.shell.sshconn import system_ssh_client

            return system_ssh_client(endpoint.url, timeout=60)
        return docker.DockerClient(base_url=endpoint.url, use_ssh_client=False)
    from docker.constants import MINIMUM_DOCKER_API_VERSION

    kwargs: dict[str, Any] = {"base_url": endpoint.url}
    if endpoint.tls is not None:
        kwargs["tls"] = _tls_config(endpoint.tls)
        if not endpoint.tls.verify:  # DOCKER_TLS without _VERIFY, or SkipTLSVerify: asked for; the CLI is silent
            import warnings

            import urllib3.exceptions

            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
    # a pinned version contacts nothing: the CA fix must be in place before the first request
    client = docker.DockerClient(**kwargs, version=MINIMUM_DOCKER_API_VERSION)
    _engine_ca_wins(client.api)
    client.api._version = client.api._retrieve_server_version()
    return client


def open_engine(*, host: str | None = None, context: str | None = None, environ: Mapping[str, str] = os.environ) -> Engine:
    """Connect to the Engine named by --host, --context, DOCKER_HOST/DOCKER_CONTEXT, the current context, or the default."""
    endpoint = choose_endpoint(
        host=host, context=context, environ=environ, contexts=ContextStore(config_dir(environ)), exists=os.path.exists, home=os.path.expanduser("~")
    )
    import docker.errors
    import requests.exceptions

    label = endpoint.label
    if endpoint.tls is not None and (problem := tls_problem(endpoint.tls)):
        raise EngineUnreachable(f"cannot use the TLS files for the Docker engine at {label}: {problem}", fix=_tls_fix(endpoint))
    try:
        # _client asks the Engine for its API version (GET /version): that call proves it
        # answers, so no ping (one Engine round trip less on every command)
        client = _client(endpoint, environ)
    except UsageError:
        raise
    except docker.errors.TLSParameterError as e:
        raise EngineUnreachable(f"cannot use the TLS files for the Docker engine at {label}: {e}", fix=_tls_fix(endpoint)) from None
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as e:
        text = str(e)
        fix = _engine_fix(label)
        if "paramiko" in text:
            fix = "ssh:// engines through paramiko need it: pip install 'devc-tasks[ssh]', or use the system ssh client: DEVC_SSH_TRANSPORT=ssh"
        elif endpoint.url.startswith("ssh://"):
            fix = _ssh_fix(endpoint.url)
        elif _is_tls_failure(e):
            fix = _tls_fix(endpoint)
        elif (rel := relative_socket(endpoint.url)) is not None:
            fix = (
                f"{endpoint.url} is a relative path, looked for from the current folder (as the docker CLI does): "
                f"{os.path.abspath(rel)}. Write the socket's absolute path: unix:///path/to/docker.sock."
            )
        raise EngineUnreachable(f"cannot reach the Docker engine at {label}: {text}", fix=fix) from None
    except ValueError as e:  # a malformed URL (e.g. an unclosed IPv6 bracket)
        raise UsageError(f"not a Docker engine URL: {endpoint.url!r} ({e})", fix="Give unix:///path, tcp://HOST:PORT or ssh://USER@HOST.") from None
    except Exception as e:
        if type(e).__module__.startswith("paramiko"):  # host key unknown, authentication failed, ...
            raise EngineUnreachable(
                f"cannot reach the Docker engine at {label} over ssh (paramiko): {type(e).__name__}: {e}",
                fix=_ssh_fix(endpoint.url) + " paramiko reads only part of ~/.ssh/config; the system ssh client reads all of it: DEVC_SSH_TRANSPORT=ssh.",
            ) from None
        raise
    return Engine(client=client, url=endpoint.url, local=endpoint.local, context=endpoint.context)


def _is_tls_failure(e: BaseException) -> bool:
    """An SSL error anywhere in the chain (requests wraps it several times)."""
    text = str(e)
    return "SSL" in text or "certificate" in text.lower() or "TLSV1_ALERT" in text
