"""The Tailscale HTTP API client: OAuth token, keys, devices (one method per endpoint).

Everything secret stays in this process: the client secret and the access token
travel only in request headers/bodies to the API, are held in ``Secret``s, and
never reach a message (``redact`` is applied to what the API says, too). Every
request has a connect and a read timeout; 429 and 5xx are retried a bounded
number of times by urllib3, honouring ``Retry-After`` up to a cap. ``requests``
is imported on first use (fast start).

Three layers, each a class: ``_Transport`` (HTTP, retries, bounds), ``_Authorized``
(the credential and the API's refusals as typed errors), ``TailscaleApi`` (the endpoints).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from devc_tasks.core.apirules import SCOPE_DEVICES, SCOPE_KEYS, ApiSettings, Device
from devc_tasks.core.errors import ApiError, ApiForbidden, ApiNotFound, ApiRejected, ApiUnauthorized, ApiUnavailable, ApiUnreachable, UsageError
from devc_tasks.core.secrets import Secret, redact

__all__ = ["TailscaleApi", "MintedKey", "NoAnswer", "RETRIES"]

RETRIES = 3  # for 429 and 5xx
_RETRY_STATUS = (429, 500, 502, 503, 504)
MAX_BODY = 8 * 1024 * 1024  # no answer of the API comes near this
_TOKEN_MARGIN = 60.0  # refresh an access token this long before it expires


class NoAnswer(ApiUnreachable):
    """The request went out and no answer came in time: the API may still have done it."""


@dataclass(frozen=True)
class MintedKey:
    id: str
    key: Secret
    expires: str | None


@dataclass
class _Transport:
    """HTTP to the API: one session with bounded retries for 429/5xx, a connect and a read
    timeout per request, answers read up to ``MAX_BODY``, transport failures as typed errors."""

    settings: ApiSettings
    timeout: float = 30.0
    _session: Any = field(default=None, repr=False)

    def _http(self) -> Any:
        if self._session is None:
            import requests
            from requests.adapters import HTTPAdapter
            from urllib3.util.retry import Retry

            cap = max(1.0, min(30.0, self.timeout / 2))

            class _BoundedRetry(Retry):
                """Retry-After honoured, but never longer than ``cap`` seconds."""

                def get_retry_after(self, response: Any) -> float | None:
                    after = super().get_retry_after(response)
                    return None if after is None else min(after, cap)

            retry = _BoundedRetry(
                total=RETRIES + 1,
                connect=1,
                read=0,  # a POST that timed out may have been done: never resend it
                status=RETRIES,
                other=0,
                backoff_factor=0.5,
                status_forcelist=_RETRY_STATUS,
                allowed_methods=None,  # every method: 429/5xx means the request was not done
                respect_retry_after_header=True,
                raise_on_status=False,
            )
            s = requests.Session()
            s.trust_env = False  # no ~/.netrc: authentication is ours alone
            s.mount("https://", HTTPAdapter(max_retries=retry))
            s.mount("http://", HTTPAdapter(max_retries=retry))
            s.headers["User-Agent"] = "devc-tasks"
            self._session = s
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def _timeouts(self) -> tuple[float, float]:
        return (min(10.0, self.timeout), self.timeout)

    def _send(self, method: str, url: str, **kw: Any) -> Any:
        import requests
        from urllib3.exceptions import ReadTimeoutError

        try:
            try:
                r = self._http().request(method, url, timeout=self._timeouts(), allow_redirects=False, stream=True, **kw)
                return self._bounded(r)
            except requests.exceptions.ConnectionError as e:  # read=0 retries: a read timeout comes wrapped
                if isinstance(getattr(e.args[0] if e.args else None, "reason", None), ReadTimeoutError):
                    raise requests.exceptions.ReadTimeout() from None
                raise
        except requests.exceptions.Timeout as e:
            raise (NoAnswer if isinstance(e, requests.exceptions.ReadTimeout) else ApiUnreachable)(
                f"the Tailscale API at {self.settings.base_url} did not answer within {self.timeout:g} s",
                fix="Check the network (or TAILSCALE_BASE_URL), or raise --timeout.",
            ) from None
        except requests.exceptions.RetryError:
            raise ApiUnavailable(f"the Tailscale API at {self.settings.base_url} kept failing after {RETRIES} retries", fix="Try again later.") from None
        except requests.exceptions.RequestException as e:
            raise ApiUnreachable(
                f"cannot reach the Tailscale API at {self.settings.base_url}: {type(e).__name__}",
                fix="Check the network, a proxy, or TAILSCALE_BASE_URL.",
            ) from None

    def _bounded(self, r: Any) -> Any:
        """Read at most MAX_BODY bytes of the answer: a hostile or broken server cannot
        make this process hold an endless body in memory."""
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in r.iter_content(64 * 1024):
                size += len(chunk)
                if size > MAX_BODY:
                    raise ApiError(f"the Tailscale API at {self.settings.base_url} sent an answer larger than {MAX_BODY // (1024 * 1024)} MiB")
                chunks.append(chunk)
        finally:
            r.close()
        r._content = b"".join(chunks)  # requests keeps the body here; read once, bounded
        r._content_consumed = True
        return r

    @staticmethod
    def _message(response: Any) -> str:
        try:
            doc = response.json()
            text = str(doc.get("message") or doc.get("error_description") or doc.get("error") or "") if isinstance(doc, dict) else ""
        except ValueError:
            text = ""
        text = text or (response.text or "").strip()[:300]
        return redact(text)


@dataclass
class _Authorized(_Transport):
    """Requests with the credential: the API key, or an OAuth access token kept in memory and
    renewed; the API's refusals mapped to their typed errors."""

    _token: Secret | None = field(default=None, repr=False)
    _token_expires: float = 0.0

    def close(self) -> None:
        super().close()
        self._token = None

    def _access_token(self) -> Secret:
        """The API key itself, or an OAuth access token (fetched, kept in memory, renewed)."""
        s = self.settings
        if s.kind == "api-key":
            assert s.api_key is not None
            return s.api_key
        if s.kind != "oauth":
            raise UsageError("no Tailscale API credentials on this host")
        if self._token is not None and time.monotonic() < self._token_expires - _TOKEN_MARGIN:
            return self._token
        assert s.client_secret is not None and s.client_id
        r = self._send(
            "POST",
            f"{s.base_url}/api/v2/oauth/token",
            data={"grant_type": "client_credentials", "client_id": s.client_id, "client_secret": s.client_secret().reveal()},
        )
        if r.status_code in (400, 401):
            raise ApiUnauthorized(
                f"the Tailscale API refused the OAuth client {s.client_id} ({r.status_code}): {self._message(r)}",
                fix="Check TAILSCALE_OAUTH_CLIENT_ID and the client secret (a revoked or mistyped client gives this); create a new OAuth client in the admin console if needed.",
            )
        self._raise_for(r, what="get an OAuth access token", scope=None)
        try:
            doc = r.json()
            token = str(doc["access_token"])
            ttl = float(doc.get("expires_in") or 3600)
        except (ValueError, KeyError, TypeError):
            raise ApiError("the Tailscale API's token answer has no access_token") from None
        self._token = Secret(token)
        self._token_expires = time.monotonic() + ttl
        return self._token

    def _raise_for(self, r: Any, *, what: str, scope: str | None) -> None:
        code = r.status_code
        if 200 <= code < 300:
            return
        msg = self._message(r)
        if code == 401:
            how = "the API access token (TAILSCALE_API_KEY)" if self.settings.kind == "api-key" else f"the access token of OAuth client {self.settings.client_id}"
            raise ApiUnauthorized(f"the Tailscale API refused {how} to {what} (401): {msg}", fix="Check the credential: it may be expired, revoked or mistyped.")
        if code == 403:
            need = f"the scope `{scope}`" if scope else "a permission"
            raise ApiForbidden(
                f"the credential lacks {need} needed to {what} (403): {msg}",
                fix=f"Edit the OAuth client (or create one) with the scope `{scope}` in the admin console (Settings > OAuth clients)." if scope else None,
            )
        if code == 400:
            raise ApiRejected(
                f"the Tailscale API refused to {what} (400): {msg}",
                fix="Tags must be owned by the OAuth client's tags (tagOwners in the tailnet policy); use --advertise-tags with a tag the client may assign.",
            )
        if code == 404:
            raise ApiNotFound(
                f"the Tailscale API does not know the tailnet {self.settings.tailnet!r} (404 on {what}): {msg}",
                fix="Set TAILSCALE_TAILNET to your organization name (Settings > General), or to - for the credential's own tailnet.",
            )
        if code == 429 or code >= 500:
            raise ApiUnavailable(f"the Tailscale API answered {code} to {what}, still after {RETRIES} retries: {msg}", fix="Try again later.")
        raise ApiError(f"the Tailscale API answered {code} to {what}: {msg}")

    def _call(self, method: str, path: str, *, what: str, scope: str | None, ok_missing: bool = False, **kw: Any) -> Any:
        token = self._access_token()
        r = self._send(method, f"{self.settings.base_url}{path}", headers={"Authorization": f"Bearer {token.reveal()}"}, **kw)
        if r.status_code == 401 and self.settings.kind == "oauth":  # the token may have expired early: one fresh token
            self._token = None
            token = self._access_token()
            r = self._send(method, f"{self.settings.base_url}{path}", headers={"Authorization": f"Bearer {token.reveal()}"}, **kw)
        if ok_missing and r.status_code == 404:
            return None
        self._raise_for(r, what=what, scope=scope)
        if not r.content:
            return {}
        try:
            return r.json()
        except ValueError:
            raise ApiError(f"the Tailscale API's answer to {what} is not JSON") from None

    def _tailnet(self) -> str:
        from urllib.parse import quote

        return quote(self.settings.tailnet, safe="")


@dataclass
class TailscaleApi(_Authorized):
    """One credential, one tailnet: one method per endpoint. ``timeout`` bounds each request (connect and read)."""

    def create_key(self, body: dict[str, Any]) -> MintedKey:
        """``POST /api/v2/tailnet/{tailnet}/keys``; the key is returned once."""
        doc = self._call("POST", f"/api/v2/tailnet/{self._tailnet()}/keys", json=body, what="create an auth key", scope=SCOPE_KEYS)
        key_id = doc.get("id") if isinstance(doc, dict) else None
        key = doc.get("key") if isinstance(doc, dict) else None
        if not isinstance(key_id, str) or not key_id or not isinstance(key, str) or not key.startswith("tskey-"):
            raise ApiError("the Tailscale API's answer to key creation has no key (a string id and a tskey-... key)")
        expires = doc.get("expires")
        return MintedKey(id=key_id, key=Secret(key), expires=expires if isinstance(expires, str) else None)

    def delete_key(self, key_id: str) -> None:
        """``DELETE /api/v2/tailnet/{tailnet}/keys/{id}``; a key already gone is fine."""
        from urllib.parse import quote

        self._call("DELETE", f"/api/v2/tailnet/{self._tailnet()}/keys/{quote(key_id, safe='')}", what="delete the auth key", scope=SCOPE_KEYS, ok_missing=True)

    def key_ids(self) -> list[str]:
        """``GET /api/v2/tailnet/{tailnet}/keys``: the IDs of the active keys (the list holds nothing else)."""
        doc = self._call("GET", f"/api/v2/tailnet/{self._tailnet()}/keys", what="list auth keys", scope=SCOPE_KEYS)
        entries = doc.get("keys") if isinstance(doc, dict) else None
        if not isinstance(entries, list):
            raise ApiError("the Tailscale API's key list has no `keys` array")
        return [e["id"] for e in entries if isinstance(e, dict) and isinstance(e.get("id"), str)]

    def key(self, key_id: str) -> dict[str, Any] | None:
        """``GET /api/v2/tailnet/{tailnet}/keys/{id}``: the key's metadata (never the key); None when gone."""
        from urllib.parse import quote

        doc = self._call("GET", f"/api/v2/tailnet/{self._tailnet()}/keys/{quote(key_id, safe='')}", what="read an auth key", scope=SCOPE_KEYS, ok_missing=True)
        return doc if isinstance(doc, dict) else None

    def devices(self) -> list[Device]:
        """``GET /api/v2/tailnet/{tailnet}/devices``."""
        doc = self._call("GET", f"/api/v2/tailnet/{self._tailnet()}/devices", what="list devices", scope=SCOPE_DEVICES)
        entries = doc.get("devices") if isinstance(doc, dict) else None
        if not isinstance(entries, list):
            raise ApiError("the Tailscale API's device list has no `devices` array")
        try:
            return [Device.from_api(d) for d in entries]
        except TypeError as e:
            raise ApiError(f"the Tailscale API's device list is not as documented: {e}") from None

    def delete_device(self, device_id: str) -> None:
        """``DELETE /api/v2/device/{id}`` (nodeId preferred); a device already gone is fine."""
        from urllib.parse import quote

        self._call("DELETE", f"/api/v2/device/{quote(device_id, safe='')}", what="delete a device", scope=SCOPE_DEVICES, ok_missing=True)
