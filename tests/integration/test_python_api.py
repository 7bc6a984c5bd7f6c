"""The Python API (``devc_tasks.api``) as a script uses it, on the real engine; and
``--events``, the tasks' progress as JSON lines for scripts that show their own."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from devc_tasks import api
from devc_tasks.core import errors
from devc_tasks.core.events import EVENT_KINDS
from tests.conftest import REPO, logins
from tests.support.contract import event_problems

pytestmark = pytest.mark.integration


def new_key() -> str:
    return f"tskey-auth-py{uuid.uuid4().hex[:10]}CNTRL-{uuid.uuid4().hex}"


def host_env() -> dict[str, str]:
    """This process's environment without any key: the engine settings stay."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TAILSCALE_")}


def key_file(tmp_path: Path, key: str) -> Path:
    path = tmp_path / "authkey"
    path.write_text(key + "\n")
    path.chmod(0o600)
    return path


def test_a_script_cycle_through_the_api(containers, tmp_path):
    """up with the key from a file -> status -> down -> status, as a script would; the
    reports are the dataclasses the tasks render, and no key in any of them or the events."""
    c = containers.start()
    key = new_key()
    keyfile = key_file(tmp_path, key)
    events: list[api.Event] = []
    up = api.up(container=c.name, hostname="py-api", authkey_file=keyfile, environ=host_env(), on_event=events.append)
    assert isinstance(up, api.UpReport)
    assert up.outcome == "connected" and up.container == c.name
    assert up.status is not None and up.status.backend_state == "Running" and up.status.self.host_name == "py-api"
    assert "log in with the auth key" in up.result.steps
    assert up.key_source == f"--authkey-file {keyfile}"
    assert len(logins(containers.control)) == 1

    kinds = [e.event for e in events]
    assert kinds[:2] == ["resolve", "probe"] and kinds[-1] == "done"
    assert {"start-daemon", "login"} <= set(kinds) and set(kinds) <= EVENT_KINDS
    assert all(e.container == c.name for e in events)
    assert [e.elapsed_ms for e in events] == sorted(e.elapsed_ms for e in events)

    st = api.status(container=c.name, environ=host_env())
    assert st.ok and st.error is None and st.probe.status is not None and st.probe.status.running

    down = api.down(container=c.name, environ=host_env())
    assert isinstance(down, api.ChangeReport) and down.done == ["stopped"]
    assert down.node.status is not None and down.node.status.backend_state == "Stopped"

    st = api.status(container=c.name, environ=host_env())
    assert not st.ok and isinstance(st.error, errors.NotConnected) and st.error.exit_code == 5

    again = api.up(container=c.name, hostname="py-api", environ=host_env())  # no key: it keeps its identity
    assert again.outcome == "connected" and again.key_source is None
    assert len(logins(containers.control)) == 1
    for thing in (up, st, down, again, events, up.result, up.status):
        assert key not in repr(thing)


def test_a_key_held_in_memory_is_a_secret_and_never_shows(containers):
    c = containers.start()
    key = new_key()
    report = api.up(container=c.name, hostname="py-secret", authkey=api.Secret(key), environ=host_env())
    assert report.outcome == "connected" and report.key_source == "authkey (Secret)"
    assert key not in repr(report)
    assert logins(containers.control)[0]["hostname"] == "py-secret"


def test_a_plain_string_key_is_refused_without_echoing_it(containers):
    """authkey takes a Secret: a plain string could end up in a log, and is not used."""
    c = containers.start()
    key = new_key()
    with pytest.raises(errors.UsageError) as caught:
        api.up(container=c.name, hostname="py-plain", authkey=key, environ=host_env())  # type: ignore[arg-type]
    assert caught.value.exit_code == 2 and caught.value.kind == "usage"
    assert key not in str(caught.value) and key not in repr(caught.value)
    assert logins(containers.control) == []


def test_no_container_is_the_typed_not_found_error_with_its_code(docker_client):
    with pytest.raises(errors.ContainerNotFound) as caught:
        api.status(container=f"devc-no-such-{uuid.uuid4().hex[:8]}", environ=host_env())
    e = caught.value
    assert isinstance(e, api.DevcError) and e.exit_code == 11 and e.kind == "container_not_found"
    assert e.to_dict()["exit_code"] == 11 and e.fix


def test_state_backup_through_the_api(containers, tmp_path):
    c = containers.start()
    api.up(container=c.name, hostname="py-backup", authkey=api.Secret(new_key()), environ=host_env())
    events: list[api.Event] = []
    report = api.state_backup(container=c.name, output=tmp_path, environ=host_env(), on_event=events.append)
    assert report.path.parent == tmp_path and report.path.is_file() and report.result.has_identity
    assert oct(report.path.stat().st_mode & 0o777) == "0o600"
    assert [e.event for e in events] == ["resolve", "backup", "done"]
    restored = api.state_restore(report.path, container=c.name, stop_daemon=True, environ=host_env())
    assert restored.result.daemon_restarted and restored.result.files == report.result.files


# --- --events -------------------------------------------------------------------------------

EVENT_FIELDS = {"event", "step", "elapsed_ms", "container"}


def event_lines(stderr: str) -> list[dict]:
    """Every stderr line is one JSON object with the documented fields, valid against
    schemas/event.json."""
    lines = [json.loads(line) for line in stderr.splitlines()]
    for e in lines:
        assert EVENT_FIELDS <= set(e), e
        assert e["event"] in EVENT_KINDS and isinstance(e["elapsed_ms"], int)
        assert event_problems(e) == [], e
    return lines


def test_up_events_stream_json_lines_on_stderr_and_json_stays_one_document(inv, containers):
    c = containers.start()
    key = new_key()
    r = inv("tailscale.up", "--container", c.name, "--hostname", "evented", "--events", "--json", env={"TAILSCALE_AUTHKEY": key})
    assert r.code == 0, r
    doc = r.doc  # exactly one document on stdout
    assert doc["ok"] and doc["outcome"] == "connected"
    events = event_lines(r.stderr)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "resolve" and events[0]["hostname"] == "evented"
    assert kinds[1] == "probe" and kinds[-1] == "done" and events[-1]["step"] == "connected"
    assert {"start-daemon", "login"} <= set(kinds)
    assert [e["step"] for e in events if e["event"] not in ("resolve", "probe", "done", "warning")] == doc["steps"]
    assert all(e["container"] == c.name for e in events)
    assert key not in r.stderr and key not in r.stdout


def test_events_end_with_the_error_event_and_nothing_else_on_stderr(inv):
    r = inv("tailscale.up", "--container", f"devc-no-such-{uuid.uuid4().hex[:8]}", "--events", "--json")
    assert r.code == 11, r
    assert r.doc["error"]["kind"] == "container_not_found"
    events = event_lines(r.stderr)
    assert events[-1]["event"] == "error" and events[-1]["exit_code"] == 11 and events[-1]["kind"] == "container_not_found"


def test_down_all_events_name_each_container(inv, containers, docker_client):
    """down --all --events: one `down` event per container, from its row's thread."""
    label = f"devc-events-{uuid.uuid4().hex[:8]}"
    made = [containers.start(labels={"devcontainer.local_folder": f"/tmp/{label}-{i}", label: "1"}) for i in range(2)]
    for i, c in enumerate(made):
        assert inv("tailscale.up", "--container", c.name, "--hostname", f"evall-{i}", "--json", env={"TAILSCALE_AUTHKEY": new_key()}).code == 0
    r = inv("tailscale.down", "--all", "--yes", "--label", label, "--events", "--json")
    assert r.code == 0, r
    assert len(r.doc["containers"]) == 2
    downs = [e for e in event_lines(r.stderr) if e["event"] == "down"]
    assert sorted(e["container"] for e in downs) == sorted(c.name for c in made)


# --- README ---------------------------------------------------------------------------------


def readme_example() -> str:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Python API") :].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, "the Python API section has a worked example"
    return blocks[0]


def test_the_readme_python_example_runs_as_written(containers, tmp_path):
    script = tmp_path / "connect.py"
    script.write_text(readme_example())
    c = containers.start()
    key = new_key()
    keyfile = key_file(tmp_path, key)
    env = {**host_env(), "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, str(script), c.name, str(keyfile)], env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r
    assert r.stdout.startswith("ssh root@") and key not in r.stdout + r.stderr
    missing = subprocess.run([sys.executable, str(script), "devc-no-such-container", str(keyfile)], env=env, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 11, missing
    assert "Traceback" not in missing.stderr
