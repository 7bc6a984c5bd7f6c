"""README promises that need the engine: --workspace's invoke.yaml, exit 3 for compose
files in doctor, 14 for an Engine that answers 500, stopped devcontainers in `status --all`."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from tests.conftest import TaskRun
from tests.integration.test_exit_codes import RefusingEngine

pytestmark = pytest.mark.integration


def new_key(kind: str = "") -> str:
    return f"tskey-auth-{kind}{uuid.uuid4().hex[:10]}CNTRL-{uuid.uuid4().hex}"


def devc(*args: str, cwd: Path, env: dict[str, str] | None = None) -> TaskRun:
    """The console script, as `devc-tasks ARGS` from ``cwd``."""
    full = {k: v for k, v in os.environ.items() if k not in ("TAILSCALE_AUTHKEY", "TAILSCALE_HOSTNAME")}
    full.update({"NO_COLOR": "1", "PWD": str(cwd), **(env or {})})
    proc = subprocess.run([sys.executable, "-c", "from devc_tasks.program import main; main()", *args], cwd=cwd, env=full, capture_output=True, text=True, timeout=180)
    return TaskRun(proc)


def workspace(root: Path, name: str, config: dict, invoke_yaml: str | None = None) -> Path:
    ws = root / name
    (ws / ".devcontainer").mkdir(parents=True)
    (ws / ".devcontainer" / "devcontainer.json").write_text(json.dumps(config))
    if invoke_yaml is not None:
        (ws / "invoke.yaml").write_text(invoke_yaml)
    return ws


def test_the_workspace_flag_brings_its_invoke_yaml_timeout(containers, tmp_path):
    """`timeout: 2` in --workspace's invoke.yaml bounds the login, run from another workspace."""
    here = workspace(tmp_path, "here", {"name": "here", "image": "x"}, "tailscale:\n  timeout: 90\n")
    there = workspace(tmp_path, "there", {"name": "there", "image": "x"}, "tailscale:\n  timeout: 2\n")
    c = containers.start()
    r = devc("tailscale.up", "--container", c.name, "--workspace", str(there), "--hostname", "hang", "--json", cwd=here, env={"TAILSCALE_AUTHKEY": new_key("hang")})
    assert r.code == 24, r
    assert "within 2 s" in r.doc["error"]["message"], r.doc


def test_doctor_fails_the_devcontainer_json_row_for_a_missing_compose_file(inv, tmp_path):
    ws = workspace(tmp_path, "ws", {"name": "x", "dockerComposeFile": ["compose.yml", "missing.yml"], "service": "app"})
    (ws / ".devcontainer" / "compose.yml").write_text("services:\n  app:\n    image: x\n")
    r = inv("tailscale.doctor", "--workspace", str(ws), "--json")
    assert r.code == 40, r
    config = next(ch for ch in r.doc["checks"] if ch["name"] == "config")
    assert config["status"] == "fail" and config["seen"] == f"compose file {ws}/.devcontainer/missing.yml does not exist", config
    assert "dockerComposeFile" in config["fix"]


@pytest.fixture
def refusing_engine():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RefusingEngine)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"tcp://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("how", ["container", "workspace"])
def test_an_engine_answering_500_to_the_lookup_is_engine_refused(inv, refusing_engine, tmp_path, how):
    """README: 14 `engine_refused` -- the Engine answered with an error of no other class (not 10, unreachable)."""
    ws = workspace(tmp_path, "ws", {"name": "x", "image": "x"})
    selector = ["--container", "x"] if how == "container" else ["--workspace", str(ws)]
    r = inv("tailscale.status", *selector, "--host", refusing_engine, "--json")
    assert r.code == 14, r
    assert r.doc["error"]["kind"] == "engine_refused" and "500 simulated engine failure" in r.doc["error"]["message"]
    assert "The Engine reported a failure of its own" in r.doc["error"]["fix"]


def test_status_all_shows_stopped_devcontainers_with_their_state(inv, containers):
    """README: `status --all` -- every devcontainer on the engine; stopped ones as rows with their state."""
    folder = f"/tmp/devc-all-{uuid.uuid4().hex[:6]}"
    running = containers.start(labels={"devcontainer.local_folder": folder + "-a"})
    stopped = containers.start(labels={"devcontainer.local_folder": folder + "-b"})
    stopped.stop(timeout=0)
    r = inv("tailscale.status", "--all", "--json")
    assert r.code == 0, r
    rows = {d["container"]: d for d in r.doc["containers"]}
    assert rows[stopped.name]["container_state"] == "exited" and rows[stopped.name]["backend_state"] is None
    assert rows[running.name]["container_state"] == "running" and rows[running.name]["installed"] is True
    human = inv("tailscale.status", "--all", env={"COLUMNS": "300"})
    assert human.code == 0, human
    line = next(ln for ln in human.stdout.splitlines() if stopped.name in ln)
    assert "exited" in line, human.stdout
