"""Which engine, named how: the docker CLI's order of --host, --context, DOCKER_HOST,
DOCKER_CONTEXT, the current context and the default socket; the context store on disk."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field

import pytest

from devc_tasks.core.endpoint import ContextMeta, Endpoint, TLSFiles, choose_endpoint, default_tls
from devc_tasks.core.errors import UsageError
from devc_tasks.shell.contexts import ContextStore, config_dir, tls_problem
from devc_tasks.shell.engine import ssh_transport

pytestmark = pytest.mark.unit

SOCK = "unix:///var/run/docker.sock"


@dataclass
class FakeStore:
    now: str | None = None
    metas: dict[str, ContextMeta] = field(default_factory=dict)

    def current(self):
        return self.now

    def get(self, name):
        return self.metas.get(name)

    def names(self):
        return list(self.metas)


REMOTE = ContextMeta(name="box", host="tcp://10.0.0.5:2376", tls=TLSFiles(ca="/c/ca.pem", cert="/c/cert.pem", key="/c/key.pem"))
SSH = ContextMeta(name="build", host="ssh://me@build")


@pytest.mark.parametrize(
    "host, context, environ, store, expected",
    [
        (None, None, {}, FakeStore(), Endpoint(url=SOCK)),
        ("tcp://1.2.3.4:2375", None, {"DOCKER_CONTEXT": "box"}, FakeStore("box", {"box": REMOTE}), Endpoint(url="tcp://1.2.3.4:2375")),
        (None, "box", {"DOCKER_HOST": "tcp://9.9.9.9:2375"}, FakeStore(None, {"box": REMOTE}), Endpoint(url=REMOTE.host, context="box", tls=REMOTE.tls)),
        (None, None, {"DOCKER_HOST": "tcp://9.9.9.9:2375", "DOCKER_CONTEXT": "box"}, FakeStore("box", {"box": REMOTE}), Endpoint(url="tcp://9.9.9.9:2375")),
        (None, None, {"DOCKER_CONTEXT": "build"}, FakeStore("box", {"box": REMOTE, "build": SSH}), Endpoint(url=SSH.host, context="build")),
        (None, None, {}, FakeStore("box", {"box": REMOTE}), Endpoint(url=REMOTE.host, context="box", tls=REMOTE.tls)),
        (None, "default", {"DOCKER_HOST": "unix:///run/x.sock"}, FakeStore("box", {"box": REMOTE}), Endpoint(url="unix:///run/x.sock", context="default")),
        (None, None, {"DOCKER_CONTEXT": "default"}, FakeStore("box", {"box": REMOTE}), Endpoint(url=SOCK, context="default")),
    ],
    ids=["nothing-default-socket", "host-beats-all", "context-flag-beats-docker-host", "docker-host-beats-docker-context",
         "docker-context-beats-current", "current-context", "default-context-is-docker-host", "default-context-by-env"],
)
def test_choose_endpoint(host, context, environ, store, expected):
    assert choose_endpoint(host=host, context=context, environ=environ, contexts=store, exists=lambda p: False) == expected


@pytest.mark.parametrize(
    "host, context, environ, words",
    [
        ("tcp://x:1", "box", {}, ["--host and --context"]),
        (None, "nope", {}, ["unknown Docker context 'nope'", "default, box"]),
        (None, None, {"DOCKER_CONTEXT": "nope"}, ["unknown Docker context 'nope'"]),
    ],
    ids=["both", "unknown-flag", "unknown-env-no-silent-fallback"],
)
def test_choose_endpoint_errors(host, context, environ, words):
    with pytest.raises(UsageError) as e:
        choose_endpoint(host=host, context=context, environ=environ, contexts=FakeStore(None, {"box": REMOTE}), exists=lambda p: False)
    for w in words:
        assert w in str(e.value)


@pytest.mark.parametrize(
    "endpoint, label, local",
    [
        (Endpoint(url=SOCK), SOCK, True),
        (Endpoint(url="tcp://10.0.0.5:2376", context="box"), 'context "box" (tcp://10.0.0.5:2376)', False),
        (Endpoint(url="ssh://me@build"), "ssh://me@build", False),
    ],
    ids=["socket", "context", "ssh-url"],
)
def test_label_names_the_engine_as_the_cli_does(endpoint, label, local):
    assert endpoint.label == label and endpoint.local is local


@pytest.mark.parametrize(
    "environ, present, expected",
    [
        ({}, {"/c/ca.pem"}, None),
        ({"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "/c"}, {"/c/ca.pem", "/c/cert.pem", "/c/key.pem"}, TLSFiles(ca="/c/ca.pem", cert="/c/cert.pem", key="/c/key.pem")),
        ({"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "/c"}, {"/c/ca.pem"}, TLSFiles(ca="/c/ca.pem")),
        ({"DOCKER_TLS_VERIFY": "", "DOCKER_CERT_PATH": "/c"}, {"/c/ca.pem"}, None),
        ({"DOCKER_TLS": "1", "DOCKER_CERT_PATH": "/c"}, set(), TLSFiles(verify=False)),
        ({"DOCKER_TLS_VERIFY": "1", "HOME": "/h"}, {"/h/.docker/ca.pem"}, TLSFiles(ca="/h/.docker/ca.pem")),
        ({"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "/nope"}, set(), TLSFiles(ca="/nope/ca.pem")),
    ],
    ids=["no-tls", "verify-all-files", "missing-client-files-dropped", "empty-verify-is-off", "tls-without-verify", "cert-path-defaults-to-home", "verify-keeps-a-missing-ca"],
)
def test_default_tls(environ, present, expected):
    assert default_tls(environ, exists=lambda p: p in present) == expected


def test_tls_only_for_tcp():
    env = {"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "/c"}
    assert choose_endpoint(host="ssh://me@box", context=None, environ=env, contexts=FakeStore(), exists=lambda p: True).tls is None
    assert choose_endpoint(host="tcp://box:2376", context=None, environ=env, contexts=FakeStore(), exists=lambda p: True).tls == TLSFiles(
        ca="/c/ca.pem", cert="/c/cert.pem", key="/c/key.pem"
    )


@pytest.mark.parametrize(
    "environ, installed, expected",
    [({}, True, "paramiko"), ({}, False, "ssh"), ({"DEVC_SSH_TRANSPORT": "ssh"}, True, "ssh"), ({"DEVC_SSH_TRANSPORT": "paramiko"}, False, "paramiko")],
    ids=["auto-paramiko", "plain-install-system-ssh", "forced-ssh", "forced-paramiko"],
)
def test_ssh_transport(environ, installed, expected):
    assert ssh_transport(environ, installed) == expected


def test_ssh_transport_rejects_unknown():
    with pytest.raises(UsageError, match="DEVC_SSH_TRANSPORT"):
        ssh_transport({"DEVC_SSH_TRANSPORT": "telnet"}, True)


def test_config_dir():
    assert str(config_dir({"DOCKER_CONFIG": "/x/cfg", "HOME": "/h"})) == "/x/cfg"
    assert str(config_dir({"HOME": "/h"})) == "/h/.docker"


def test_store_reads_what_docker_context_create_writes_even_without_config_json(tmp_path):
    """`docker context create` with TLS material; no config.json in the folder (issue 14 item 7)."""
    from tests.support.certs import make_certs

    make_certs(tmp_path)
    cfg = tmp_path / "cfg"
    env = {"DOCKER_CONFIG": str(cfg), "PATH": "/usr/local/bin:/usr/bin:/bin"}
    tls = f"host=tcp://127.0.0.1:2376,ca={tmp_path}/ca.pem,cert={tmp_path}/cert.pem,key={tmp_path}/key.pem"
    r = subprocess.run(["docker", "context", "create", "tlsbox", "--docker", tls], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    subprocess.run(["docker", "context", "create", "plain", "--docker", "host=ssh://me@box"], env=env, check=True, capture_output=True)
    (cfg / "config.json").unlink(missing_ok=True)
    store = ContextStore(cfg)
    assert sorted(store.names()) == ["plain", "tlsbox"]
    meta = store.get("tlsbox")
    assert meta is not None and meta.host == "tcp://127.0.0.1:2376"
    assert meta.tls is not None and meta.tls.verify and meta.tls.ca and meta.tls.ca.endswith("/docker/ca.pem")
    assert open(meta.tls.cert).read() == (tmp_path / "cert.pem").read_text()
    assert store.get("plain") == ContextMeta(name="plain", host="ssh://me@box")
    assert store.current() is None
    (cfg / "config.json").write_text(json.dumps({"currentContext": "plain"}))
    assert store.current() == "plain"
    assert store.get("nope") is None


@pytest.mark.parametrize("doc", [{"Name": "odd", "Endpoints": [1]}, {"Name": "odd", "Endpoints": {"docker": "tcp://x"}}, {"Name": "odd", "Endpoints": {"docker": {"Host": 5}}}, ["odd"]])
def test_malformed_context_meta_is_a_clear_error_not_a_traceback(tmp_path, doc):
    """A hand-edited meta.json with the wrong shapes: the named context is a usage error naming the file;
    other contexts still list (a stray bad file does not break an unrelated choice)."""
    import hashlib

    for name, body in (("odd", doc), ("good", {"Name": "good", "Endpoints": {"docker": {"Host": "ssh://me@good"}}})):
        folder = tmp_path / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
        folder.mkdir(parents=True)
        (folder / "meta.json").write_text(json.dumps(body))
    store = ContextStore(tmp_path)
    assert store.names() == ["good"]
    assert store.get("good") == ContextMeta(name="good", host="ssh://me@good")
    with pytest.raises(UsageError) as e:
        choose_endpoint(host=None, context="nope", environ={}, contexts=store, exists=lambda p: False)
    assert "good" in str(e.value.fix)
    if isinstance(doc, dict):
        with pytest.raises(UsageError) as e:
            store.get("odd")
        assert "meta.json" in str(e.value)


@pytest.mark.parametrize(
    "url, words",
    [
        ("npipe:////./pipe/docker_engine", "Windows"),
        ("fd://", "fd://"),
        ("http://localhost:2375", "tcp://localhost:2375"),
        ("ftp://x", "ftp"),
        ("localhost:2375", "tcp://localhost:2375"),
        ("ssh://", "no host"),
        ("ssh://me@", "no host"),
        ("ssh://me@box:abc", "port"),
        ("ssh://me@box/var/run/docker.sock", "path"),
        ("ssh://me:hunter2@box", "password"),
    ],
)
def test_engine_urls_the_docker_cli_rejects_are_usage_errors(url, words):
    """As `docker -H URL` (cli/connhelper/ssh ParseURL, opts.ParseHost): a usage error before anything is
    contacted (was "is the engine running?", exit 10; an empty ssh:// host dialled 127.0.0.1:22), and a
    password in the URL is never echoed back."""
    for kwargs in ({"host": url, "environ": {}}, {"host": None, "environ": {"DOCKER_HOST": url}}):
        with pytest.raises(UsageError) as e:
            choose_endpoint(context=None, contexts=FakeStore(), exists=lambda p: False, **kwargs)
        text = f"{e.value} {e.value.fix}"
        assert words in text
        assert "hunter2" not in text
    with pytest.raises(UsageError):
        choose_endpoint(host=None, context="odd", environ={}, contexts=FakeStore(metas={"odd": ContextMeta(name="odd", host=url)}), exists=lambda p: False)


@pytest.mark.parametrize(
    "files, unreadable, words",
    [
        (TLSFiles(ca="/c/ca.pem", cert="/c/cert.pem", key="/c/key.pem"), {}, None),
        (TLSFiles(verify=False), {}, None),
        (TLSFiles(ca="/nope/ca.pem"), {"/nope/ca.pem": "No such file or directory"}, "/nope/ca.pem: No such file or directory"),
        (TLSFiles(ca="/c/ca.pem", cert="/c/cert.pem"), {}, "/c/cert.pem without a client key"),
        (TLSFiles(ca="/c/ca.pem", key="/c/key.pem"), {}, "/c/key.pem without a client certificate"),
        (TLSFiles(ca="/c/ca.pem", cert="/c/cert.pem", key="/c/key.pem"), {"/c/key.pem": "Permission denied"}, "/c/key.pem: Permission denied"),
    ],
    ids=["all-readable", "tls-no-verify-no-files", "missing-ca", "cert-without-key", "key-without-cert", "unreadable-key"],
)
def test_tls_problem_names_the_file(files, unreadable, words):
    """As the docker CLI ("could not read CA certificate ...", "both client certificate and client key must be
    provided"): a missing or unreadable TLS file is named, not reported as a failed handshake against
    the system CAs or with the client certificate silently dropped."""
    problem = tls_problem(files, unreadable=lambda p: unreadable.get(p))
    assert problem is None if words is None else words in str(problem)


def test_ssh_gets_no_secret_from_our_environment():
    """The system ssh (and any ProxyCommand, LocalCommand or SendEnv of the user's ~/.ssh/config) runs with
    our environment: the auth key and API secrets in it must not travel with it."""
    from devc_tasks.shell.sshconn import ssh_env

    env = ssh_env({"HOME": "/h", "SSH_AUTH_SOCK": "/a", "TAILSCALE_AUTHKEY": "tskey-auth-x", "TAILSCALE_OAUTH_CLIENT_SECRET": "tskey-client-y",
                   "TAILSCALE_API_KEY": "tskey-api-z", "LD_LIBRARY_PATH": "/x"})
    assert env == {"HOME": "/h", "SSH_AUTH_SOCK": "/a"}


@pytest.mark.parametrize(
    "url, expected",
    [
        ("ssh://foo", ["foo"]),
        ("ssh://me@foo:10022", ["-l", "me", "-p", "10022", "foo"]),
        ("ssh://me@[::1]:2222", ["-l", "me", "-p", "2222", "::1"]),
        ("ssh://first.last%40corp@foo", ["-l", "first.last@corp", "foo"]),
        ("ssh://-oProxyCommand=x@-evil", ["-l", "-oProxyCommand=x", "-evil"]),
    ],
    ids=["host", "user-port", "ipv6", "percent-encoded-user", "dash-user-and-host-stay-arguments"],
)
def test_ssh_argv_is_the_docker_clis(url, expected):
    """cli/connhelper/ssh: `-l USER -p PORT -- HOST`, the user URL-decoded (Go's Username()); a leading dash
    cannot become an ssh option (the value follows -l; the host follows --)."""
    from devc_tasks.shell.sshconn import ssh_argv

    argv = ssh_argv(url)
    assert argv[:4] == ["ssh", "-T", "-o", "ConnectTimeout=30"] and argv[-3:] == ["docker", "system", "dial-stdio"]
    body = argv[4:-3]
    assert [a for a in body if a != "--"] == expected and body[-2] == "--"


def test_tls_without_verify_prints_no_warning_per_request(tmp_path):
    """DOCKER_TLS=1 (encrypt, do not verify) is the user's explicit choice: the docker CLI says nothing;
    urllib3's InsecureRequestWarning on stderr for every API call is noise (and was printed twice per command)."""
    import socket
    import ssl
    import sys
    import textwrap
    import threading

    from tests.support.certs import make_certs

    certs = make_certs(tmp_path / "c")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs.server_cert, certs.server_key)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]

    def serve():
        body = b'{"ApiVersion":"1.41"}'
        while True:
            try:
                s, _ = srv.accept()
                t = ctx.wrap_socket(s, server_side=True)
                t.recv(4096)
                t.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                t.close()
            except OSError:
                return

    threading.Thread(target=serve, daemon=True).start()
    code = textwrap.dedent(f"""
        from devc_tasks.shell.engine import open_engine
        e = open_engine(host="tcp://127.0.0.1:{port}", environ={{"DOCKER_TLS": "1", "DOCKER_CERT_PATH": "{certs.folder}", "HOME": "/nonexistent"}})
        e.client.api.version()
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    srv.close()
    assert r.stdout.strip() == "ok", r.stderr
    assert "InsecureRequestWarning" not in r.stderr


@pytest.mark.parametrize(
    "url, rel",
    [("unix://run/docker.sock", "run/docker.sock"), ("unix://./d.sock", "./d.sock"), ("unix:///var/run/docker.sock", None), ("unix://", None), ("tcp://h:2375", None), ("ssh://u@h", None)],
)
def test_relative_socket(url, rel):
    from devc_tasks.core.endpoint import relative_socket

    assert relative_socket(url) == rel
