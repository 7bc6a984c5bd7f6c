"""Behaviour that must hold with the real programs too: images without procps,
restart keeping the node's settings, tag changes, status documents per state."""

from __future__ import annotations

import pytest

from tests.conftest import logins
from tests.integration.test_up import new_key, up

pytestmark = pytest.mark.integration


def test_works_without_procps(inv, containers):
    """No pgrep/pkill in the image: tailscaled is found through /proc, so up, restart
    and down still work and never start a second daemon."""
    c = containers.start()
    hide = c.exec_run(["sh", "-c", "for t in pgrep pkill ps; do p=$(command -v $t) && mv $p $p.hidden; done; ! command -v pgrep"])
    assert hide.exit_code == 0, hide.output
    assert up(inv, c, "--hostname", "noprocps", key=new_key()).code == 0
    r = inv("tailscale.restart", "--container", c.name, "--json")
    assert r.code == 0, r
    count = c.exec_run(["sh", "-c", "for d in /proc/[0-9]*; do cat $d/comm 2>/dev/null; done | grep -cx tailscaled"])
    assert count.output.decode().strip() == "1"
    again = up(inv, c, "--hostname", "noprocps")
    assert again.code == 0 and again.doc["outcome"] == "already-connected"
    assert len(logins(containers.control)) == 1


def test_restart_keeps_the_nodes_settings(inv, containers):
    c = containers.start()
    assert up(inv, c, "--hostname", "keeper", "--no-ssh", "--accept-routes", key=new_key()).code == 0
    r = inv("tailscale.restart", "--container", c.name, "--json")
    assert r.code == 0, r
    assert r.doc["node"]["hostname"] == "keeper"
    assert "change" not in " ".join(r.doc["steps"])
    prefs = c.exec_run(["tailscale", "debug", "prefs"]).output.decode()
    assert '"RunSSH": false' in prefs and '"RouteAll": true' in prefs
    renamed = inv("tailscale.restart", "--container", c.name, "--hostname", "renamed", "--json")
    assert renamed.code == 0 and renamed.doc["node"]["hostname"] == "renamed"


def test_tag_change_goes_through_up_without_a_new_login(inv, containers):
    c = containers.start()
    assert up(inv, c, "--hostname", "tagged", key=new_key()).code == 0
    r = up(inv, c, "--hostname", "tagged", "--advertise-tags", "tag:dev")
    assert r.code == 0, r
    assert r.doc["steps"] == ["bring the node up (no key needed)"]
    assert '"tag:dev"' in c.exec_run(["tailscale", "debug", "prefs"]).output.decode()
    assert len(logins(containers.control)) == 1


def test_status_documents_per_state(inv, containers):
    bare = containers.start(tailscale=False)
    r = inv("tailscale.status", "--container", bare.name, "--json")
    assert r.code == 21 and r.doc["ok"] is False and r.doc["error"]["kind"] == "tailscale_not_installed"
    assert r.doc["installed"] is False
    c = containers.start()
    r = inv("tailscale.status", "--container", c.name, "--json")
    assert r.code == 5 and r.doc["ok"] is False and r.doc["error"]["kind"] == "not_connected"
    assert r.doc["daemon_running"] is False
    assert up(inv, c, "--hostname", "stateful", key=new_key()).code == 0
    r = inv("tailscale.status", "--container", c.name, "--json")
    assert r.code == 0 and r.doc["ok"] is True and "error" not in r.doc
    assert r.doc["peers"] == 0  # counted (not null): the tailnet has only this node


def test_uppercase_hostname_is_not_a_collision(inv, containers):
    c = containers.start()
    r = up(inv, c, "--hostname", "MyBox", key=new_key())
    assert r.code == 0, r
    assert not [w for w in r.doc["warnings"] if "another node" in w]


def test_cli_daemon_version_skew_warning_is_tolerated(inv, containers):
    """The real CLI warns on stderr (exit 0) when its version differs from the daemon's."""
    c = containers.start(env={"TS_STANDIN_CLIENT_VERSION": "1.80.0-tOLD"})
    r = up(inv, c, "--hostname", "skewed", key=new_key())
    assert r.code == 0, r
    warn = c.exec_run(["tailscale", "status", "--json"], demux=True)
    assert warn.exit_code == 0 and b"client version" in (warn.output[1] or b""), warn.output  # the CLI did warn
    st = inv("tailscale.status", "--container", c.name, "--json")
    assert st.code == 0 and st.doc["backend_state"] == "Running"
    again = up(inv, c, "--hostname", "skewed")
    assert again.code == 0 and again.doc["outcome"] == "already-connected"


def test_daemon_on_another_socket_is_named_and_restart_fixes_it(inv, containers):
    c = containers.start()
    c.exec_run(["sh", "-c", "setsid tailscaled --state=/tmp/other.state --socket=/tmp/other.sock >/dev/null 2>&1 </dev/null &"])
    r = up(inv, c, "--hostname", "foreign", key=new_key())
    assert r.code == 22, r
    assert "--socket=/tmp/other.sock" in r.doc["error"]["message"] and "restart" in r.doc["error"]["fix"]
    fixed = inv("tailscale.restart", "--container", c.name, "--hostname", "foreign", "--json")
    assert fixed.code == 0 and fixed.doc["outcome"] == "skipped"  # no identity on the volume yet, and restart never logs in
    assert up(inv, c, "--hostname", "foreign", key=new_key()).code == 0


def test_a_daemon_that_never_answers_times_out_with_its_log(inv, containers):
    """The wait for the socket is bounded (here tailscale.daemon_wait=2 through Invoke's env config)."""
    c = containers.start(env={"TS_STANDIN_START_DELAY": "120"})
    r = inv("tailscale.up", "--container", c.name, "--hostname", "sleepy", "--json", env={"TAILSCALE_AUTHKEY": new_key(), "INVOKE_TAILSCALE_DAEMON_WAIT": "2"})
    assert r.code == 24, r
    assert "did not answer on /var/run/tailscale/tailscaled.sock within 2 s" in r.doc["error"]["message"]
    assert "Program starting" in r.doc["error"]["message"]  # the daemon's own last log lines


def test_logout_task(inv, containers):
    c = containers.start()
    r = inv("tailscale.logout", "--container", c.name, "--json")
    assert r.code == 0 and r.doc["done"] == ["no node identity: already logged out"], r  # nothing to log out of yet
    key = new_key("ephemeral")
    assert up(inv, c, "--hostname", "leaving", key=key).code == 0
    nodes = list((containers.control / "nodes").glob("*.json"))
    assert len(nodes) == 1
    r = inv("tailscale.logout", "--container", c.name, "--json")
    assert r.code == 0, r
    assert r.doc["done"] == ["logged out"] and r.doc["node"]["backend_state"] == "NeedsLogin"
    assert not any(p.exists() for p in nodes)  # an ephemeral node leaves the tailnet for good


def test_default_up_mentions_every_managed_flag(inv, containers, docker_client):
    import time

    c = containers.start()
    start = int(time.time()) - 1
    assert up(inv, c, "--hostname", "defaults", key=new_key()).code == 0
    events = docker_client.events(since=start, until=int(time.time()) + 1, decode=True, filters={"container": c.id})
    login = [e["Action"] for e in events if e.get("Action", "").startswith("exec_create") and "--auth-key=file:/dev/stdin" in e["Action"]]
    assert len(login) == 1
    for flag in ("--hostname=defaults", "--ssh", "--accept-routes=false", "--advertise-tags=", "--timeout=60s"):
        assert f" {flag} " in login[0] + " ", login[0]


def test_no_colour_codes_off_a_terminal_even_without_no_color(inv, containers):
    c = containers.start()
    r = inv("tailscale.up", "--container", c.name, "--hostname", "piped", env={"TAILSCALE_AUTHKEY": new_key(), "NO_COLOR": ""})
    assert r.code == 0, r
    assert "\x1b[" not in r.stdout + r.stderr


def test_broken_devcontainer_json_is_a_config_error(inv, tmp_path):
    (tmp_path / ".devcontainer").mkdir()
    (tmp_path / ".devcontainer" / "devcontainer.json").write_text('{ "name": "x", oops }')
    r = inv("tailscale.status", "--json", cwd=tmp_path, env={"PWD": str(tmp_path)})
    assert r.code == 3, r
    assert "devcontainer.json" in r.doc["error"]["message"] and "Traceback" not in r.stderr


def test_ctrl_c_with_json_prints_the_interrupted_document(containers):
    """SIGINT to `devc-tasks tailscale.up --json` while the login waits: stdout is still exactly one
    JSON document (kind "interrupted", exit 130), and the next `up` connects the node (no lock or
    half-done step left behind)."""
    import json
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import REPO, run_inv

    c = containers.start()
    env = {k: v for k, v in os.environ.items() if k not in ("TAILSCALE_HOSTNAME", "TAILSCALE_AUTHKEY")}
    env.update(TAILSCALE_AUTHKEY=new_key("hang"), NO_COLOR="1", PYTHONPATH=str(REPO))
    cli = [sys.executable, "-c", "import sys; sys.argv[0] = 'devc-tasks'; from devc_tasks.entry import main; main()"]
    proc = subprocess.Popen([*cli, "tailscale.up", "--container", c.name, "--hostname", "hang", "--timeout", "120", "--json"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:  # wait until the login is under way ...
        if "log in with the auth key" in line:
            break
    proc.send_signal(signal.SIGINT)  # ... then press Ctrl-C
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    doc = json.loads(out)  # exactly one document
    assert doc["ok"] is False and doc["error"]["kind"] == "interrupted" and doc["error"]["exit_code"] == 130, doc
    assert "Traceback" not in err
    again = run_inv("tailscale.up", "--container", c.name, "--hostname", "after", "--json", env={"TAILSCALE_AUTHKEY": new_key()})
    assert again.code == 0 and again.doc["node"]["backend_state"] == "Running", again
