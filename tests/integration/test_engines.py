"""Every engine a devcontainer runs on, through the full cycle: ssh:// (paramiko and the system
ssh client), TLS (DOCKER_TLS_VERIFY/DOCKER_CERT_PATH and a context with TLS material), Podman.

Each engine is a real server the tests start (``tests/support/engines.py``), one per
session. The cycle: ``up`` with a key, a no-op ``up``, ``status``, ``down``, ``up``
without a key, ``restart``, ``state.backup``, ``state.restore``, ``up`` again; then
the key's hygiene on that engine: not in any output, in no event of the engine, in no
file of the container and, for ssh, in no ssh command line on the host side or the
engine side. Each cycle's time is printed at the end of the session.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from devc_tasks.core.hostname import short_host
from tests.conftest import REPO, RUN_ID, TEST_LABEL, Containers, TaskRun, _engine_required, logins
from tests.integration.test_up import new_key
from tests.support.certs import make_certs
from tests.support.engines import free_port, podman_service, sshd, tls_dockerd, with_home_ssh

pytestmark = pytest.mark.integration

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# Corporate machines, Nix and conda set both; requests would verify the engine against them.
BUNDLES = {"REQUESTS_CA_BUNDLE": CA_BUNDLE, "CURL_CA_BUNDLE": CA_BUNDLE}
CYCLE_TIMES: dict[str, float] = {}


@dataclass
class Way:
    """One way of naming one engine: selector flags, environment, a command prefix."""

    name: str
    client: Any  # the SDK client of that engine, for the test's own setup and checks
    image: str
    args: list[str] = field(default_factory=list)
    env: dict[str, str | None] = field(default_factory=dict)
    prefix: list[str] = field(default_factory=list)
    command_logs: list[Path] = field(default_factory=list)  # ssh command lines, host and engine side
    outputs: list[str] = field(default_factory=list)

    def inv(self, *args: str, env: dict[str, str | None] | None = None, stdin: str | None = None, cwd: Path | None = None) -> TaskRun:
        full = {k: v for k, v in os.environ.items() if k not in ("TAILSCALE_AUTHKEY", "TAILSCALE_HOSTNAME")}
        full["NO_COLOR"] = "1"
        for k, v in {**self.env, **(env or {})}.items():
            if v is None:
                full.pop(k, None)
            else:
                full[k] = v
        task, rest = args[0], list(args[1:])
        argv = [*self.prefix, sys.executable, "-m", "invoke", "--search-root", str(REPO), task, *self.args, *rest]
        proc = subprocess.run(argv, cwd=str(cwd or REPO), env=full, input=stdin or "", capture_output=True, text=True, timeout=180)
        self.outputs += [proc.stdout, proc.stderr]
        return TaskRun(proc)


@pytest.fixture(autouse=True)
def cycle_times(request):
    """Each cycle's time goes into its test report (``engine cycle``, set in tests/conftest.py):
    the report reaches the main process under pytest-xdist, which prints the times at the end."""
    before = dict(CYCLE_TIMES)
    yield CYCLE_TIMES
    for name, seconds in CYCLE_TIMES.items():
        if before.get(name) != seconds:
            request.node.user_properties.append(("engine cycle", (name, seconds)))


def _need(*tools: str) -> None:
    """Outside CI a missing server program skips with one reason; in CI it fails (.ci/provision.sh installs them)."""
    missing = [t for t in tools if shutil.which(t) is None and not os.path.exists(t)]
    if missing:
        if _engine_required():
            pytest.fail(f"{', '.join(missing)} required here (CI) but not installed; .ci/provision.sh installs them")
        pytest.skip(f"{', '.join(missing)} not installed; run .ci/provision.sh")


def _client(url: str) -> Any:
    import docker

    return docker.DockerClient(base_url=url)


# --- the engines, one per session ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def tls_engine(tmp_path_factory, images):
    _need("dockerd", "openssl")
    with tls_dockerd(tmp_path_factory.mktemp(f"tls-{RUN_ID}"), images[0]) as engine:
        client = _client(f"unix://{engine.sock}")
        yield engine, client
        client.close()


@pytest.fixture(scope="session")
def ssh_engine(tmp_path_factory, docker_client):
    _need("/usr/sbin/sshd", "ssh", "ssh-keygen", "unshare")
    with sshd(tmp_path_factory.mktemp(f"sshd-{RUN_ID}")) as engine:
        yield engine


@pytest.fixture(scope="session")
def podman_engine(tmp_path_factory, images):
    _need("podman", "catatonit")
    with podman_service(Path(f"/run/devc-podman-{RUN_ID}"), images[0]) as engine:
        client = _client(engine.url)
        yield engine, client
        client.close()


def _docker_config(tmp_path: Path, name: str, endpoint: str, *, current: bool = False) -> Path:
    """A Docker config folder with one context made by `docker context create`, without config.json unless ``current``."""
    cfg = tmp_path / f"docker-config-{uuid.uuid4().hex[:6]}"
    env = {"DOCKER_CONFIG": str(cfg), "PATH": os.environ["PATH"]}
    subprocess.run(["docker", "context", "create", name, "--docker", endpoint], env=env, check=True, capture_output=True)
    (cfg / "config.json").unlink(missing_ok=True)
    if current:
        (cfg / "config.json").write_text(json.dumps({"currentContext": name}))
    return cfg


def _no_paramiko(tmp_path: Path) -> str:
    """A PYTHONPATH where paramiko cannot be imported: a plain install (no `ssh` extra)."""
    blocker = tmp_path / "no-paramiko"
    (blocker / "paramiko").mkdir(parents=True, exist_ok=True)
    (blocker / "paramiko" / "__init__.py").write_text("raise ImportError(\"No module named 'paramiko' (a plain install, as the test makes it)\")\n")
    return os.pathsep.join([str(blocker), *filter(None, [os.environ.get("PYTHONPATH")])])


@pytest.fixture(params=["paramiko-host", "system-ssh-context-no-paramiko"])
def ssh_way(request, ssh_engine, docker_client, images, tmp_path) -> Way:
    prefix = with_home_ssh(ssh_engine.home_ssh, [])
    env: dict[str, str | None] = {"PATH": f"{ssh_engine.wrapper_dir}:{os.environ['PATH']}", "DOCKER_HOST": None, "DOCKER_CONTEXT": None}
    logs = [ssh_engine.client_log, ssh_engine.commands_log]
    if request.param == "paramiko-host":
        return Way("ssh (paramiko, --host)", docker_client, images[0], ["--host", ssh_engine.url], {**env, "DEVC_SSH_TRANSPORT": "paramiko"}, prefix, logs)
    # the user's ~/.ssh/config names the engine `devc-engine`; the context's endpoint is ssh://devc-engine
    cfg = _docker_config(tmp_path, "devc-ssh", "host=ssh://devc-engine")
    env.update({"DOCKER_CONFIG": str(cfg), "PYTHONPATH": _no_paramiko(tmp_path), "DEVC_SSH_TRANSPORT": None})
    return Way("ssh (system ssh, context, no paramiko)", docker_client, images[0], ["--context", "devc-ssh"], env, prefix, logs)


@pytest.fixture(params=["env", "context"])
def tls_way(request, tls_engine, tmp_path) -> Way:
    engine, client = tls_engine
    env: dict[str, str | None] = {**BUNDLES, "DOCKER_CONTEXT": None}
    if request.param == "env":
        env.update({"DOCKER_HOST": engine.url, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(engine.certs.folder)})
        return Way("tls (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH)", client, "", [], env)
    c = engine.certs
    cfg = _docker_config(tmp_path, "devc-tls", f"host={engine.url},ca={c.ca},cert={c.folder / 'cert.pem'},key={c.folder / 'key.pem'}")
    env.update({"DOCKER_CONFIG": str(cfg), "DOCKER_HOST": None, "DOCKER_TLS_VERIFY": None, "DOCKER_CERT_PATH": None})
    return Way("tls (context with TLS material)", client, "", ["--context", "devc-tls"], env)


@pytest.fixture(params=["host", "docker-host"])
def podman_way(request, podman_engine) -> Way:
    engine, client = podman_engine
    if request.param == "host":
        return Way("podman (--host)", client, "", ["--host", engine.url], {"DOCKER_HOST": None, "DOCKER_CONTEXT": None})
    return Way("podman (DOCKER_HOST)", client, "", [], {"DOCKER_HOST": engine.url, "DOCKER_CONTEXT": None})


@pytest.fixture
def engine_containers(images, control_dir) -> Iterator[Any]:
    made: list[Containers] = []

    def on(client: Any) -> Containers:
        c = Containers(client, images, control_dir)
        made.append(c)
        return c

    yield on
    for c in made:
        c.cleanup()


# --- the cycle ---------------------------------------------------------------------------------------------


def _events(client: Any, since: int, container_id: str) -> list[dict[str, Any]]:
    """The engine's events for the container; Podman's file event log may lag a moment behind: read again, a few times."""
    events: list[dict[str, Any]] = []
    for _ in range(10):
        events = list(client.events(since=since, until=int(time.time()) + 1, decode=True, filters={"container": container_id}))
        if events:
            break
        time.sleep(0.5)
    return events


def full_cycle(way: Way, containers: Containers, tmp_path: Path) -> None:
    c = containers.start()
    key = new_key()
    name = f"cyc-{uuid.uuid4().hex[:6]}"
    since = int(time.time()) - 1
    t0 = time.monotonic()

    first = way.inv("tailscale.up", "--container", c.name, "--hostname", name, "--json", env={"TAILSCALE_AUTHKEY": key})
    assert first.code == 0, first
    assert first.doc["node"]["backend_state"] == "Running" and "log in with the auth key" in first.doc["steps"]
    node_id = first.doc["node"]["node_id"]
    again = way.inv("tailscale.up", "--container", c.name, "--hostname", name, "--json", env={"TAILSCALE_AUTHKEY": key})
    assert again.code == 0 and again.doc["outcome"] == "already-connected" and again.doc["steps"] == [], again
    st = way.inv("tailscale.status", "--container", c.name, "--json")
    assert st.code == 0 and st.doc["backend_state"] == "Running" and st.doc["hostname"] == name, st
    down = way.inv("tailscale.down", "--container", c.name, "--json")
    assert down.code == 0 and down.doc["node"]["backend_state"] == "Stopped", down
    back = way.inv("tailscale.up", "--container", c.name, "--hostname", name, "--json")
    assert back.code == 0 and back.doc["node"]["backend_state"] == "Running", back
    restart = way.inv("tailscale.restart", "--container", c.name, "--hostname", name, "--json")
    assert restart.code == 0 and restart.doc["node"]["node_id"] == node_id, restart
    file = tmp_path / "state.tar"
    backup = way.inv("tailscale.state.backup", "--container", c.name, "--output", str(file), "--json")
    assert backup.code == 0 and backup.doc["has_identity"], backup
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    restore = way.inv("tailscale.state.restore", str(file), "--stop-daemon", "--container", c.name, "--json")
    assert restore.code == 0, restore
    after = way.inv("tailscale.up", "--container", c.name, "--hostname", name, "--json")
    assert after.code == 0 and after.doc["node"]["node_id"] == node_id, after
    CYCLE_TIMES[way.name] = time.monotonic() - t0
    assert len(logins(containers.control)) == 1  # one login: every later step reused the identity

    # the key's hygiene on this engine
    assert not [o for o in way.outputs if key in o]
    events = _events(way.client, since, c.id)
    assert events and key not in json.dumps(events)
    grep = c.exec_run(["grep", "-rlF", "--exclude-dir=proc", "--exclude-dir=sys", "--exclude-dir=dev", key, "/"], user="0")
    assert grep.exit_code == 1 and grep.output.decode().strip() == "", grep.output
    for log in way.command_logs:
        text = log.read_text() if log.exists() else ""
        assert key not in text, log


def test_ssh_full_cycle(ssh_way, ssh_engine, engine_containers, docker_client, tmp_path):
    before = {p: (p.read_text() if p.exists() else "") for p in ssh_way.command_logs}
    full_cycle(ssh_way, engine_containers(docker_client), tmp_path)
    engine_side = ssh_engine.commands_log.read_text()[len(before[ssh_engine.commands_log]) :]
    assert "docker system dial-stdio" in engine_side  # it did go through the tunnel
    host_side = ssh_engine.client_log.read_text()[len(before[ssh_engine.client_log]) :] if ssh_engine.client_log.exists() else ""
    if ssh_way.name.startswith("ssh (paramiko"):
        assert host_side == ""  # paramiko speaks ssh itself
    else:
        assert host_side.splitlines()[0] == "ssh -T -o ConnectTimeout=30 -- devc-engine docker system dial-stdio"


def test_ssh_hostname_names_the_engine(ssh_engine, docker_client, images, tmp_path, engine_containers):
    c = engine_containers(docker_client).start()
    env = {"PATH": f"{ssh_engine.wrapper_dir}:{os.environ['PATH']}", "DOCKER_HOST": None, "DOCKER_CONTEXT": None, "DEVC_SSH_TRANSPORT": "ssh"}
    way = Way("ssh", docker_client, images[0], ["--host", ssh_engine.url], env, with_home_ssh(ssh_engine.home_ssh, []))
    r = way.inv("tailscale.hostname", "--container", c.name, "--json")
    assert r.code == 0, r
    assert r.doc["host"] == short_host(docker_client.info()["Name"]) and r.doc["host_source"] == f"engine at {ssh_engine.url}"
    doctor = way.inv("tailscale.doctor", "--container", c.name, "--json")
    engine_row = next(ch for ch in doctor.doc["checks"] if ch["name"] == "engine")
    assert engine_row["status"] == "pass" and f"remote, at {ssh_engine.url}" in engine_row["seen"], doctor


@pytest.mark.parametrize(
    "transport, known_host, words",
    [
        ("ssh", False, "Host key verification failed"),
        ("ssh", True, "Permission denied"),
        ("paramiko", False, "not found in known_hosts"),
        ("paramiko", True, "authentication"),
    ],
    ids=["ssh-unknown-host", "ssh-no-key", "paramiko-unknown-host", "paramiko-no-key"],
)
def test_ssh_errors_are_clear(ssh_engine, docker_client, images, tmp_path, transport, known_host, words):
    """An unknown host key, no key for the server: exit 10 with ssh's own reason and what to check, no traceback."""
    home = tmp_path / "dot-ssh"
    home.mkdir(mode=0o700)
    if known_host:
        (home / "known_hosts").write_bytes((ssh_engine.home_ssh / "known_hosts").read_bytes())
    way = Way("ssh", docker_client, images[0], ["--host", ssh_engine.url], {"DEVC_SSH_TRANSPORT": transport, "DOCKER_HOST": None}, with_home_ssh(home, []))
    r = way.inv("tailscale.status", "--container", "x", "--json")
    assert r.code == 10, r
    err = r.doc["error"]
    assert err["kind"] == "engine_unreachable" and ssh_engine.url in err["message"] and "Traceback" not in r.stderr
    assert words.lower() in err["message"].lower(), r
    assert f"docker -H {ssh_engine.url} version" in err["fix"] and "known_hosts" in err["fix"], r


def test_tls_full_cycle(tls_way, engine_containers, images, tmp_path):
    full_cycle(tls_way, engine_containers(tls_way.client), tmp_path)


def test_tls_wrong_ca_and_missing_client_cert(tls_engine, tmp_path, images):
    engine, client = tls_engine
    other = make_certs(tmp_path / "other")  # a CA that did not sign the engine's certificate
    no_client = tmp_path / "ca-only"
    no_client.mkdir()
    (no_client / "ca.pem").write_bytes(engine.certs.ca.read_bytes())
    for folder, words in ((other.folder, "certificate verify failed"), (no_client, "")):
        way = Way("tls", client, "", [], {**BUNDLES, "DOCKER_HOST": engine.url, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(folder), "DOCKER_CONTEXT": None})
        r = way.inv("tailscale.status", "--container", "x", "--json")
        assert r.code == 10, r
        err = r.doc["error"]
        assert err["kind"] == "engine_unreachable" and engine.url in err["message"] and words in err["message"], r
        assert "TLS handshake" in err["fix"] and "DOCKER_CERT_PATH" in err["fix"] and "Traceback" not in r.stderr


def test_tls_with_host_flag_and_tls_variables(tls_engine, engine_containers):
    """`--host tcp://…` takes DOCKER_TLS_VERIFY/DOCKER_CERT_PATH as the docker CLI's -H does."""
    engine, client = tls_engine
    c = engine_containers(client).start()
    way = Way("tls-host", client, "", ["--host", engine.url], {**BUNDLES, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(engine.certs.folder), "DOCKER_HOST": None})
    r = way.inv("tailscale.status", "--container", c.name, "--json")
    assert r.code == 5 and r.doc["daemon_running"] is False, r  # reached it; tailscaled not started yet


def test_tls_engine_ca_wins_over_the_ca_bundle_variables(tls_engine):
    """With REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE set, the docker CLI trusts DOCKER_CERT_PATH/ca.pem: so must we."""
    engine, _ = tls_engine
    env = {**os.environ, **BUNDLES, "DOCKER_HOST": engine.url, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(engine.certs.folder)}
    env.pop("DOCKER_CONTEXT", None)
    cli = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], env=env, capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    from devc_tasks.shell.engine import open_engine

    assert open_engine(environ=env).client.version()["Version"] == cli.stdout.strip()


def test_current_context_is_named_everywhere(tls_engine, tmp_path, engine_containers, images):
    """No DOCKER_HOST, no DOCKER_CONTEXT: config.json's current context is used, and named, in doctor,
    hostname and errors (issue 14 item 7)."""
    engine, client = tls_engine
    c = engine_containers(client).start()
    certs = engine.certs
    cfg = _docker_config(tmp_path, "devc-remote", f"host={engine.url},ca={certs.ca},cert={certs.folder / 'cert.pem'},key={certs.folder / 'key.pem'}", current=True)
    way = Way("ctx", client, "", [], {**BUNDLES, "DOCKER_CONFIG": str(cfg), "DOCKER_HOST": None, "DOCKER_CONTEXT": None})
    doctor = way.inv("tailscale.doctor", "--container", c.name, "--json")
    row = next(ch for ch in doctor.doc["checks"] if ch["name"] == "engine")
    assert row["status"] == "pass" and row["seen"].endswith(f'remote, context "devc-remote" at {engine.url}'), doctor
    host = way.inv("tailscale.hostname", "--container", c.name, "--json")
    assert host.code == 0 and host.doc["host"] == short_host(client.info()["Name"]), host
    assert host.doc["host_source"] == f'engine at context "devc-remote" ({engine.url})'
    dead = f"tcp://127.0.0.1:{free_port()}"
    cfg_dead = _docker_config(tmp_path, "dead", f"host={dead}", current=True)
    r = way.inv("tailscale.status", "--container", c.name, "--json", env={"DOCKER_CONFIG": str(cfg_dead)})
    assert r.code == 10 and f'context "dead" ({dead})' in r.doc["error"]["message"], r
    assert "default socket" not in r.stdout + r.stderr


def test_podman_full_cycle(podman_way, engine_containers, tmp_path):
    full_cycle(podman_way, engine_containers(podman_way.client), tmp_path)


@pytest.mark.parametrize("kind", ["image", "compose"])
def test_podman_devcontainer_cli_discovery(podman_engine, images, control_dir, tmp_path, kind):
    """`devcontainer up --docker-path podman` (compose through Compose v2 on Podman's socket); found by its labels."""
    engine, client = podman_engine
    ws = tmp_path / f"podws{kind}{RUN_ID}"
    (ws / ".devcontainer").mkdir(parents=True)
    run_args = ["--network=none", "--device=/dev/net/tun", "--cap-add=NET_ADMIN", "--cap-add=NET_RAW", f"--label={TEST_LABEL}={RUN_ID}", f"--volume={control_dir}:/srv/tailscale-control"]
    if kind == "image":
        config: dict[str, Any] = {"name": "Pod Project", "image": images[0], "runArgs": run_args}
    else:
        config = {"name": "Pod Project", "dockerComposeFile": ["compose.yml"], "service": "dev", "workspaceFolder": "/"}
        (ws / ".devcontainer" / "compose.yml").write_text(
            f"""services:
  dev:
    image: {images[0]}
    command: ["sleep", "infinity"]
    network_mode: none
    init: true
    devices: ["/dev/net/tun:/dev/net/tun"]
    cap_add: [NET_ADMIN, NET_RAW]
    labels: {{"{TEST_LABEL}": "{RUN_ID}"}}
    volumes: ["tailscale-state:/var/lib/tailscale", "{control_dir}:/srv/tailscale-control"]
volumes:
  tailscale-state: {{labels: {{"{TEST_LABEL}": "{RUN_ID}"}}}}
"""
        )
    (ws / ".devcontainer" / "devcontainer.json").write_text(json.dumps(config))
    compose_v2 = "/usr/libexec/docker/cli-plugins/docker-compose"  # Podman 4.3 has no `podman compose`
    env = {**os.environ, "DOCKER_HOST": engine.url}  # compose talks to Podman's socket
    up = subprocess.run(
        ["devcontainer", "up", "--workspace-folder", str(ws), "--docker-path", "podman", "--docker-compose-path", compose_v2],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        cid = json.loads(up.stdout.strip().splitlines()[-1])["containerId"]
        way = Way("podman-cli", client, "", ["--host", engine.url], {"DOCKER_HOST": None, "DOCKER_CONTEXT": None})
        r = way.inv("tailscale.up", "--json", cwd=ws / ".devcontainer", env={"TAILSCALE_AUTHKEY": new_key()})
        assert r.code == 0, r
        assert r.doc["node"]["hostname"].startswith("pod-project-devc-") and r.doc["container"] == client.containers.get(cid).name, r
        st = way.inv("tailscale.status", "--json", cwd=ws)
        assert st.code == 0 and st.doc["backend_state"] == "Running", st
    finally:
        if kind == "compose":
            subprocess.run([compose_v2, "--project-name", f"{ws.name}_devcontainer", "-f", str(ws / ".devcontainer" / "compose.yml"), "down", "-v"], env=env, capture_output=True)
        subprocess.run(["podman", "rm", "-f", "--filter", f"label=devcontainer.local_folder={ws}"], capture_output=True)


def test_engine_restarted_between_two_commands(images, control_dir, tmp_path_factory):
    """The Engine restarts (a host reboot, a package upgrade) between two commands: while it is down a
    command fails cleanly (exit 10, no traceback); once it is back the container is stopped (exit 13,
    with the fix); started again, ``up`` without a key reconnects the same node, with no second login."""
    _need("dockerd")
    import docker

    from tests.support.engines import PrivateEngine, move_image

    engine = PrivateEngine(tmp_path_factory.mktemp(f"restart-{RUN_ID}"))
    engine.start()
    client = None
    try:
        move_image(images[0], ["docker", "-H", engine.url, "load", "-q"])
        client = docker.DockerClient(base_url=engine.url)
        c = Containers(client, images, control_dir).start()
        way = Way("private engine", client, images[0], ["--host", engine.url], {"DOCKER_HOST": None, "DOCKER_CONTEXT": None})
        first = way.inv("tailscale.up", "--container", c.name, "--hostname", "rebooted", "--json", env={"TAILSCALE_AUTHKEY": new_key()})
        assert first.code == 0 and first.doc["node"]["backend_state"] == "Running", first
        node_id = first.doc["node"]["node_id"]

        engine.stop()
        down = way.inv("tailscale.status", "--container", c.name, "--json")
        assert down.code == 10 and down.doc["error"]["kind"] == "engine_unreachable" and "Traceback" not in down.stderr, down

        engine.start()
        stopped = way.inv("tailscale.status", "--container", c.name, "--json")
        assert stopped.code == 13 and "Traceback" not in stopped.stderr, stopped
        client.containers.get(c.id).start()
        back = way.inv("tailscale.up", "--container", c.name, "--hostname", "rebooted", "--json")
        assert back.code == 0 and back.doc["node"]["backend_state"] == "Running", back
        assert back.doc["node"]["node_id"] == node_id
        assert len(logins(control_dir)) == 1  # the identity survived the engine's restart
    finally:
        if client is not None:
            for ctr in client.containers.list(all=True, filters={"label": f"{TEST_LABEL}={RUN_ID}"}):
                ctr.remove(force=True, v=True)
            client.close()
        engine.close()
