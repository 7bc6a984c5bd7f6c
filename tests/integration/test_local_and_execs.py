"""`--local` (the same logic run inside the container) and the exec budget of the hot paths."""

from __future__ import annotations

import sysconfig
import time

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
