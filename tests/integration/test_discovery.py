"""Finding the container from the workspace: devcontainer CLI labels, compose labels,
symlinked folders, several matches, none, a stopped one."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def workspace(tmp_path: Path, config: dict) -> Path:
    ws = tmp_path / f"Disco Ws {uuid.uuid4().hex[:6]}"
    (ws / ".devcontainer").mkdir(parents=True)
    (ws / ".devcontainer" / "devcontainer.json").write_text("// JSONC\n" + json.dumps(config, indent=2))
    (ws / "src" / "pkg").mkdir(parents=True)
    return ws


def status_from(inv, folder: Path, logical: Path | None = None):
    return inv("tailscale.status", "--json", cwd=folder, env={"PWD": str(logical or folder)})


def test_found_by_devcontainer_labels_from_a_subfolder(inv, containers, tmp_path):
    ws = workspace(tmp_path, {"name": "disco", "image": "x"})
    c = containers.start(labels={"devcontainer.local_folder": str(ws), "devcontainer.config_file": str(ws / ".devcontainer" / "devcontainer.json")})
    r = status_from(inv, ws / "src" / "pkg")
    assert r.doc["container"] == c.name, r


def test_found_through_a_symlinked_workspace(inv, containers, tmp_path):
    ws = workspace(tmp_path, {"name": "disco", "image": "x"})
    link = tmp_path / "link-to-ws"
    link.symlink_to(ws)
    c = containers.start(labels={"devcontainer.local_folder": str(link)})  # the CLI records the path as given
    r = status_from(inv, link / "src", logical=link / "src")
    assert r.doc["container"] == c.name, r


def test_found_by_compose_project_and_service(inv, containers, tmp_path):
    ws = workspace(tmp_path, {"name": "disco", "dockerComposeFile": "compose.yml", "service": "dev"})
    (ws / ".devcontainer" / "compose.yml").write_text("services:\n  dev:\n    image: x\n")
    project = ws.name.lower().replace(" ", "") + "_devcontainer"
    c = containers.start(labels={"com.docker.compose.project": project, "com.docker.compose.service": "dev"})
    r = status_from(inv, ws)
    assert r.doc["container"] == c.name, r


def test_several_matches_are_listed(inv, containers, tmp_path):
    ws = workspace(tmp_path, {"name": "disco", "image": "x"})
    a = containers.start(labels={"devcontainer.local_folder": str(ws)})
    b = containers.start(labels={"devcontainer.local_folder": str(ws)})
    r = status_from(inv, ws)
    assert r.code == 12, r
    assert a.name in r.doc["error"]["message"] and b.name in r.doc["error"]["message"]
    assert "--container" in r.doc["error"]["fix"]


def test_a_running_container_beats_a_stopped_copy(inv, containers, tmp_path):
    ws = workspace(tmp_path, {"name": "disco", "image": "x"})
    old = containers.start(labels={"devcontainer.local_folder": str(ws)})
    old.stop(timeout=1)
    new = containers.start(labels={"devcontainer.local_folder": str(ws)})
    assert status_from(inv, ws).doc["container"] == new.name


def test_only_a_stopped_container(inv, containers, tmp_path):
    ws = workspace(tmp_path, {"name": "disco", "image": "x"})
    c = containers.start(labels={"devcontainer.local_folder": str(ws)})
    c.stop(timeout=1)
    r = status_from(inv, ws)
    assert r.code == 13 and c.name in r.doc["error"]["message"] and "Start it" in r.doc["error"]["fix"]


def test_nothing_found_says_what_was_searched(inv, containers, tmp_path):
    ws = workspace(tmp_path, {"name": "disco", "image": "x"})
    r = status_from(inv, ws)
    assert r.code == 11, r
    assert f"devcontainer.local_folder={ws}" in r.doc["error"]["message"]
    assert "--container" in r.doc["error"]["fix"]


def test_no_workspace_anywhere(inv, tmp_path, docker_client):
    r = status_from(inv, tmp_path)
    assert r.code == 11 and "no devcontainer configuration found" in r.doc["error"]["message"]
