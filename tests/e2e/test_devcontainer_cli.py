"""End to end: a compose devcontainer started by the real devcontainer CLI, then
`just tailscale ...` from inside the workspace, with no --container given."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import uuid
from pathlib import Path

import pytest

from devc_tasks.core.hostname import short_host
from tests.conftest import RUN_ID, TEST_LABEL, _engine_required, logins
from tests.support.contract import document

pytestmark = pytest.mark.e2e

NAME = "Ünïcode Café_Project Devc"  # spaces, capitals, underscores, accents


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if _engine_required():
            pytest.fail(f"`{name}` is required here (CI) but not on PATH; .ci/provision.sh installs it")
        pytest.skip(f"`{name}` not installed; run .ci/provision.sh")
    return path


@pytest.fixture
def workspace(tmp_path, images, control_dir, docker_client):
    devcontainer = _tool("devcontainer")
    _tool("just")
    _tool("devc-tasks")
    ws = tmp_path / f"E2E Work {RUN_ID}"
    (ws / ".devcontainer").mkdir(parents=True)
    (ws / ".devcontainer" / "devcontainer.json").write_text(
        "{\n"
        "  // the devcontainer CLI and devc-tasks both read JSON with comments\n"
        f'  "name": "{NAME}",\n'
        '  "dockerComposeFile": ["compose.yml"],\n'
        '  "service": "dev",\n'
        '  "workspaceFolder": "/workspace",\n'
        "}\n"
    )
    (ws / ".devcontainer" / "compose.yml").write_text(
        f"""services:
  dev:
    image: {images[0]}
    command: ["sleep", "infinity"]
    network_mode: none
    init: true
    devices: ["/dev/net/tun:/dev/net/tun"]
    cap_add: [NET_ADMIN, NET_RAW]
    labels:
      {TEST_LABEL}: "{RUN_ID}"
    volumes:
      - ..:/workspace
      - tailscale-state:/var/lib/tailscale
      - {control_dir}:/srv/tailscale-control
volumes:
  tailscale-state:
    labels:
      {TEST_LABEL}: "{RUN_ID}"
"""
    )
    module = subprocess.run(["devc-tasks", "--just-module"], capture_output=True, text=True, check=True).stdout.strip()
    (ws / "justfile").write_text(f"mod tailscale '{module}'\n")
    (ws / "src" / "deep").mkdir(parents=True)
    up = subprocess.run([devcontainer, "up", "--workspace-folder", str(ws)], capture_output=True, text=True, timeout=300)
    project = f"e2ework{RUN_ID}_devcontainer"
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        result = json.loads(up.stdout.strip().splitlines()[-1])
        assert result["outcome"] == "success" and result["composeProjectName"] == project
        yield ws, result["containerId"]
    finally:
        subprocess.run(
            ["docker", "compose", "-p", project, "-f", str(ws / ".devcontainer" / "compose.yml"), "down", "-v", "--timeout", "1"],
            capture_output=True,
            timeout=120,
        )


def just(ws: Path, *args: str, key: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TAILSCALE_AUTHKEY", "TAILSCALE_HOSTNAME")}
    env["NO_COLOR"] = "1"
    if key:
        env["TAILSCALE_AUTHKEY"] = key
    return subprocess.run(["just", *args], cwd=str(cwd or ws), env=env, capture_output=True, text=True, timeout=180)


def test_just_tailscale_from_the_workspace(workspace, control_dir, tmp_path):
    workspace, container_id = workspace
    expected = f"unicode-cafe-project-devc-{short_host(socket.gethostname())}"
    deep = workspace / "src" / "deep"
    key = f"tskey-auth-e2e{uuid.uuid4().hex[:8]}CNTRL-{uuid.uuid4().hex}"

    r = just(workspace, "tailscale", "hostname", cwd=deep)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == expected

    # named by --container from outside the workspace: the same name, from the CLI's labels
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "justfile").write_text((workspace / "justfile").read_text())
    r = just(workspace, "tailscale", "hostname", "--container", container_id[:12], cwd=tmp_path / "elsewhere")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == expected

    r = just(workspace, "tailscale", "up", key=key, cwd=deep)
    assert r.returncode == 0, r.stderr
    assert expected in r.stdout and "connected" in r.stdout
    assert key not in r.stdout + r.stderr
    assert len(logins(control_dir)) == 1

    r = just(workspace, "tailscale", "status", "--json")
    assert r.returncode == 0, r.stderr
    doc = document(r.stdout)
    assert doc["backend_state"] == "Running" and doc["hostname"] == expected
    assert doc["dns_name"].startswith(expected + ".")

    # arguments pass through just intact: one argument with a space, sanitized with a warning
    r = just(workspace, "tailscale", "up", "--hostname", "My Box", "--json")
    assert r.returncode == 0, r.stderr
    doc = document(r.stdout)
    assert doc["node"]["hostname"] == "my-box" and doc["steps"] == ["change hostname"]
    assert "my-box" in r.stderr  # the sanitizing warning
    assert len(logins(control_dir)) == 1

    r = just(workspace, "tailscale", "down", cwd=deep)
    assert r.returncode == 0, r.stderr
    r = just(workspace, "tailscale", "status", "--json")
    assert r.returncode == 5
    assert document(r.stdout)["backend_state"] == "Stopped"
