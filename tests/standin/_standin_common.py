"""Shared code of the tailscale/tailscaled test stand-ins (stdlib only).

Installed next to the programs (tests/standin/) or as
/usr/local/lib/tailscale-standin/_standin_common.py inside containers.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
import re
import socket
import sys
import time

# hashlib, ipaddress and secrets are imported where used: the CLI runs once per
# command and rarely needs them, and their import is a good part of its start-up.

SHORT_VERSION = "1.86.2"
LONG_VERSION = "1.86.2-standin"
GIT_COMMIT = "5a2b8c1f0e7d6c4b3a29180f7e6d5c4b3a291807"
GO_VERSION = "go1.24.6"

DEFAULT_SOCKET = "/var/run/tailscale/tailscaled.sock"
DEFAULT_STATE = "/var/lib/tailscale/tailscaled.state"
DEFAULT_CONTROL_DIR = "/srv/tailscale-control"
DEFAULT_CONTROL_URL = "https://controlplane.tailscale.com"
MAGIC_DNS_SUFFIX = "tailnet-standin.ts.net"
TAILNET_NAME = "standin@example.com"
USER_ID = 6158309114512345
USER_LOGIN = "standin@example.com"
USER_DISPLAY = "Stand In"
TAGGED_USER_ID = 6158309114599999
ZERO_TIME = "0001-01-01T00:00:00Z"
ZERO_NODEKEY = "nodekey:" + "0" * 64
KEY_EXPIRY_DAYS = 180

NETFILTER_NAMES = {0: "off", 1: "nodivert", 2: "on"}
NETFILTER_VALUES = {v: k for k, v in NETFILTER_NAMES.items()}


def env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, ""))
    except ValueError:
        return default


def control_dir() -> str:
    return os.environ.get("TS_STANDIN_CONTROL") or DEFAULT_CONTROL_DIR


# ---------------------------------------------------------------- time


def now_utc() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def fmt_time(t: _dt.datetime | None) -> str:
    if t is None:
        return ZERO_TIME
    return t.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(s: str | None) -> _dt.datetime | None:
    if not s or s == ZERO_TIME:
        return None
    return _dt.datetime.strptime(s[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=_dt.UTC)


def go_log(msg: str) -> None:
    """log.Printf with the default Go flags: date and time, local time."""
    stamp = time.strftime("%Y/%m/%d %H:%M:%S")
    for line in msg.splitlines() or [""]:
        sys.stderr.write(f"{stamp} {line}\n")
    sys.stderr.flush()


# ---------------------------------------------------------------- Go-isms


def go_quote(s: str) -> str:
    """Approximation of Go's %q for strings."""
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) <= 0xFF:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def go_quote_byte(b: int) -> str:
    """Go's %q for a byte value (quoted rune)."""
    ch = chr(b)
    if ch == "'":
        return "'\\''"
    if ch == "\\":
        return "'\\\\'"
    if ch.isprintable():
        return f"'{ch}'"
    return f"'\\x{b:02x}'"


def go_json(obj, indent="  ") -> str:
    """encoding/json.MarshalIndent: HTML-safe escaping, UTF-8 kept."""
    s = json.dumps(obj, indent=indent, ensure_ascii=False)
    return (s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


_SQ_SPECIAL = "\\'\"`${[|&;<>()*?!"
_SQ_SPACE = " \t\n"


def shell_quote(word: str) -> str:
    """kballard/go-shellquote Join for one word."""
    if word == "":
        return "''"
    out = []
    quote_mode = False
    for i, ch in enumerate(word):
        if ch in _SQ_SPACE:
            quote_mode = True
            break
        if ch in _SQ_SPECIAL or (i == 0 and ch == "~"):
            out.append("\\" + ch)
        else:
            out.append(ch)
    if not quote_mode:
        return "".join(out)
    parts = word.split("'")
    res = []
    for i, p in enumerate(parts):
        if p:
            res.append("'" + p + "'")
        if i != len(parts) - 1:
            res.append("\\'")
    return "".join(res)


_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DUR_RE = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(s: str) -> float:
    """time.ParseDuration; returns seconds. Raises ValueError."""
    orig = s
    if s in ("0", "+0", "-0"):
        return 0.0
    if not s:
        raise ValueError(f"time: invalid duration {go_quote(orig)}")
    sign = 1.0
    if s[0] in "+-":
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    total = 0.0
    pos = 0
    while pos < len(s):
        m = _DUR_RE.match(s, pos)
        if not m or m.group(1) in ("", "."):
            if re.match(r"[0-9.]+$", s[pos:]):
                raise ValueError(f"time: missing unit in duration {go_quote(orig)}")
            raise ValueError(f"time: invalid duration {go_quote(orig)}")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return sign * total


def format_duration(sec: float) -> str:
    """time.Duration.String()."""
    ns = round(sec * 1e9)
    if ns == 0:
        return "0s"
    neg = ns < 0
    ns = abs(ns)
    if ns < 1_000_000_000:
        if ns < 1000:
            out = f"{ns}ns"
        elif ns < 1_000_000:
            out = _frac(ns, 1000) + "µs"
        else:
            out = _frac(ns, 1_000_000) + "ms"
    else:
        h, rem = divmod(ns, 3_600_000_000_000)
        m, rem = divmod(rem, 60_000_000_000)
        out = ""
        if h:
            out += f"{h}h"
        if h or m:
            out += f"{m}m"
        out += _frac(rem, 1_000_000_000) + "s"
    return ("-" if neg else "") + out


def _frac(v: int, unit: int) -> str:
    whole, frac = divmod(v, unit)
    if not frac:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}." + str(frac).rjust(digits, "0").rstrip("0")


def parse_bool(v: str) -> bool:
    if v in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if v in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError("parse error")


class FlagError(Exception):
    pass


class HelpRequested(Exception):
    pass


class FlagSet:
    """A small model of Go's flag package (names without dashes)."""

    def __init__(self, name: str):
        self.name = name
        self.kinds: dict[str, str] = {}  # name -> bool|string|duration
        self.defaults: dict[str, object] = {}
        self.values: dict[str, object] = {}
        self.raw: dict[str, str] = {}
        self.set_order: list[str] = []

    def add(self, name: str, kind: str, default):
        self.kinds[name] = kind
        self.defaults[name] = default

    def get(self, name: str):
        return self.values.get(name, self.defaults[name])

    def is_set(self, name: str) -> bool:
        return name in self.values

    def visit(self):
        """Set flags in lexicographical order, like flag.FlagSet.Visit."""
        return sorted(self.values)

    def value_string(self, name: str) -> str:
        kind = self.kinds[name]
        v = self.get(name)
        if kind == "bool":
            return "true" if v else "false"
        if kind == "duration":
            return format_duration(v)
        return str(v)

    def _set(self, name: str, value: str):
        kind = self.kinds[name]
        if kind == "bool":
            try:
                v = parse_bool(value)
            except ValueError:
                raise FlagError(f"invalid boolean value {go_quote(value)} for -{name}: parse error") from None
        elif kind == "duration":
            try:
                v = parse_duration(value)
            except ValueError:
                raise FlagError(f"invalid value {go_quote(value)} for flag -{name}: parse error") from None
        else:
            v = value
        self.values[name] = v
        self.raw[name] = value
        self.set_order.append(name)

    def parse(self, args: list[str]) -> list[str]:
        i = 0
        while i < len(args):
            a = args[i]
            if len(a) < 2 or a[0] != "-":
                break
            if a == "--":
                i += 1
                break
            body = a[2:] if a.startswith("--") else a[1:]
            if not body or body[0] in "-=":
                raise FlagError(f"bad flag syntax: {a}")
            name, has_val, val = body.partition("=")
            i += 1
            if name in ("h", "help") and name not in self.kinds:
                raise HelpRequested()
            if name not in self.kinds:
                raise FlagError(f"flag provided but not defined: -{name}")
            if self.kinds[name] == "bool":
                self._set(name, val if has_val else "true")
                continue
            if not has_val:
                if i >= len(args):
                    raise FlagError(f"flag needs an argument: -{name}")
                val = args[i]
                i += 1
            self._set(name, val)
        return args[i:]


# ---------------------------------------------------------------- dnsname


def _isalphanum(c: int) -> bool:
    return 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122


def _isdnschar(c: int) -> bool:
    return _isalphanum(c) or c == 45


def sanitize_label(label: str) -> str:
    b = label.encode("utf-8", "surrogateescape")
    start, end = 0, min(len(b), 63)
    while start < end and not _isalphanum(b[start]):
        start += 1
    while start < end and not _isalphanum(b[end - 1]):
        end -= 1
    out = []
    for i in range(start, end):
        c = b[i]
        boundary = i == start or i == end - 1
        if not boundary and chr(c) in " .@_":
            out.append("-")
        elif _isdnschar(c):
            out.append(chr(c).lower())
    return "".join(out)


def sanitize_hostname(h: str) -> str:
    for suf in (".local", ".localdomain", ".lan"):
        h = h.removesuffix(suf)
    return sanitize_label(h)


def _bstr(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def valid_label(label: bytes):
    if len(label) == 0:
        return "empty DNS label"
    q = go_quote(_bstr(label))
    if len(label) > 63:
        return f"{q} is too long, max length is 63 bytes"
    if not _isalphanum(label[0]):
        return f"{q} is not a valid DNS label: must start with a letter or number"
    if not _isalphanum(label[-1]):
        return f"{q} is not a valid DNS label: must end with a letter or number"
    for c in label[1:-1]:
        if not _isdnschar(c):
            return f"{q} is not a valid DNS label: contains invalid character {go_quote_byte(c)}"
    return None


def valid_hostname(hostname: str):
    """dnsname.ValidHostname; returns an error string or None."""
    s = hostname.encode("utf-8", "surrogateescape")
    if len(s) == 0 or s == b".":
        fqdn = b"."
    else:
        if s[:1] == b".":
            s = s[1:]
        raw = s
        total = len(s)
        if s[-1:] == b".":
            s = s[:-1]
        else:
            total += 1
        if total > 253:
            return f"{go_quote(_bstr(s))} is too long to be a DNS name"
        st = 0
        for i in range(len(s)):
            if s[i] != 46:
                continue
            label = s[st:i]
            if len(label) == 0 or len(label) > 63:
                return f"{go_quote(_bstr(label))} is not a valid DNS label"
            st = i + 1
        fqdn = raw if raw[-1:] == b"." else raw + b"."
    for label in fqdn[:-1].split(b"."):
        err = valid_label(label)
        if err:
            return err
    return None


def check_tag(tag: str):
    if not tag.startswith("tag:"):
        return "tags must start with 'tag:'"
    t = tag[4:]
    if not t:
        return "tag names must not be empty"
    if not t[0].isascii() or not t[0].isalpha():
        return "tag names must start with a letter, after 'tag:'"
    for ch in t:
        if not (ch.isascii() and (ch.isalnum() or ch == "-")):
            return "tag names can only contain numbers, letters, or dashes"
    return None


# ---------------------------------------------------------------- prefs


def default_prefs() -> dict:
    """ipn.NewPrefs() on Linux (the subset the stand-in keeps)."""
    return {
        "ControlURL": "",
        "RouteAll": False,
        "ExitNodeID": "",
        "ExitNodeIP": "",
        "ExitNodeAllowLANAccess": False,
        "CorpDNS": True,
        "RunSSH": False,
        "RunWebClient": False,
        "WantRunning": False,
        "LoggedOut": False,
        "ShieldsUp": False,
        "AdvertiseTags": None,
        "Hostname": "",
        "AdvertiseRoutes": None,
        "NoSNAT": False,
        "NoStatefulFiltering": "true",
        "NetfilterMode": 2,
        "OperatorUser": "",
        "AppConnector": {"Advertise": False},
    }


EXIT_ROUTES = ("0.0.0.0/0", "::/0")


def contains_exit_routes(routes) -> bool:
    """net/tsaddr ``ContainsExitRoutes``: both the IPv4 and the IPv6 default route."""
    routes = list(routes or [])
    return all(r in routes for r in EXIT_ROUTES)


def prefs_for_debug(prefs: dict, persist: dict | None) -> dict:
    """JSON shape of `tailscale debug prefs` (ipn.Prefs, keys stripped)."""
    p = dict(default_prefs())
    p.update(prefs)
    out = {
        "ControlURL": p["ControlURL"],
        "RouteAll": p["RouteAll"],
        "ExitNodeID": p["ExitNodeID"],
        "ExitNodeIP": p["ExitNodeIP"],
        "InternalExitNodePrior": "",
        "ExitNodeAllowLANAccess": p["ExitNodeAllowLANAccess"],
        "CorpDNS": p["CorpDNS"],
        "RunSSH": p["RunSSH"],
        "RunWebClient": p["RunWebClient"],
        "WantRunning": p["WantRunning"],
        "LoggedOut": p["LoggedOut"],
        "ShieldsUp": p["ShieldsUp"],
        "AdvertiseTags": p["AdvertiseTags"] or None,
        "Hostname": p["Hostname"],
        "NotepadURLs": False,
        "AdvertiseRoutes": p["AdvertiseRoutes"] or None,
        "AdvertiseServices": None,
        "NoSNAT": p["NoSNAT"],
        "NoStatefulFiltering": p["NoStatefulFiltering"],
        "NetfilterMode": p["NetfilterMode"],
    }
    if p["OperatorUser"]:
        out["OperatorUser"] = p["OperatorUser"]
    out.update({
        "AutoUpdate": {"Check": True, "Apply": None},
        "AppConnector": {"Advertise": bool((p.get("AppConnector") or {}).get("Advertise"))},
        "PostureChecking": False,
        "NetfilterKind": "",
        "DriveShares": None,
        "AllowSingleHosts": True,
    })
    if persist is not None:
        out["Config"] = {
            "PrivateNodeKey": "privkey:" + "0" * 64,
            "OldPrivateNodeKey": "privkey:" + "0" * 64,
            "UserProfile": persist.get("UserProfile") or {"ID": 0, "LoginName": "", "DisplayName": ""},
            "NetworkLockKey": "nlpriv:" + "0" * 64,
            "NodeID": persist.get("NodeID", ""),
        }
    else:
        out["Config"] = None
    return out


# ---------------------------------------------------------------- keys


_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def new_stable_id() -> str:
    import secrets
    return "n" + "".join(secrets.choice(_ALNUM) for _ in range(10)) + "CNTRL"


def new_private_key() -> str:
    import secrets
    return secrets.token_hex(32)


def public_of(private_hex: str, prefix: str = "nodekey:") -> str:
    import hashlib
    return prefix + hashlib.sha256(b"standin-public:" + bytes.fromhex(private_hex)).hexdigest()


def key_id(key: str) -> str:
    import hashlib
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def atomic_write(path: str, data: str, mode: int = 0o600) -> None:
    import secrets
    d = os.path.dirname(path) or "."
    tmp = os.path.join(d, f".{os.path.basename(path)}.tmp.{os.getpid()}.{secrets.token_hex(3)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ---------------------------------------------------------------- registry


class Registry:
    """The simulated control server: a directory shared by all nodes.

    <dir>/lock             flock(2) guard for every update
    <dir>/tailnet.json     allocation counters
    <dir>/nodes/<ID>.json  one registered node
    <dir>/logins.jsonl     one line per successful login
    <dir>/approvals/<code> created by a test to approve an interactive login
    """

    STALE_SECONDS = 15.0

    def __init__(self, path: str | None = None):
        self.path = path or control_dir()
        self.nodes_dir = os.path.join(self.path, "nodes")

    def ensure(self):
        for d in (self.path, self.nodes_dir, os.path.join(self.path, "approvals")):
            try:
                os.makedirs(d, exist_ok=True)
                os.chmod(d, 0o777)
            except PermissionError:
                pass

    class _Locked:
        def __init__(self, reg):
            self.reg = reg

        def __enter__(self):
            self.reg.ensure()
            p = os.path.join(self.reg.path, "lock")
            self.fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o666)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            return self.reg

        def __exit__(self, *exc):
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)

    def locked(self):
        return Registry._Locked(self)

    def _node_path(self, node_id: str) -> str:
        return os.path.join(self.nodes_dir, f"{node_id}.json")

    def get(self, node_id: str) -> dict | None:
        try:
            with open(self._node_path(node_id), encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def all(self) -> list[dict]:
        out = []
        try:
            names = sorted(os.listdir(self.nodes_dir))
        except OSError:
            return out
        for n in names:
            if n.endswith(".json") and not n.startswith("."):
                rec = self.get(n[:-5])
                if rec:
                    out.append(rec)
        return out

    def put(self, rec: dict) -> None:
        atomic_write(self._node_path(rec["ID"]), json.dumps(rec, indent=2) + "\n", 0o644)

    def delete(self, node_id: str) -> None:
        try:
            os.unlink(self._node_path(node_id))
        except FileNotFoundError:
            pass

    @classmethod
    def effective_online(cls, rec: dict) -> bool:
        if not rec.get("Online"):
            return False
        seen = parse_time(rec.get("LastSeen"))
        return seen is not None and (now_utc() - seen).total_seconds() < cls.STALE_SECONDS

    def gc_locked(self) -> None:
        """Remove ephemeral nodes whose daemon died without logging out."""
        limit = env_float("TS_STANDIN_EPHEMERAL_GC_SECONDS", 60.0)
        for rec in self.all():
            if rec.get("Ephemeral") and not self.effective_online(rec):
                seen = parse_time(rec.get("LastSeen")) or parse_time(rec.get("Created"))
                if seen is None or (now_utc() - seen).total_seconds() > limit:
                    self.delete(rec["ID"])

    def _alloc_ips_locked(self) -> list[str]:
        import ipaddress
        meta_path = os.path.join(self.path, "tailnet.json")
        try:
            with open(meta_path, encoding="utf-8") as f:
                meta = json.load(f)
        except (OSError, ValueError):
            meta = {}
        used = {ip for r in self.all() for ip in r.get("TailscaleIPs", [])}
        n = int(meta.get("next_ip", 1))
        base = int(ipaddress.IPv4Address("100.64.0.0"))
        while True:
            v4 = str(ipaddress.IPv4Address(base + n))
            if v4 not in used and not v4.endswith(".0") and not v4.endswith(".255"):
                break
            n += 1
        v6 = str(ipaddress.IPv6Address(int(ipaddress.IPv6Address("fd7a:115c:a1e0::")) + base + n))
        meta["next_ip"] = n + 1
        atomic_write(meta_path, json.dumps(meta) + "\n", 0o644)
        return [v4, v6]

    def _unique_dns_locked(self, hostname: str, self_id: str | None, current: str = "") -> str:
        base = sanitize_hostname(hostname) or "localhost"
        taken = set()
        for r in self.all():
            if r["ID"] == self_id:
                continue
            taken.add(r.get("DNSName", "").split(".")[0])
        cur_label = current.split(".")[0] if current else ""
        if (cur_label and cur_label not in taken and re.fullmatch(re.escape(base) + r"(-\d+)?", cur_label)
                and (cur_label == base or base in taken)):
            return current
        label = base
        i = 0
        while label in taken:
            i += 1
            label = f"{base}-{i}"
        return f"{label}.{MAGIC_DNS_SUFFIX}."

    def register(self, *, machine_key: str, node_key: str, hostname: str, ephemeral: bool,
                 tags: list[str] | None, approved: bool, key_hash: str) -> dict:
        with self.locked():
            self.gc_locked()
            now = fmt_time(now_utc())
            rec = None
            if not ephemeral:
                for r in self.all():
                    if r.get("MachineKey") == machine_key and not r.get("Ephemeral"):
                        rec = r
                        break
            if rec is None:
                rec = {
                    "ID": new_stable_id(),
                    "Created": now,
                    "TailscaleIPs": self._alloc_ips_locked(),
                    "DNSName": "",
                }
            rec.update({
                "PublicKey": node_key,
                "MachineKey": machine_key,
                "HostName": hostname,
                "OS": "linux",
                "Ephemeral": ephemeral,
                "Tags": list(tags) if tags else None,
                "UserID": TAGGED_USER_ID if tags else USER_ID,
                "Online": False,
                "LoggedOut": False,
                "MachineAuthorized": approved,
                "LastSeen": now,
                "KeyExpiry": None if tags else fmt_time(now_utc() + _dt.timedelta(days=KEY_EXPIRY_DAYS)),
            })
            rec["DNSName"] = self._unique_dns_locked(hostname, rec["ID"], rec.get("DNSName", ""))
            self.put(rec)
            line = {"time": now, "node_id": rec["ID"], "hostname": hostname,
                    "key_id": key_hash, "ephemeral": ephemeral}
            with open(os.path.join(self.path, "logins.jsonl"), "a", encoding="utf-8") as f:
                f.write(json.dumps(line) + "\n")
            try:
                os.chmod(os.path.join(self.path, "logins.jsonl"), 0o666)
            except OSError:
                pass
            return rec

    def update(self, node_id: str, **fields) -> dict | None:
        with self.locked():
            rec = self.get(node_id)
            if rec is None:
                return None
            if "HostName" in fields and fields["HostName"] != rec.get("HostName"):
                rec["DNSName"] = self._unique_dns_locked(fields["HostName"], node_id, rec.get("DNSName", ""))
            rec.update(fields)
            self.put(rec)
            return rec

    def ssh_allowed(self) -> bool:
        """The tailnet policy grants Tailscale SSH (the SSH capability in the netmap) unless
        ``<dir>/policy.json`` says ``{"ssh": false}``."""
        try:
            with open(os.path.join(self.path, "policy.json"), encoding="utf-8") as f:
                return json.load(f).get("ssh", True) is not False
        except (OSError, ValueError, AttributeError):
            return True

    def remove(self, node_id: str) -> None:
        with self.locked():
            self.delete(node_id)


    # ------------------------------------------------ auth keys minted by the API stand-in
    # <dir>/keys/<sha256(key)[:12]>.json: {"id", "created", "expires", "reusable", "ephemeral",
    # "preauthorized", "tags", "description", "revoked", "uses"}. Keys not found there keep
    # the rules of the pasted test keys (by their text).

    def _key_path(self, key_hash: str) -> str:
        return os.path.join(self.path, "keys", f"{key_hash}.json")

    def put_key(self, key_hash: str, rec: dict) -> None:
        with self.locked():
            os.makedirs(os.path.join(self.path, "keys"), exist_ok=True)
            atomic_write(self._key_path(key_hash), json.dumps(rec, indent=2) + "\n", 0o644)

    def all_keys(self) -> dict[str, dict]:
        out = {}
        d = os.path.join(self.path, "keys")
        for n in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            if n.endswith(".json") and not n.startswith("."):
                try:
                    with open(os.path.join(d, n), encoding="utf-8") as f:
                        out[n[:-5]] = json.load(f)
                except (OSError, ValueError):
                    pass
        return out

    def consume_key(self, key: str):
        """(record, None) for a usable minted key (its use is counted), (None, error) for
        one that is revoked, expired or used up, (None, None) for a key the API never made."""
        with self.locked():
            path = self._key_path(key_id(key))
            try:
                with open(path, encoding="utf-8") as f:
                    rec = json.load(f)
            except (OSError, ValueError):
                return None, None
            exp = parse_time(rec.get("expires"))
            if rec.get("revoked") or (exp is not None and exp <= now_utc()) or (not rec.get("reusable") and rec.get("uses", 0) >= 1):
                return None, f"invalid key: API key {rec.get('id')} not valid"
            rec["uses"] = rec.get("uses", 0) + 1
            atomic_write(path, json.dumps(rec, indent=2) + "\n", 0o644)
            return rec, None


def user_profiles() -> dict:
    return {
        USER_ID: {"ID": USER_ID, "LoginName": USER_LOGIN, "DisplayName": USER_DISPLAY},
        TAGGED_USER_ID: {"ID": TAGGED_USER_ID, "LoginName": "tagged-devices", "DisplayName": "tagged-devices"},
    }


def os_hostname() -> str:
    return socket.gethostname()


# ---------------------------------------------------------------- protocol


def recv_line(sock: socket.socket) -> bytes:
    buf = bytearray()
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
        if b"\n" in chunk:
            break
    return bytes(buf)
