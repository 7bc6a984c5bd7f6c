"""The README's worked script examples, taken from the README and run as written (bash, jq,
`devc-tasks` on PATH) against the real Engine and the tailscale stand-in: a script that
relies on the JSON contract must keep working."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, run_inv

pytestmark = pytest.mark.integration


def readme_script(name: str) -> str:
    """The fenced block right after ``<!-- readme-script: NAME -->`` in README.md."""
    text = (REPO / "README.md").read_text()
    m = re.search(rf"<!-- readme-script: {re.escape(name)} -->\n```\w*\n(.*?)```\n", text, re.S)
    assert m, f"README.md has no script {name}"
    return m.group(1)


def _bin(tmp_path: Path) -> Path:
    """A PATH folder whose `devc-tasks` is this tree's console script (as `pip install` makes it)."""
    b = tmp_path / "bin"
    b.mkdir(exist_ok=True)
    exe = b / "devc-tasks"
    exe.write_text(f"#!/bin/sh\nexec {sys.executable} -c 'from devc_tasks.entry import main; main()' \"$@\"\n")
    exe.chmod(0o755)
    return b


def run_script(tmp_path: Path, path: Path, *args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in ("TAILSCALE_AUTHKEY", "TAILSCALE_HOSTNAME")}
    full.update({"PATH": f"{_bin(tmp_path)}{os.pathsep}{os.environ['PATH']}", "NO_COLOR": "1", "PWD": str(cwd), **(env or {})})
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(path), *args], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)


def workspace(tmp_path: Path, name: str) -> Path:
    ws = tmp_path / name
    (ws / ".devcontainer").mkdir(parents=True)
    (ws / ".devcontainer" / "devcontainer.json").write_text(json.dumps({"name": name, "image": "x"}))
    return ws


def _devcontainer(containers, ws: Path, **start):
    return containers.start(labels={"devcontainer.local_folder": str(ws)}, **start)


@pytest.fixture
def up_ssh(tmp_path: Path) -> Path:
    p = tmp_path / "up-ssh.sh"
    p.write_text(readme_script("up-ssh.sh"))
    return p


@pytest.fixture
def doctor_step(tmp_path: Path) -> Path:
    step = yaml.safe_load(readme_script("doctor-step.yml"))
    assert isinstance(step, list) and step[0]["name"] == "Nothing blocks tailscale up"
    p = tmp_path / "doctor-step.sh"
    p.write_text(step[0]["run"])
    return p


def test_up_script_prints_the_ssh_line_and_the_ci_step_passes(containers, tmp_path, up_ssh, doctor_step):
    ws = workspace(tmp_path, "readme-ok")
    c = _devcontainer(containers, ws)
    key = f"tskey-auth-{uuid.uuid4().hex[:10]}CNTRL-{uuid.uuid4().hex}"

    r = run_script(tmp_path, up_ssh, cwd=ws, env={"TAILSCALE_AUTHKEY": key})
    assert r.returncode == 0, r
    status = run_inv("tailscale.status", "--container", c.name, "--json")
    assert status.code == 0, status
    assert r.stdout == f"ssh root@{status.doc['dns_name']}\n"
    assert key not in r.stdout + r.stderr

    ci = run_script(tmp_path, doctor_step, cwd=ws)
    assert ci.returncode == 0, ci
    assert "::error" not in ci.stdout
    assert json.loads((ws / "doctor.json").read_text())["ok"] is True  # not a task document: the step's file


def test_up_script_prints_the_fix_and_exits_with_the_code(containers, tmp_path, up_ssh):
    ws = workspace(tmp_path, "readme-notun")
    _devcontainer(containers, ws, tun=False)
    r = run_script(tmp_path, up_ssh, cwd=ws, env={"TAILSCALE_AUTHKEY": f"tskey-auth-x{uuid.uuid4().hex[:8]}CNTRL-{uuid.uuid4().hex}"})
    assert r.returncode == 20, r  # tun_missing
    assert r.stdout == ""
    assert "/dev/net/tun" in r.stderr and "\nfix: " in r.stderr


def test_up_script_without_a_key_says_it_did_not_connect(containers, tmp_path, up_ssh):
    ws = workspace(tmp_path, "readme-nokey")
    _devcontainer(containers, ws)
    r = run_script(tmp_path, up_ssh, cwd=ws)
    assert r.returncode == 0, r  # skipping is the opt-out, not an error
    assert r.stdout == "" and "\nnot connected: no auth key" in r.stderr


def test_up_script_passes_its_arguments_on(containers, tmp_path, up_ssh):
    c = containers.start()
    r = run_script(tmp_path, up_ssh, "--container", c.name, "--hostname", "readme-args", cwd=tmp_path,
                   env={"TAILSCALE_AUTHKEY": f"tskey-auth-a{uuid.uuid4().hex[:8]}CNTRL-{uuid.uuid4().hex}"})
    assert r.returncode == 0, r
    assert re.fullmatch(r"ssh root@readme-args\.\S+\n", r.stdout), r.stdout


def test_ci_step_fails_with_an_annotation_per_blocker(containers, tmp_path, doctor_step):
    ws = workspace(tmp_path, "readme-blocked")
    _devcontainer(containers, ws, tun=False)
    ci = run_script(tmp_path, doctor_step, cwd=ws)
    assert ci.returncode == 40, ci  # checks_failed
    assert "::error title=doctor tun::/dev/net/tun is missing" in ci.stdout
    assert "Fix: " in ci.stdout


def test_ci_step_names_an_unreachable_engine(tmp_path, doctor_step):
    ws = workspace(tmp_path, "readme-noengine")
    ci = run_script(tmp_path, doctor_step, cwd=ws, env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert ci.returncode == 40, ci
    assert ci.stdout.startswith("::error title=doctor engine::cannot reach the Docker engine"), ci


def test_ci_step_fails_with_the_error_when_doctor_cannot_run(tmp_path, doctor_step):
    ws = workspace(tmp_path, "readme-badconfig")
    (ws / "invoke.yaml").write_text("tailscale: [unclosed\n")
    ci = run_script(tmp_path, doctor_step, cwd=ws)
    assert ci.returncode == 3, ci  # config
    assert ci.stdout.startswith("::error title=doctor::cannot read the invoke.yaml"), ci
    assert "Fix: Fix the file's YAML syntax" in ci.stdout
