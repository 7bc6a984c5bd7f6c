"""`--local` (the same logic run inside the container) and the exec budget of the hot paths."""

from __future__ import annotations

import re
import socket
import sysconfig
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, logins
from tests.integration.test_up import new_key, up
from tests.support.contract import document

pytestmark = pytest.mark.integration


def _execs(docker_client, container, since: int) -> list[str]:
    events = docker_client.events(since=since, until=int(time.time()) + 1, decode=True, filters={"container": container.id})
    return [e["Action"] for e in events if e.get("Action", "").startswith("exec_create")]


def test_noop_up_and_status_cost_one_exec_each(inv, containers, docker_client):
    c = containers.start()
    assert up(inv, c, "--hostname", "budget", key=new_key()).code == 0
    time.sleep(1.1)  # event timestamps have one-second resolution
    since = int(time.time())
    r = up(inv, c, "--hostname", "budget", key=new_key())
    assert r.code == 0 and r.doc["outcome"] == "already-connected"
    assert len(_execs(docker_client, c, since)) == 1
    time.sleep(1.1)
    since = int(time.time())
    assert inv("tailscale.status", "--container", c.name, "--json").code == 0
    assert len(_execs(docker_client, c, since)) == 1


class RecordingProxy:
    """A unix socket in front of the Engine's that passes every byte through and records
    the request line of each HTTP request a client sends (the Engine calls a command makes)."""

    REQUEST = re.compile(rb"(GET|HEAD|POST|PUT|DELETE) (/\S*) HTTP/1\.[01]\r\n")

    def __init__(self, engine: str = "/var/run/docker.sock") -> None:
        self.engine = engine
        self.path = Path(tempfile.mkdtemp(prefix="devc-proxy-", dir="/tmp")) / "docker.sock"
        self.requests: list[str] = []
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(str(self.path))
        self.server.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.engine)
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, record: bool) -> None:
        try:
            while data := src.recv(65536):
                if record:
                    for m in self.REQUEST.finditer(data):
                        path = re.sub(r"^/v[0-9.]+/", "/", m.group(2).decode()).split("?")[0]
                        self.requests.append(f"{m.group(1).decode()} {path}")
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def engine_proxy() -> Iterator[RecordingProxy]:
    proxy = RecordingProxy()
    yield proxy
    proxy.close()


def test_status_makes_the_fewest_engine_calls(inv, containers, engine_proxy):
    """`status --container C`: the API version (it also proves the Engine answers: no extra
    ping), the container, and the exec (create, start, its exit code). The floor script
    (`docker.from_env()`, `containers.get`, `exec_run`) makes the same five."""
    c = containers.start()
    assert up(inv, c, "--hostname", "calls", key=new_key()).code == 0
    engine_proxy.requests.clear()
    r = inv("tailscale.status", "--container", c.name, "--json", env={"DOCKER_HOST": f"unix://{engine_proxy.path}"})
    assert r.code == 0, r
    assert [re.sub(r"/[0-9a-f]{64}/", "/ID/", q) for q in engine_proxy.requests] == [
        "GET /version",
        f"GET /containers/{c.name}/json",
        "POST /containers/ID/exec",
        "POST /exec/ID/start",
        "GET /exec/ID/json",
    ]


CALLS = "/tmp/devc-ts-calls"


def _cli_calls(c) -> list[str]:
    """The tailscale CLI calls since the last look (the stand-in logs them: TS_STANDIN_CALL_LOG)."""
    r = c.exec_run(["sh", "-c", f"cat {CALLS} 2>/dev/null; rm -f {CALLS}"])
    return r.output.decode().splitlines()


def test_each_task_makes_only_the_cli_calls_it_needs(inv, containers):
    """A CLI call is a process start in the container: `status` makes one (`status --json`),
    a no-op `up` adds `debug prefs` (it compares the settings), `doctor` also asks the CLI's
    version. None of them asks for what it does not use."""
    scope = f"devc-calls-test={uuid.uuid4().hex[:8]}"
    key, _, value = scope.partition("=")
    c = containers.start(env={"TS_STANDIN_CALL_LOG": CALLS}, labels={"devcontainer.local_folder": f"/tmp/{value}", key: value})
    assert up(inv, c, "--hostname", "calls", key=new_key()).code == 0
    calls = _cli_calls(c)
    # after the login, in the same exec: the node's status (its settings are what `up` set);
    # the watcher beside `up` asks with --peers=false
    after = [a for a in calls[next(i for i, a in enumerate(calls) if a.startswith("up ")) + 1 :] if a != "status --json --peers=false"]
    assert after == ["status --json"], calls
    assert inv("tailscale.status", "--container", c.name, "--json").code == 0
    assert _cli_calls(c) == ["status --json"]
    r = up(inv, c, "--hostname", "calls", key=new_key())
    assert r.code == 0 and r.doc["outcome"] == "already-connected"
    assert sorted(_cli_calls(c)) == ["debug prefs", "status --json"]  # the two run at once
    r = inv("tailscale.status", "--all", "--label", scope, "--json")
    assert r.code == 0 and _cli_calls(c) == ["status --json"]
    inv("tailscale.doctor", "--container", c.name, "--json")
    assert sorted(_cli_calls(c)) == ["debug prefs", "status --json", "version"]


def test_local_runs_the_same_logic_inside_the_container(inv, containers, docker_client):
    """devc-tasks inside the container (as from a postStartCommand): the project and its
    pure-Python dependencies are mounted read-only; the key comes from the container's env."""
    site = sysconfig.get_paths()["purelib"]
    key = new_key()
    c = containers.start(
        env={"TAILSCALE_AUTHKEY": key, "PYTHONPATH": "/opt/devc-tasks:/opt/site", "NO_COLOR": "1"},
        binds={str(REPO): "/opt/devc-tasks", site: "/opt/site"},
    )
    run = c.exec_run(
        ["python3", "-m", "invoke", "--search-root", "/opt/devc-tasks", "tailscale.up", "--local", "--hostname", "inside", "--json"],
        demux=True,
        workdir="/tmp",
    )
    out, err = (run.output[0] or b"").decode(), (run.output[1] or b"").decode()
    assert run.exit_code == 0, (out, err)
    assert document(out)["node"]["backend_state"] == "Running" and key not in out + err
    assert len(logins(containers.control)) == 1
    # seen from the host through the Engine: the same node
    st = inv("tailscale.status", "--container", c.name, "--json")
    assert st.code == 0 and st.doc["hostname"] == "inside"
    # --local without a host name to derive from says how to give one
    run = c.exec_run(["python3", "-m", "invoke", "--search-root", "/opt/devc-tasks", "tailscale.hostname", "--local", "--json"], demux=True)
    assert run.exit_code == 2 and b"DEVC_HOST_NAME" in (run.output[0] or b"")
    assert document((run.output[0] or b"").decode())["error"]["kind"] == "usage"
