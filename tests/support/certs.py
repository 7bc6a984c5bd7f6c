"""Throwaway TLS material made with openssl: a CA, a server certificate for 127.0.0.1, a client certificate.

The layout is what the docker CLI expects in DOCKER_CERT_PATH (ca.pem,
cert.pem, key.pem for the client); the server's files sit beside them.
EC keys: made in milliseconds.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Certs:
    folder: Path  # DOCKER_CERT_PATH: ca.pem, cert.pem, key.pem (the client's)

    @property
    def ca(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def server_cert(self) -> Path:
        return self.folder / "server-cert.pem"

    @property
    def server_key(self) -> Path:
        return self.folder / "server-key.pem"


def _ssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certs(folder: Path, *, cn: str = "devc-test") -> Certs:
    folder.mkdir(parents=True, exist_ok=True)
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _ssl("req", "-x509", *key, "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "2", "-subj", f"/CN={cn} CA", cwd=folder)
    (folder / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    (folder / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for who, subject in (("server", "/CN=127.0.0.1"), ("client", f"/CN={cn} client")):
        _ssl("req", "-new", *key, "-keyout", f"{who}-key.pem", "-out", f"{who}.csr", "-subj", subject, cwd=folder)
        _ssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-days", "2",
             "-extfile", f"{who}.ext", "-out", f"{who}-cert.pem", cwd=folder)
    (folder / "client-cert.pem").rename(folder / "cert.pem")
    (folder / "client-key.pem").rename(folder / "key.pem")
    for p in folder.glob("*key.pem"):
        p.chmod(0o600)
    return Certs(folder)
