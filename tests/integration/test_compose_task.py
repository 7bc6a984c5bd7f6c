"""`compose`: check the fixtures, write the override, and prove it works with real `docker compose up`."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.conftest import unique

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "compose"
FIXTURE_IMAGE = "mcr.microsoft.com/devcontainers/base:ubuntu"
ALL = {"tun-device", "cap-net-admin", "cap-net-raw", "state-volume"}
BLOCKING = {"engine", "container", "running", "tun", "net_admin", "net_raw", "tailscale", "tailscaled"}


def copy_fixture(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(FIXTURES / name, target)
    return target


@pytest.mark.parametrize(
    ("fixture", "missing"),
    [
        ("all-present", set()),
        ("bare", ALL),
        ("missing-tun", {"tun-device"}),
        ("missing-net-raw", {"cap-net-raw"}),
        ("anonymous-volume", {"state-volume"}),
        ("multi-file", set()),
        ("image-based", set()),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_check_reports_exactly_the_missing_entries(inv, fixture, missing):
    r = inv("tailscale.compose", "--check", "--workspace", str(FIXTURES / fixture), "--json")
    assert r.code == (40 if missing else 0), r
    doc = r.doc
    assert doc["ok"] is (not missing)
    assert [q["key"] for q in doc["requirements"]] == ["tun-device", "cap-net-admin", "cap-net-raw", "state-volume"]
    assert {q["key"] for q in doc["requirements"] if not q["present"]} == missing
    assert all(q["seen"] and q["fix"] for q in doc["requirements"])


def test_check_table_for_people(inv):
    r = inv("tailscale.compose", "--check", "--workspace", str(FIXTURES / "missing-tun"), env={"COLUMNS": "250"})
    assert r.code == 40, r
    assert "MISSING" in r.stdout and "devices: [/dev/fuse]" in r.stdout and "/dev/net/tun:/dev/net/tun" in r.stdout
    assert "missing tun-device" in r.stderr and "Traceback" not in r.stderr


def test_render_prints_the_override_or_the_runargs_snippet(inv):
    compose = inv("tailscale.compose", "--workspace", str(FIXTURES / "bare"))
    assert compose.code == 0, compose
    assert "/dev/net/tun:/dev/net/tun" in compose.stdout and "tailscale-state:/var/lib/tailscale" in compose.stdout
    assert "--write" in compose.stderr
    image = inv("tailscale.compose", "--workspace", str(FIXTURES / "image-based"), "--json")
    assert image.code == 0, image
    assert json.loads(image.doc["text"])["runArgs"] == ["--device=/dev/net/tun", "--cap-add=NET_ADMIN", "--cap-add=NET_RAW"]


def test_write_refuses_to_overwrite_without_force(inv, tmp_path):
    ws = copy_fixture("bare", tmp_path)
    target = ws / ".devcontainer" / "docker-compose.tailscale.yml"
    first = inv("tailscale.compose", "--workspace", str(ws), "--write", str(target), "--json")
    assert first.code == 0, first
    assert first.doc["docker_compose_file"] == '"dockerComposeFile": ["docker-compose.yml", "docker-compose.tailscale.yml"]'
    target.write_text("# mine\n")
    again = inv("tailscale.compose", "--workspace", str(ws), "--write", str(target), "--json")
    assert again.code == 2, again
    assert "already exists" in again.doc["error"]["message"] and "--force" in again.doc["error"]["fix"]
    assert target.read_text() == "# mine\n"
    forced = inv("tailscale.compose", "--workspace", str(ws), "--write", str(target), "--force")
    assert forced.code == 0, forced
    assert "/dev/net/tun" in target.read_text()
    assert '"dockerComposeFile": ["docker-compose.yml", "docker-compose.tailscale.yml"]' in forced.stdout
    # never edits the user's files
    assert (ws / ".devcontainer" / "devcontainer.json").read_text() == (FIXTURES / "bare" / ".devcontainer" / "devcontainer.json").read_text()


def test_write_refuses_a_fifo_and_replaces_a_symlink_itself(inv, tmp_path):
    """--write onto a FIFO is a usage error naming it (it used to hang, waiting for a reader); --force onto
    a symlink replaces the link with the file, never writing through it to wherever it points."""
    ws = copy_fixture("bare", tmp_path)
    fifo = tmp_path / "pipe.yml"
    os.mkfifo(fifo)
    for extra in ((), ("--force",)):
        r = inv("tailscale.compose", "--workspace", str(ws), "--write", str(fifo), *extra, "--json", timeout=60)
        assert r.code == 2, r
        assert str(fifo) in r.doc["error"]["message"] and "not a regular file" in r.doc["error"]["message"], r.doc
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    elsewhere = tmp_path / "elsewhere.yml"
    elsewhere.write_text("# someone else's file\n")
    link = tmp_path / "link.yml"
    link.symlink_to(elsewhere)
    refused = inv("tailscale.compose", "--workspace", str(ws), "--write", str(link), "--json")
    assert refused.code == 2 and "already exists" in refused.doc["error"]["message"], refused
    forced = inv("tailscale.compose", "--workspace", str(ws), "--write", str(link), "--force")
    assert forced.code == 0, forced
    assert elsewhere.read_text() == "# someone else's file\n"
    assert not link.is_symlink() and "/dev/net/tun" in link.read_text()


def test_write_is_for_compose_only_and_not_with_check(inv, tmp_path):
    image = inv("tailscale.compose", "--workspace", str(FIXTURES / "image-based"), "--write", str(tmp_path / "x.yml"))
    assert image.code == 2 and "runArgs" in image.stderr, image
    both = inv("tailscale.compose", "--workspace", str(FIXTURES / "bare"), "--write", str(tmp_path / "x.yml"), "--check")
    assert both.code == 2, both
    assert not (tmp_path / "x.yml").exists()


def test_written_override_makes_a_compose_devcontainer_pass_doctor(inv, images, tmp_path):
    standin, _ = images
    ws = copy_fixture("bare", tmp_path)
    base = ws / ".devcontainer" / "docker-compose.yml"
    base.write_text(
        base.read_text()
        .replace(FIXTURE_IMAGE, standin)
        .replace("    command: sleep infinity\n", "    command: sleep infinity\n    network_mode: none\n    init: true\n")
    )
    wrote = inv("tailscale.compose", "--workspace", str(ws), "--write", str(ws / ".devcontainer"), "--json")
    assert wrote.code == 0, wrote
    override = Path(wrote.doc["path"])
    assert override == ws / ".devcontainer" / "docker-compose.tailscale.yml"

    # what the user does next: add it as the last dockerComposeFile entry; --check now agrees
    config = ws / ".devcontainer" / "devcontainer.json"
    config.write_text(config.read_text().replace('"docker-compose.yml"', '["docker-compose.yml", "docker-compose.tailscale.yml"]'))
    checked = inv("tailscale.compose", "--check", "--workspace", str(ws), "--json")
    assert checked.code == 0, checked

    project = unique("devc-compose").replace("-", "_").lower()
    compose = ["docker", "compose", "-p", project, "-f", str(base), "-f", str(override)]
    try:
        subprocess.run([*compose, "up", "-d"], check=True, capture_output=True, timeout=60)
        cid = subprocess.run([*compose, "ps", "-q", "app"], check=True, capture_output=True, text=True, timeout=30).stdout.strip()
        assert cid
        r = inv("tailscale.doctor", "--container", cid, "--workspace", str(ws), "--json")
        assert r.code == 0, r
        got = {c["name"]: c for c in r.doc["checks"]}
        assert {n: got[n]["status"] for n in BLOCKING} == {n: "pass" for n in BLOCKING}, r.doc
        assert got["state_volume"]["status"] == "pass"
        assert f"named volume {project}_tailscale-state at /var/lib/tailscale" in got["state_volume"]["seen"]
        assert got["config"]["status"] == "pass"
        # and once connected, every check passes
        connected = inv("tailscale.up", "--container", cid, "--hostname", "composed", "--json", env={"TAILSCALE_AUTHKEY": f"tskey-auth-c{project[-6:]}CNTRL-0123456789abcdef"})
        assert connected.code == 0, connected
        r = inv("tailscale.doctor", "--container", cid, "--workspace", str(ws), "--hostname", "composed", "--json")
        assert r.code == 0, r
        assert {c["name"]: c["status"] for c in r.doc["checks"]} == {c["name"]: "pass" for c in r.doc["checks"]}, r.doc
    finally:
        subprocess.run([*compose, "down", "-v", "--timeout", "1"], check=False, capture_output=True, timeout=60)
