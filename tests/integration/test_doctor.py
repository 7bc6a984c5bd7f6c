"""`doctor` against a real engine and the stand-in: each problem named with its fix, exit 40 when it blocks `up`."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.conftest import unique

pytestmark = pytest.mark.integration

BLOCKING_EXIT = 40


def new_key() -> str:
    return f"tskey-auth-{uuid.uuid4().hex[:10]}CNTRL-{uuid.uuid4().hex}"


def doctor(inv, *args, env=None):
    return inv("tailscale.doctor", "--json", *args, env=env)


def statuses(run) -> dict[str, str]:
    return {c["name"]: c["status"] for c in run.doc["checks"]}


def check(run, name: str) -> dict:
    return next(c for c in run.doc["checks"] if c["name"] == name)


def test_healthy_connected_container_passes_everything(inv, containers, tmp_path: Path):
    c = containers.start()
    key = new_key()
    up = inv("tailscale.up", "--container", c.name, "--hostname", "doc-healthy", "--json", env={"TAILSCALE_AUTHKEY": key})
    assert up.code == 0, up
    (tmp_path / ".devcontainer").mkdir()
    (tmp_path / ".devcontainer" / "devcontainer.json").write_text(json.dumps({"name": "healthy", "image": "x"}))

    r = doctor(inv, "--container", c.name, "--workspace", str(tmp_path), "--hostname", "doc-healthy", env={"TAILSCALE_AUTHKEY": key})
    assert r.code == 0, r
    assert r.doc["ok"] is True
    assert statuses(r) == {name: "pass" for name in statuses(r)}, r.doc
    assert "found by --container" in check(r, "container")["seen"]
    assert check(r, "dns_name")["seen"].startswith("doc-healthy.")
    assert check(r, "auth_key")["seen"] == "from TAILSCALE_AUTHKEY (host)"
    assert key not in r.stdout + r.stderr


@pytest.mark.parametrize(
    ("start", "name", "status", "seen", "fix", "code"),
    [
        ({"tun": False}, "tun", "fail", "/dev/net/tun is missing", "/dev/net/tun:/dev/net/tun", BLOCKING_EXIT),
        ({"caps": False}, "net_admin", "fail", "not effective", "- NET_ADMIN", BLOCKING_EXIT),
        ({"state": None}, "state_volume", "warn", "nothing is mounted at /var/lib/tailscale", "tailscale-state:/var/lib/tailscale", 0),
        ({"tailscale": False}, "tailscale", "fail", "not installed", "Install Tailscale", BLOCKING_EXIT),
    ],
    ids=["no-tun", "no-net-admin", "no-state-volume", "not-installed"],
)
def test_each_problem_is_named_with_its_fix(inv, containers, start, name, status, seen, fix, code):
    c = containers.start(**start)
    r = doctor(inv, "--container", c.name)
    assert r.code == code, r
    assert r.doc["ok"] is (code == 0)
    got = check(r, name)
    assert got["status"] == status, got
    assert seen in got["seen"] and fix in got["fix"], got
    assert "Traceback" not in r.stderr
    others = {n: s for n, s in statuses(r).items() if s == "fail"}
    if name == "tailscale":
        assert others == {"tailscale": "fail", "tailscaled": "fail"}
    elif code:
        assert others == {name: "fail"}
    else:
        assert others == {}


def test_human_table_names_the_fix(inv, containers):
    c = containers.start(tun=False)
    r = inv("tailscale.doctor", "--container", c.name, env={"COLUMNS": "250"})
    assert r.code == BLOCKING_EXIT, r
    assert "TUN device" in r.stdout and "FAIL" in r.stdout and "/dev/net/tun:/dev/net/tun" in r.stdout
    assert "doctor: failed: TUN device" in r.stderr
    assert "Traceback" not in r.stderr


def test_stopped_container_reports_what_it_can(inv, containers):
    c = containers.start()
    c.stop(timeout=1)
    r = doctor(inv, "--container", c.name)
    assert r.code == BLOCKING_EXIT, r
    got = statuses(r)
    assert (got["engine"], got["container"], got["running"], got["state_volume"]) == ("pass", "pass", "fail", "pass")
    assert "exited" in check(r, "running")["seen"] and "docker start" in check(r, "running")["fix"]
    assert got["tun"] == "skip" and "not running" in check(r, "tun")["seen"]
    assert "Traceback" not in r.stderr


def test_missing_container_and_unreachable_engine(inv):
    missing = doctor(inv, "--container", unique("nope"))
    assert missing.code == BLOCKING_EXIT, missing
    assert check(missing, "container")["status"] == "fail" and "docker ps -a" in check(missing, "container")["fix"]
    assert check(missing, "tun")["status"] == "skip"
    assert "Traceback" not in missing.stderr

    nowhere = doctor(inv, "--container", "x", "--host", "tcp://127.0.0.1:9")
    assert nowhere.code == BLOCKING_EXIT, nowhere
    got = statuses(nowhere)
    assert got["engine"] == "fail" and got["container"] == "skip" and got["tailscale"] == "skip"
    assert "Traceback" not in nowhere.stderr
