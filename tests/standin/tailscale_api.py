"""Stand-in of the Tailscale HTTP API (stdlib only), sharing the control registry.

An HTTP server on 127.0.0.1 that tests start (``serve``). It models the
endpoints devc-tasks uses, as `tests/standin/README.md` ("Tailscale API") lists
with their sources: the OAuth client-credentials token flow with expiring
tokens, scope checks, tag ownership, single-use expiring auth keys (written to
``<registry>/keys/`` so the tailscaled stand-in accepts them), the device list
built from the registry's nodes, device deletion (which frees the name), and
faults on demand (a status with ``Retry-After``, or a delay).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _standin_common as C  # noqa: E402

TAILNET = C.TAILNET_NAME  # the organization name; "-" means the credential's own


@dataclass
class Client:
    secret: str
    scopes: tuple[str, ...]
    tags: tuple[str, ...]


@dataclass
class Fault:
    """Answer ``status`` (with ``retry_after``) or sleep ``delay`` s for the next ``count``
    requests whose path starts with ``prefix`` (and method matches, when given). With ``late``
    the request is done first and only its answer waits ``delay`` s (a server that did the
    work but answered after the client gave up)."""

    prefix: str
    status: int = 0
    count: int = 1
    retry_after: str | None = None
    delay: float = 0.0
    method: str | None = None
    message: str = "standin fault"
    late: bool = False


@dataclass
class ApiState:
    control: str
    clients: dict[str, Client] = field(default_factory=dict)
    api_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)  # tskey-api-... -> scopes
    tokens: dict[str, tuple[str, float]] = field(default_factory=dict)  # token -> (client id, expiry monotonic)
    tag_owners: dict[str, tuple[str, ...]] = field(default_factory=dict)  # tag -> tags that own it
    token_ttl: float = 3600.0
    faults: list[Fault] = field(default_factory=list)
    log: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path, status)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def registry(self) -> C.Registry:
        return C.Registry(self.control)

    def add_client(self, *, scopes: tuple[str, ...] = ("auth_keys", "devices:core"), tags: tuple[str, ...] = ("tag:devc",)) -> tuple[str, str]:
        cid = "k" + secrets.token_hex(5) + "CNTRL"
        secret = f"tskey-client-{cid}-{secrets.token_hex(16)}"
        self.clients[cid] = Client(secret=secret, scopes=tuple(scopes), tags=tuple(tags))
        return cid, secret

    def add_api_key(self) -> str:
        key = f"tskey-api-k{secrets.token_hex(5)}CNTRL-{secrets.token_hex(16)}"
        self.api_keys[key] = ("all",)
        return key

    def fail(self, prefix: str, status: int = 0, *, count: int = 1, retry_after: str | None = None, delay: float = 0.0, method: str | None = None, message: str = "standin fault", late: bool = False) -> None:
        self.faults.append(Fault(prefix=prefix, status=status, count=count, retry_after=retry_after, delay=delay, method=method, message=message, late=late))

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens = {t: (c, 0.0) for t, (c, _) in self.tokens.items()}

    def minted_keys(self) -> dict[str, dict]:
        return self.registry.all_keys()


def _legacy_id(node_id: str) -> str:
    return str(int(hashlib.sha256(node_id.encode()).hexdigest()[:13], 16))


def device_doc(rec: dict) -> dict[str, Any]:
    """A registry node as the devices endpoint shows it (devices.go Device fields)."""
    online = C.Registry.effective_online(rec)
    doc: dict[str, Any] = {
        "addresses": rec.get("TailscaleIPs") or [],
        "id": _legacy_id(rec["ID"]),
        "nodeId": rec["ID"],
        "user": "tagged-devices" if rec.get("Tags") else C.USER_LOGIN,
        "name": (rec.get("DNSName") or "").rstrip("."),
        "hostname": rec.get("HostName", ""),
        "clientVersion": C.LONG_VERSION,
        "updateAvailable": False,
        "os": rec.get("OS", "linux"),
        "created": rec.get("Created", ""),
        "connectedToControl": online,
        "keyExpiryDisabled": rec.get("KeyExpiry") is None,
        "expires": rec.get("KeyExpiry") or C.ZERO_TIME,
        "authorized": bool(rec.get("MachineAuthorized", True)),
        "isExternal": False,
        "isEphemeral": bool(rec.get("Ephemeral")),
        "machineKey": rec.get("MachineKey", ""),
        "nodeKey": rec.get("PublicKey", ""),
        "blocksIncomingConnections": False,
        "tags": rec.get("Tags") or [],
    }
    if not online:  # devices.go: LastSeen "will be nil if ConnectedToControl is true"
        doc["lastSeen"] = rec.get("LastSeen") or ""
    return doc


class Handler(BaseHTTPRequestHandler):
    server_version = "standin-api"
    protocol_version = "HTTP/1.1"

    @property
    def st(self) -> ApiState:
        return self.server.state  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # -- plumbing -------------------------------------------------------------

    def _send(self, status: int, doc: Any = None, headers: dict[str, str] | None = None) -> None:
        body = b"" if doc is None else json.dumps(doc).encode()
        self.st.log.append((self.command, self.path, status))  # before the answer: a client may look at once
        late, self._late = getattr(self, "_late", 0.0), 0.0
        if late:
            time.sleep(late)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self._send(status, {"message": message}, headers)

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _fault(self, path: str) -> bool:
        with self.st.lock:
            f = next((f for f in self.st.faults if path.startswith(f.prefix) and f.count > 0 and (f.method is None or f.method == self.command)), None)
            if f is not None:
                f.count -= 1
        if f is None:
            return False
        if f.late:
            self._late = f.delay  # done now, answered in _send
            return False
        if f.delay:
            time.sleep(f.delay)
        if not f.status:
            return False
        self._body()
        self._error(f.status, f.message, {"Retry-After": f.retry_after} if f.retry_after else None)
        return True

    def _auth(self) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        """(scopes, tags) of the bearer (an access token or an API key), or None after a 401."""
        h = self.headers.get("Authorization", "")
        token = ""
        if h.startswith("Bearer "):
            token = h[7:].strip()
        elif h.startswith("Basic "):
            import base64

            try:
                token = base64.b64decode(h[6:]).decode().split(":", 1)[0]
            except ValueError:
                token = ""
        if token in self.st.api_keys:
            return self.st.api_keys[token], ()
        with self.st.lock:
            entry = self.st.tokens.get(token)
        if entry is None or entry[1] <= time.monotonic():
            self._error(401, "API token invalid" if entry is None else "API token expired")
            return None
        client = self.st.clients.get(entry[0])
        if client is None:  # the OAuth client was deleted
            self._error(401, "API token invalid")
            return None
        return client.scopes, client.tags

    def _scoped(self, need: str, read_ok: bool = False) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        who = self._auth()
        if who is None:
            return None
        scopes, _tags = who
        ok = "all" in scopes or need in scopes or (read_ok and (f"{need}:read" in scopes or "all:read" in scopes))
        if not ok:
            self._error(403, "calling actor does not have enough permissions to perform this function")
            return None
        return who

    def _tailnet_ok(self, name: str) -> bool:
        if name in ("-", TAILNET):
            return True
        self._error(404, "tailnet not found")
        return False

    # -- routes -----------------------------------------------------------------

    def do_POST(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        if self._fault(path):
            return
        if path == "/api/v2/oauth/token":
            return self._token()
        m = re.fullmatch(r"/api/v2/tailnet/([^/]+)/keys", path)
        if m:
            return self._create_key(unquote(m.group(1)))
        self._body()
        self._error(404, "not found")

    def do_GET(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        if self._fault(parts.path):
            return
        m = re.fullmatch(r"/api/v2/tailnet/([^/]+)/devices", parts.path)
        if m:
            if self._scoped("devices:core", read_ok=True) is None or not self._tailnet_ok(unquote(m.group(1))):
                return
            return self._send(200, {"devices": [device_doc(r) for r in self.st.registry.all()]})
        m = re.fullmatch(r"/api/v2/tailnet/([^/]+)/keys", parts.path)
        if m:  # the IDs of the active keys, nothing else
            if self._scoped("auth_keys", read_ok=True) is None or not self._tailnet_ok(unquote(m.group(1))):
                return
            return self._send(200, {"keys": [{"id": r["id"]} for r in self.st.minted_keys().values() if not self._key_doc(r)["invalid"]]})
        m = re.fullmatch(r"/api/v2/tailnet/([^/]+)/keys/([^/]+)", parts.path)
        if m:
            if self._scoped("auth_keys", read_ok=True) is None or not self._tailnet_ok(unquote(m.group(1))):
                return
            rec = next((r for r in self.st.minted_keys().values() if r.get("id") == unquote(m.group(2))), None)
            if rec is None:
                return self._error(404, "key not found")
            return self._send(200, self._key_doc(rec))
        self._error(404, "not found")

    def do_DELETE(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        if self._fault(path):
            return
        m = re.fullmatch(r"/api/v2/tailnet/([^/]+)/keys/([^/]+)", path)
        if m:
            if self._scoped("auth_keys") is None or not self._tailnet_ok(unquote(m.group(1))):
                return
            kid = unquote(m.group(2))
            reg = self.st.registry
            for h, rec in reg.all_keys().items():
                if rec.get("id") == kid:
                    rec["revoked"] = True
                    reg.put_key(h, rec)
                    return self._send(200)
            return self._error(404, "key not found")
        m = re.fullmatch(r"/api/v2/device/([^/]+)", path)
        if m:
            if self._scoped("devices:core") is None:
                return
            did = unquote(m.group(1))
            reg = self.st.registry
            rec = next((r for r in reg.all() if did in (r["ID"], _legacy_id(r["ID"]))), None)
            if rec is None:
                return self._error(404, "device not found")
            reg.remove(rec["ID"])
            return self._send(200)
        self._error(404, "not found")

    # -- handlers ---------------------------------------------------------------

    def _token(self) -> None:
        form = {k: v[0] for k, v in parse_qs(self._body().decode()).items()}
        cid, secret = form.get("client_id", ""), form.get("client_secret", "")
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            import base64

            cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        if form.get("grant_type") != "client_credentials":
            return self._send(400, {"error": "unsupported_grant_type"})
        client = self.st.clients.get(cid)
        if client is None or not secrets.compare_digest(client.secret, secret):
            return self._send(401, {"error": "invalid_client", "error_description": "invalid client credentials"})
        token = f"tskey-api-{cid}-{secrets.token_hex(16)}"
        with self.st.lock:
            self.st.tokens[token] = (cid, time.monotonic() + self.st.token_ttl)
        self._send(200, {"access_token": token, "token_type": "Bearer", "expires_in": int(self.st.token_ttl), "scope": " ".join(client.scopes)})

    def _owned(self, tag: str, client_tags: tuple[str, ...]) -> bool:
        return tag in client_tags or any(o in client_tags for o in self.st.tag_owners.get(tag, ()))

    def _create_key(self, tailnet: str) -> None:
        raw = self._body()
        who = self._scoped("auth_keys")
        if who is None or not self._tailnet_ok(tailnet):
            return
        _scopes, client_tags = who
        try:
            req = json.loads(raw or b"{}")
            create = req["capabilities"]["devices"]["create"]
        except (ValueError, KeyError, TypeError):
            return self._error(400, "invalid request body")
        tags = list(create.get("tags") or [])
        desc = str(req.get("description") or "")
        if len(desc) > 50 or not re.fullmatch(r"[A-Za-z0-9 -]*", desc):
            return self._error(400, "description must be at most 50 characters of letters, numbers, spaces and hyphens")
        for t in tags:
            if C.check_tag(t):
                return self._error(400, f"requested tags [{' '.join(tags)}] are invalid or not permitted")
        is_oauth = bool(client_tags) or "all" not in _scopes
        if is_oauth and (not tags or not all(self._owned(t, client_tags) for t in tags)):
            return self._error(400, f"requested tags [{' '.join(tags)}] are invalid or not permitted")
        expiry = int(req.get("expirySeconds") or 90 * 86400)
        now = C.now_utc()
        kid = "k" + secrets.token_hex(5) + "CNTRL"
        key = f"tskey-auth-{kid}-{secrets.token_hex(16)}"
        rec = {
            "id": kid,
            "created": C.fmt_time(now),
            "expires": C.fmt_time(now + _dt.timedelta(seconds=expiry)),
            "reusable": bool(create.get("reusable")),
            "ephemeral": bool(create.get("ephemeral")),
            "preauthorized": bool(create.get("preauthorized")),
            "tags": tags,
            "description": desc,
            "revoked": False,
            "uses": 0,
        }
        self.st.registry.put_key(C.key_id(key), rec)
        self._send(200, {**self._key_doc(rec), "key": key})

    @staticmethod
    def _key_doc(rec: dict) -> dict[str, Any]:
        exp = C.parse_time(rec.get("expires"))
        invalid = bool(rec.get("revoked")) or (exp is not None and exp <= C.now_utc()) or (not rec.get("reusable") and rec.get("uses", 0) >= 1)
        return {
            "id": rec["id"],
            "keyType": "auth",
            "description": rec.get("description", ""),
            "created": rec["created"],
            "expires": rec["expires"],
            "invalid": invalid,
            "capabilities": {"devices": {"create": {k: rec[k] for k in ("reusable", "ephemeral", "preauthorized", "tags")}}},
        }


@dataclass
class RunningApi:
    state: ApiState
    server: ThreadingHTTPServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that gave up (timeout tests)
            super().handle_error(request, client_address)


def serve(control: str, host: str = "127.0.0.1", port: int = 0) -> RunningApi:
    state = ApiState(control=str(control))
    server = _Server((host, port), Handler)
    server.daemon_threads = True
    server.state = state  # type: ignore[attr-defined]
    t = threading.Thread(target=server.serve_forever, name="standin-api", daemon=True)
    t.start()
    return RunningApi(state=state, server=server, thread=t)


if __name__ == "__main__":  # manual use: python3 tests/standin/tailscale_api.py CONTROL_DIR
    running = serve(sys.argv[1] if len(sys.argv) > 1 else C.control_dir(), port=int(os.environ.get("PORT", "0")))
    cid, sec = running.state.add_client()
    print(f"{running.url} client_id={cid}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        running.stop()
