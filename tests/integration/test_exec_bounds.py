"""Every exec has an overall deadline and an output cap, and nothing devc-tasks starts
in the container inherits an auth key from the container's environment."""

from __future__ import annotations

import threading

import pytest

from devc_tasks.core.errors import TailscaleFailed, TimedOut
from devc_tasks.shell import executors
from devc_tasks.shell.executors import DockerExecutor
from tests.integration.test_up import new_key, up

pytestmark = pytest.mark.integration

TRICKLE = "i=0; while [ $i -lt 20 ]; do printf x; sleep 0.6; i=$((i + 1)); done"


def test_a_command_that_keeps_printing_still_times_out(containers, docker_client):
    """A byte every 0.6 s reset the old idle timeout forever; the deadline is overall."""
    c = containers.start()
    ex = DockerExecutor(client=docker_client, container_id=c.id)
    with pytest.raises(TimedOut, match="did not finish within 2 s"):
        ex.run(["sh", "-c", TRICKLE], timeout=2)


def test_output_is_capped(containers, docker_client, monkeypatch):
    monkeypatch.setattr(executors, "MAX_OUTPUT", 1024 * 1024)
    c = containers.start()
    ex = DockerExecutor(client=docker_client, container_id=c.id)
    with pytest.raises(TailscaleFailed, match="printed more than 1 MiB"):
        ex.run(["sh", "-c", "head -c 5000000 /dev/zero"], timeout=60)
    small = ex.run(["sh", "-c", "head -c 1000 /dev/zero | tr '\\0' x"], timeout=60)
    assert small.exit_code == 0 and small.stdout == "x" * 1000


SCAN = r"""
import os, sys
keys = [k.encode() for k in sys.argv[1:]]
for pid in os.listdir("/proc"):
    if not pid.isdigit() or pid in ("1", str(os.getpid())):
        continue
    try:
        env = open(f"/proc/{pid}/environ", "rb").read()
        cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode().strip()
    except OSError:
        continue
    if cmd == "sleep infinity":  # the container's own command: it has the container's env
        continue
    if any(k in env for k in keys):
        print(pid, cmd)
"""


def _holders(c, *keys: str) -> list[str]:
    # the scanner itself runs without the keys, so only what devc-tasks started can show up
    r = c.exec_run(["python3", "-c", SCAN, *keys], environment={"TAILSCALE_AUTHKEY": "", "TS_AUTHKEY": ""})
    assert r.exit_code == 0, r.output
    return r.output.decode().split("\n")[:-1]


def _running(c, comm_and_arg: str) -> bool:
    script = f'for d in /proc/[0-9]*; do tr "\\0" " " < $d/cmdline 2>/dev/null; echo; done | grep -q -- "{comm_and_arg}"'
    return c.exec_run(["sh", "-c", script]).exit_code == 0


def test_processes_started_in_the_container_do_not_inherit_the_key(inv, containers):
    key, other = new_key("hang"), new_key()
    c = containers.start(env={"TAILSCALE_AUTHKEY": key, "TS_AUTHKEY": other})
    result: dict[str, object] = {}
    worker = threading.Thread(target=lambda: result.setdefault("up", up(inv, c, "--hostname", "noenv", "--timeout", "6")))
    worker.start()
    seen_login = False
    try:
        # while `tailscale up` (under `timeout`) waits for the hanging login
        while worker.is_alive() and not seen_login:
            seen_login = _running(c, " up --hostname=noenv")
            if seen_login:
                assert _holders(c, key, other) == []
    finally:
        worker.join(120)
    assert seen_login, "the login step was never seen running"
    r = result["up"]
    assert r.code == 24, r  # the hang key never completes: a clean timeout
    assert _running(c, "tailscaled --state")
    assert _holders(c, key, other) == []  # tailscaled keeps running: without the key
