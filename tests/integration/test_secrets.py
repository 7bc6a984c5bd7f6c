"""The auth key appears in no command line, exec record, file, log or output."""

from __future__ import annotations

import time

import pytest

from tests.conftest import logins
from tests.integration.test_up import new_key

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("source", ["host-env", "file", "stdin", "container-env"])
def test_key_never_leaks(inv, containers, docker_client, tmp_path, source):
    key = new_key()
    env, args, stdin = {}, [], None
    if source == "host-env":
        env = {"TAILSCALE_AUTHKEY": key}
    elif source == "file":
        (tmp_path / "key").write_text(key + "\n")
        args = ["--authkey-file", str(tmp_path / "key")]
    elif source == "stdin":
        args, stdin = ["--authkey-file", "-"], key + "\n"
    c = containers.start(env={"TAILSCALE_AUTHKEY": key} if source == "container-env" else None)
    start = int(time.time()) - 1
    r = inv("tailscale.up", "--container", c.name, "--hostname", "leakcheck", "--json", *args, env=env, stdin=stdin)
    assert r.code == 0, r
    assert len(logins(containers.control)) == 1
    # 1. our output
    assert key not in r.stdout and key not in r.stderr
    # 2. the Engine's record of every exec (`docker events` shows each full command line)
    events = docker_client.events(since=start, until=int(time.time()) + 1, decode=True, filters={"container": c.id})
    execs = [e["Action"] for e in events if e.get("Action", "").startswith("exec_create")]
    assert any("--auth-key=file:/dev/stdin" in a for a in execs), execs
    assert not [a for a in execs if key in a]
    # 3. every file in the container (state, logs, /tmp, the registry mount)
    grep = c.exec_run(["grep", "-rlF", "--exclude-dir=proc", "--exclude-dir=sys", "--exclude-dir=dev", key, "/"], user="0")
    assert grep.exit_code == 1 and grep.output.decode().strip() == "", grep.output
    # 4. the daemon's log
    log = c.exec_run(["cat", "/var/log/tailscaled.log"]).output.decode()
    assert key not in log

