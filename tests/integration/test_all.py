"""`--all` (issue 10): every devcontainer at once; one that hangs or fails is its own
error row within --timeout and holds up no other row; `down --all` asks first."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.integration.test_readme_promises import new_key

pytestmark = pytest.mark.integration

# the probe runs `sh -c`: a container whose sh sleeps hangs; one without sh fails
HANG = "printf '#!/bin/bash\\nsleep 600\\n' > /tmp/hang && chmod 755 /tmp/hang && mv -f /tmp/hang /usr/bin/sh"
BREAK = "rm -f /usr/bin/sh"


# Every --all here is scoped with --label to this module's containers: other test runs
# may share the engine, and `down --all` must never touch their devcontainers.
SCOPE = f"devc-all-test={uuid.uuid4().hex[:8]}"
ONLY = ("--label", SCOPE)


def _label() -> dict[str, str]:
    key, _, value = SCOPE.partition("=")
    return {"devcontainer.local_folder": f"/tmp/devc-all-{uuid.uuid4().hex[:8]}", key: value}


def _spoil(c: Any, script: str) -> None:
    code, out = c.exec_run(["bash", "-c", script])
    assert code == 0, out


def test_status_all_rows_and_a_hung_and_a_broken_container(inv, containers):
    good = containers.start(labels=_label())
    r = inv("tailscale.up", "--container", good.name, "--hostname", "all-good", "--json", env={"TAILSCALE_AUTHKEY": new_key()})
    assert r.code == 0, r
    idle = containers.start(labels=_label())
    hung = containers.start(labels=_label())
    broken = containers.start(labels=_label())
    _spoil(hung, HANG)
    _spoil(broken, BREAK)

    # without concurrency and a deadline per row, the hung probe would hold the command for 600 s
    r = inv("tailscale.status", "--all", *ONLY, "--timeout", "3", "--json", timeout=120)
    assert r.code == 0, r
    rows = {d["container"]: d for d in r.doc["containers"]}
    g = rows[good.name]
    assert g["workspace"] == good.labels["devcontainer.local_folder"]
    assert (g["backend_state"], g["hostname"], g["online"]) == ("Running", "all-good", True)
    assert g["dns_name"].startswith("all-good.") and g["ips"] and "error" not in g
    assert rows[idle.name]["backend_state"] is None and rows[idle.name]["installed"] is True and "error" not in rows[idle.name]
    assert rows[hung.name]["error_kind"] == "timeout" and "within 3 s" in rows[hung.name]["error"], rows[hung.name]
    assert rows[broken.name]["error_kind"] == "tailscale_failed" and "/bin/sh" in rows[broken.name]["error"], rows[broken.name]
    for row in (rows[hung.name], rows[broken.name]):
        assert {"workspace", "container", "container_state", "hostname", "dns_name", "backend_state", "ips", "online"} <= row.keys()

    human = inv("tailscale.status", "--all", *ONLY, "--timeout", "3", env={"COLUMNS": "300"}, timeout=120)
    assert human.code == 0, human
    line = next(ln for ln in human.stdout.splitlines() if hung.name in ln)
    assert "did not answer within 3 s" in line, human.stdout


def test_down_all_refuses_without_a_terminal_and_without_yes(inv, containers):
    c = containers.start(labels=_label())
    r = inv("tailscale.up", "--container", c.name, "--hostname", "all-refuse", env={"TAILSCALE_AUTHKEY": new_key()})
    assert r.code == 0, r
    r = inv("tailscale.down", "--all", *ONLY, "--json")
    assert r.code == 2 and r.doc["error"]["kind"] == "usage" and "--yes" in r.doc["error"]["fix"], r
    r = inv("tailscale.status", "--container", c.name, "--json")
    assert r.code == 0 and r.doc["backend_state"] == "Running", r  # nothing was changed


def test_down_all_yes_stops_every_node_and_reports_the_broken_one(inv, containers):
    nodes = [containers.start(labels=_label()) for _ in range(2)]
    for i, c in enumerate(nodes):
        r = inv("tailscale.up", "--container", c.name, "--hostname", f"all-down-{i}", env={"TAILSCALE_AUTHKEY": new_key()})
        assert r.code == 0, r
    broken = containers.start(labels=_label())
    _spoil(broken, BREAK)
    outsider = containers.start(labels={"devcontainer.local_folder": f"/tmp/devc-out-{uuid.uuid4().hex[:8]}"})
    r = inv("tailscale.up", "--container", outsider.name, "--hostname", "all-outsider", env={"TAILSCALE_AUTHKEY": new_key()})
    assert r.code == 0, r
    r = inv("tailscale.down", "--all", *ONLY, "--yes", "--json", timeout=120)
    rows = {d["container"]: d for d in r.doc["containers"]}
    assert r.code == 26 and r.doc["ok"] is False, r  # the broken row's own exit code (tailscale_failed)
    assert rows[broken.name]["error_kind"] == "tailscale_failed"
    for c in nodes:
        assert rows[c.name]["ok"] is True and rows[c.name]["backend_state"] == "Stopped", rows[c.name]
        s = inv("tailscale.status", "--container", c.name, "--json")
        assert s.code == 5 and s.doc["backend_state"] == "Stopped", s
    # --label kept it to these: a devcontainer without the label is untouched
    assert outsider.name not in rows
    s = inv("tailscale.status", "--container", outsider.name, "--json")
    assert s.code == 0 and s.doc["backend_state"] == "Running", s


def test_down_all_asks_on_a_terminal_and_no_changes_nothing(containers):
    from tests.integration.test_terminal import on_a_terminal

    c = containers.start(labels=_label())
    code, text = on_a_terminal(["tailscale.up", "--container", c.name, "--hostname", "all-ask"], {"TAILSCALE_AUTHKEY": new_key(), "NO_COLOR": "1"})
    assert code == 0, text
    code, text = on_a_terminal(["tailscale.down", "--all", *ONLY], {"NO_COLOR": "1"}, answer=b"n\n")
    assert code == 1 and c.name in text and "not confirmed: nothing was changed" in text, text
    code, text = on_a_terminal(["tailscale.status", "--container", c.name], {"NO_COLOR": "1"})
    assert code == 0 and "Running" in text, text


def test_doctor_all_one_row_per_devcontainer(inv, containers):
    ok = containers.start(labels=_label())
    no_tun = containers.start(labels=_label(), tun=False)
    hung = containers.start(labels=_label())
    _spoil(hung, HANG)
    r = inv("tailscale.doctor", "--all", *ONLY, "--timeout", "5", "--json", timeout=120)
    rows = {d["container"]: d for d in r.doc["containers"]}
    assert r.code == 40 and r.doc["ok"] is False, r
    failed = [ch["name"] for ch in rows[no_tun.name]["checks"] if ch["status"] == "fail"]
    assert rows[no_tun.name]["ok"] is False and failed, rows[no_tun.name]
    assert rows[ok.name]["checks"] and not [ch for ch in rows[ok.name]["checks"] if ch["status"] == "fail"], rows[ok.name]
    assert rows[hung.name]["error_kind"] == "timeout", rows[hung.name]
