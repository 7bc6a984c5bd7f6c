"""The Docker CLI's contexts and TLS files on disk: the context store (``meta.json``
and its TLS folder) read the way the CLI does, and whether TLS files can be read.
The choice of endpoint is ``core.endpoint``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from devc_tasks.core.endpoint import ContextMeta, TLSFiles
from devc_tasks.core.errors import UsageError

__all__ = ["ContextStore", "config_dir", "tls_problem"]

def _unreadable(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as e:
        return e.strerror or str(e)
    return None


def tls_problem(files: TLSFiles, unreadable: Callable[[str], str | None] = _unreadable) -> str | None:
    """What is wrong with the TLS files before any handshake, in the docker CLI's words; None when nothing is.

    Without this a missing CA meant verifying against the system CAs and a lone
    client cert meant none at all: the user saw only a failed handshake.
    """
    if files.cert and not files.key:
        return f"client certificate {files.cert} without a client key (key.pem): both client certificate and client key must be provided"
    if files.key and not files.cert:
        return f"client key {files.key} without a client certificate (cert.pem): both client certificate and client key must be provided"
    for what, path in (("CA certificate", files.ca), ("client certificate", files.cert), ("client key", files.key)):
        if path and (why := unreadable(path)):
            return f"could not read {what} {path}: {why}"
    return None


def config_dir(environ: Mapping[str, str]) -> Path:
    """The Docker config folder: ``DOCKER_CONFIG``, else ``~/.docker``."""
    given = environ.get("DOCKER_CONFIG")
    if given:
        return Path(given).expanduser()
    return Path(environ.get("HOME") or os.path.expanduser("~")) / ".docker"


@dataclass(frozen=True)
class ContextStore:
    """The docker CLI's context store in a config folder (``docker context create`` writes it)."""

    folder: Path

    def current(self) -> str | None:
        try:
            doc = json.loads((self.folder / "config.json").read_text())
        except (OSError, ValueError):
            return None
        name = doc.get("currentContext") if isinstance(doc, dict) else None
        return str(name) if name else None

    def _read(self, meta_file: Path, *, strict: bool = False) -> ContextMeta | None:
        """The context in one meta.json; a file of the wrong shape is skipped, or (``strict``, the context asked for) a usage error."""
        try:
            doc = json.loads(meta_file.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(doc, dict) or not doc.get("Name"):
            return None
        endpoints = doc.get("Endpoints") or {}
        docker = (endpoints.get("docker") if isinstance(endpoints, dict) else None) or {}
        if not isinstance(endpoints, dict) or not isinstance(docker, dict) or not isinstance(docker.get("Host") or "", str):
            if strict:
                raise UsageError(
                    f"the Docker context {doc['Name']!r} is malformed: {meta_file} has no Endpoints.docker.Host string",
                    fix=f"Recreate it: `docker context rm {doc['Name']}` then `docker context create {doc['Name']} --docker host=URL`.",
                )
            return None
        tls_dir = self.folder / "contexts" / "tls" / meta_file.parent.name / "docker"
        files = {n: str(tls_dir / f"{n}.pem") for n in ("ca", "cert", "key") if (tls_dir / f"{n}.pem").is_file()}
        tls = TLSFiles(**files, verify=not docker.get("SkipTLSVerify", False)) if files or docker.get("SkipTLSVerify") else None
        return ContextMeta(name=str(doc["Name"]), host=str(docker.get("Host") or ""), tls=tls)

    def get(self, name: str) -> ContextMeta | None:
        digest = hashlib.sha256(name.encode()).hexdigest()
        meta = self._read(self.folder / "contexts" / "meta" / digest / "meta.json", strict=True)
        return meta if meta is not None and meta.name == name else None

    def names(self) -> list[str]:
        out = []
        for meta_file in sorted((self.folder / "contexts" / "meta").glob("*/meta.json")):
            meta = self._read(meta_file)
            if meta is not None:
                out.append(meta.name)
        return out
