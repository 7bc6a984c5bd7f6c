"""`state.show/backup/restore/reset` against a real engine and the stand-in."""

from __future__ import annotations

import base64
import io
import json
import re
import stat
import tarfile
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import RUN_ID, TEST_LABEL, logins, unique
from tests.support.archives import foreign_tar

pytestmark = pytest.mark.integration

STATE_DIR = "/var/lib/tailscale"


def new_key() -> str:
    return f"tskey-auth-{uuid.uuid4().hex[:10]}CNTRL-{uuid.uuid4().hex}"


def up(inv, c, hostname, key=None):
    r = inv("tailscale.up", "--container", c.name, "--hostname", hostname, "--json", env={"TAILSCALE_AUTHKEY": key} if key else {})
    assert r.code == 0, r
    return r.doc


def state(inv, c, *args, **kw):
    return inv(f"tailscale.state.{args[0]}", *args[1:], "--container", c.name, **kw)


def plain(containers, **kw):
    """A running stand-in container with mounts of our choosing, removed with the others."""
    c = containers.client.containers.run(
        containers.standin, ["sleep", "infinity"], name=unique(), detach=True, network_mode="none",
        labels={TEST_LABEL: RUN_ID}, init=True, **kw,
    )
    containers.created.append(c)
    return c


def sh(c, script: str) -> str:
    r = c.exec_run(["sh", "-c", script])
    return r.output.decode()


def profile(data: bytes | str) -> dict:
    """The current profile's entry of a state file in tailscaled's layout (base64 values)."""
    doc = json.loads(data)
    cur = base64.b64decode(doc["_current-profile"]).decode()
    return json.loads(base64.b64decode(doc[f"profile-{cur}"]))


def identity(c) -> dict:
    text = sh(c, f"cat {STATE_DIR}/tailscaled.state")
    entry = profile(text)
    return {"NodeID": entry["NodeID"], "NodePrivateKey": entry["NodePrivateKey"], "MachineKey": json.loads(text)["_machinekey"]}


def fingerprint(c) -> str:
    """Everything in the state directory with its checksum, and whether tailscaled runs."""
    return sh(c, f"cd {STATE_DIR} && find . -type f -exec sha256sum {{}} + | sort; pgrep -x tailscaled >/dev/null && echo daemon")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_show_reports_each_kind_of_mount(inv, containers, tmp_path):
    named = containers.start()
    vol = containers.volumes[-1]
    anonymous = plain(containers, volumes=[STATE_DIR])
    bound = plain(containers, volumes={str(tmp_path): {"bind": "/var/lib", "mode": "rw"}})
    bare = plain(containers)

    r = state(inv, named, "show", "--json")
    assert r.code == 0, r
    m = r.doc["mount"]
    assert (m["kind"], m["name"], m["destination"], m["driver"], m["persistent"]) == ("volume", vol, STATE_DIR, "local", True)
    assert m["created"] and r.doc["warnings"] == []
    assert r.doc["has_identity"] is False and r.doc["daemon_running"] is False and r.doc["node"] is None

    r = state(inv, anonymous, "show", "--json")
    assert r.code == 0, r
    assert r.doc["mount"]["kind"] == "anonymous" and re.fullmatch("[0-9a-f]{64}", r.doc["mount"]["name"])
    assert "anonymous volume" in r.doc["warnings"][0] and "tailscale-state:/var/lib/tailscale" in r.doc["warnings"][0]

    r = state(inv, bound, "show", "--json")
    assert r.code == 0, r
    assert (r.doc["mount"]["kind"], r.doc["mount"]["source"], r.doc["mount"]["destination"]) == ("bind", str(tmp_path), "/var/lib")
    assert r.doc["warnings"] == []

    r = state(inv, bare, "show", "--json")
    assert r.code == 0, r
    assert r.doc["mount"]["kind"] == "none" and "nothing is mounted" in r.doc["warnings"][0]

    r = state(inv, named, "show")
    assert r.code == 0, r
    assert f"named volume {vol}" in r.stdout and "\x1b[" not in r.stdout


def test_backup_reset_restore_brings_the_same_node_back(inv, containers, tmp_path):
    c = containers.start()
    node_id = up(inv, c, "keeper", key=new_key())["node"]["node_id"]
    before = identity(c)

    r = state(inv, c, "show", "--json")
    assert r.code == 0, r
    assert (r.doc["has_identity"], r.doc["node_id"], r.doc["hostname"], r.doc["daemon_running"]) == (True, node_id, "keeper", True)

    file = tmp_path / "keeper.tar"
    r = state(inv, c, "backup", "--output", str(file), "--json")
    assert r.code == 0, r
    assert r.doc["path"] == str(file) and r.doc["has_identity"] and r.doc["warnings"] == []
    assert mode(file) == 0o600 and "private keys" in r.stderr
    saved = file.read_bytes()

    r = state(inv, c, "backup", "--output", str(file), "--json")  # never overwrites without --force
    assert r.code == 2 and "--force" in r.doc["error"]["fix"], r
    assert file.read_bytes() == saved
    r = state(inv, c, "backup", "--output", str(file), "--force", "--json")
    assert r.code == 0, r
    assert mode(file) == 0o600

    r = state(inv, c, "reset", "--yes", "--no-backup", "--no-logout", "--json")
    assert r.code == 0, r
    assert r.doc["node_id"] == node_id and r.doc["logged_out"] is False and r.doc["backup"] is None
    assert sh(c, f"ls -A {STATE_DIR}; pgrep -x tailscaled") == ""

    # a new node in its place; restoring under its running daemon is refused
    other = up(inv, c, "interim", key=new_key())["node"]["node_id"]
    assert other != node_id
    now = fingerprint(c)
    r = state(inv, c, "restore", str(file), "--json")
    assert r.code == 30 and "--stop-daemon" in r.doc["error"]["fix"], r
    assert fingerprint(c) == now

    r = state(inv, c, "restore", str(file), "--stop-daemon", "--json")
    assert r.code == 0, r
    assert r.doc["node_id"] == node_id and r.doc["node"]["backend_state"] == "Running" and r.doc["daemon_restarted"]
    assert identity(c) == before
    assert len(logins(containers.control)) == 2


def test_backup_output_ending_in_slash_is_a_folder(inv, containers, tmp_path):
    """Like `cp f dir/`: an existing folder gets the default name inside; a path ending in / that is not a
    folder is refused (exit 2, nothing created) rather than written as a file named like a folder."""
    c = containers.start()
    up(inv, c, "slashy", key=new_key())
    folder = tmp_path / "backups"
    folder.mkdir()
    r = state(inv, c, "backup", "--output", f"{folder}/", "--json")
    assert r.code == 0, r
    written = Path(r.doc["path"])
    assert written.parent == folder and written.name.startswith("tailscale-state-") and written.name.endswith(".tar"), r.doc
    assert mode(written) == 0o600
    for missing in ("newdir/", "b.tar/"):
        r = state(inv, c, "backup", "--output", f"{tmp_path}/{missing}", "--json")
        assert r.code == 2, r
        assert f"{tmp_path}/{missing}" in r.doc["error"]["message"] and "not a folder" in r.doc["error"]["message"], r.doc
        assert "mkdir" in r.doc["error"]["fix"], r.doc
        assert not (tmp_path / missing.rstrip("/")).exists()
    r = state(inv, c, "reset", "--yes", "--output", f"{tmp_path}/gone/", "--json")
    assert r.code == 2 and "not a folder" in r.doc["error"]["message"], r
    assert sh(c, f"test -s {STATE_DIR}/tailscaled.state && echo kept") == "kept\n", "reset went ahead without its backup"


def test_reset_asks_first_then_backs_up_and_logs_out(inv, containers, tmp_path):
    c = containers.start()
    node_id = up(inv, c, "resetme", key=new_key())["node"]["node_id"]
    now = fingerprint(c)

    r = state(inv, c, "reset", "--json")  # stdin is not a terminal
    assert r.code == 2 and r.doc["error"]["kind"] == "usage" and "--yes" in r.doc["error"]["fix"], r
    assert fingerprint(c) == now

    r = state(inv, c, "reset", "--yes", "--output", str(tmp_path), "--json")
    assert r.code == 0, r
    assert r.doc["node_id"] == node_id and r.doc["logged_out"] is True
    saved = Path(r.doc["backup"])
    assert saved.parent == tmp_path and mode(saved) == 0o600
    assert sh(c, f"ls -A {STATE_DIR}; pgrep -x tailscaled") == ""
    with tarfile.open(saved) as tf:
        assert profile(tf.extractfile("tailscale/tailscaled.state").read())["NodeID"] == node_id  # taken before the logout


def test_stopped_container_show_backup_and_restore(inv, containers, tmp_path):
    a = containers.start()
    node_id = up(inv, a, "sleeper", key=new_key())["node"]["node_id"]
    a.stop(timeout=1)

    r = state(inv, a, "show", "--json")
    assert r.code == 0, r
    assert r.doc["container_status"] == "exited" and r.doc["has_identity"] is True and r.doc["node"] is None

    r = state(inv, a, "backup", "--json", cwd=tmp_path)  # the default name, in the current folder
    assert r.code == 0, r
    file = Path(r.doc["path"])
    assert file.parent == tmp_path and re.fullmatch(rf"tailscale-state-{re.escape(a.name)}-\d{{8}}T\d{{6}}Z\.tar", file.name)
    assert mode(file) == 0o600

    r = state(inv, a, "reset", "--yes", "--json")
    assert r.code == 13, r

    b = containers.start()
    b.stop(timeout=1)
    r = state(inv, b, "restore", str(file), "--json")
    assert r.code == 0, r
    b.start()
    assert up(inv, b, "sleeper")["node"]["node_id"] == node_id  # no key: the restored identity
    assert len(logins(containers.control)) == 1


def tar_of(*entries) -> bytes:
    """(name, kind, payload/link) with kind f (file), l (symlink), h (hard link), c (char device)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, kind, extra in entries:
            info = tarfile.TarInfo(name)
            info.mode = 0o600
            if kind == "f":
                info.size = len(extra)
                tf.addfile(info, io.BytesIO(extra))
                continue
            info.type = {"l": tarfile.SYMTYPE, "h": tarfile.LNKTYPE, "c": tarfile.CHRTYPE}[kind]
            if kind in "lh":
                info.linkname = extra
            tf.addfile(info)
    return buf.getvalue()


# a state file with an identity, in tailscaled's layout: profile a1b2 is current, listed, and present
STATE = (
    b'{\n  "_current-profile": "YTFiMg==",\n  "_machinekey": "cHJpdmtleTphYmM=",\n'
    b'  "_profiles": "eyJhMWIyIjogeyJJRCI6ICJhMWIyIiwgIktleSI6ICJwcm9maWxlLWExYjIifX0=",\n  "profile-a1b2": "e30="\n}'
)
BAD = {
    "absolute": ([("tailscale/tailscaled.state", "f", STATE), ("/etc/cron.d/evil", "f", b"* * * * * root id\n")], "/etc/cron.d/evil", ()),
    "dotdot": ([("tailscale/tailscaled.state", "f", STATE), ("tailscale/../../../etc/evil", "f", b"x")], "tailscale/../../../etc/evil", ()),
    "symlink": ([("tailscale/tailscaled.state", "l", "/etc/shadow")], "tailscale/tailscaled.state", ()),
    "hardlink": ([("tailscale/tailscaled.state", "f", STATE), ("tailscale/x", "h", "etc/shadow")], "tailscale/x", ()),
    "device": ([("tailscale/tailscaled.state", "f", STATE), ("tailscale/mem", "c", None)], "tailscale/mem", ()),
    "oversize": ([("tailscale/tailscaled.state", "f", STATE), ("tailscale/big", "f", b"y" * 4096)], "tailscale/big", ("--max-size", "1K")),
}


def test_unsafe_archives_are_refused_and_change_nothing(inv, containers, tmp_path):
    c = containers.start()
    node_id = up(inv, c, "guarded", key=new_key())["node"]["node_id"]
    now = fingerprint(c)
    assert "daemon" in now
    for name, (entries, member, extra) in BAD.items():
        file = tmp_path / f"{name}.tar"
        file.write_bytes(tar_of(*entries))
        r = state(inv, c, "restore", str(file), "--stop-daemon", *extra, "--json")
        assert r.code == 31, (name, r)
        assert r.doc["error"]["kind"] == "unsafe_archive" and repr(member) in r.doc["error"]["message"], (name, r)
        assert fingerprint(c) == now, name
    assert sh(c, "ls /etc/cron.d/evil /etc/evil 2>/dev/null") == ""
    st = inv("tailscale.status", "--container", c.name, "--json")
    assert st.code == 0 and st.doc["node_id"] == node_id


# --- review fixes ----------------------------------------------------------------


FOREIGN = [("tailscale", 0o755, None), ("tailscale/certs", 0o777, None), ("tailscale/tailscaled.state", 0o644, STATE), ("tailscale/certs/a.key", 0o666, b"key")]


def owners_and_modes(c) -> set[str]:
    return set(sh(c, f"find {STATE_DIR} -exec stat -c '%n %u %g %a' {{}} +").split("\n")) - {""}


ROOT_PRIVATE = {
    f"{STATE_DIR} 0 0 700",
    f"{STATE_DIR}/certs 0 0 700",
    f"{STATE_DIR}/certs/a.key 0 0 600",
    f"{STATE_DIR}/tailscaled.state 0 0 600",
}


def test_restore_writes_root_owned_private_files(inv, containers, tmp_path):
    file = tmp_path / "foreign.tar"
    file.write_bytes(foreign_tar(FOREIGN))
    file.chmod(0o600)
    running = containers.start()
    stopped = containers.start()
    stopped.stop(timeout=1)
    for c in (running, stopped):
        r = state(inv, c, "restore", str(file), "--json")
        assert r.code == 0, r
    stopped.start()
    assert owners_and_modes(running) == ROOT_PRIVATE
    assert owners_and_modes(stopped) == ROOT_PRIVATE  # the state directory itself too, through put_archive


def test_a_failed_restore_restarts_the_daemon_and_leaves_no_staging_folder(inv, containers, tmp_path):
    # a read-only mount inside the state directory: the swap fails after tailscaled was stopped
    ro = tmp_path / "certs"
    ro.mkdir()
    c = containers.start(binds={str(ro): f"{STATE_DIR}/certs"})
    up(inv, c, "fragile", key=new_key())
    node_id = inv("tailscale.status", "--container", c.name, "--json").doc["node_id"]
    file = tmp_path / "b.tar"
    file.write_bytes(tar_of(("tailscale/tailscaled.state", "f", STATE)))
    r = state(inv, c, "restore", str(file), "--stop-daemon", "--json")
    assert r.code == 30 and "replacing" in r.doc["error"]["message"], r
    assert "previous state is back" in r.doc["error"]["message"]
    assert sh(c, "pgrep -x tailscaled") != ""
    assert ".devc-restore-" not in sh(c, f"ls -A {STATE_DIR}")
    # nothing lost half-way: the node that was there comes back
    st = inv("tailscale.status", "--container", c.name, "--json")
    assert st.doc["node_id"] == node_id


def hold_up_lock(c, then: str) -> None:
    """Hold `up`'s lock for 4 s in the container, as a concurrent `up` would, then run ``then``."""
    script = f"exec 9>/run/devc-tasks-tailscale.lock; flock 9; touch /tmp/held; sleep 4; {then}; touch /tmp/released"
    c.exec_run(["sh", "-c", script], detach=True)
    for _ in range(50):
        if sh(c, "ls /tmp/held 2>/dev/null"):
            return
        time.sleep(0.1)
    raise AssertionError("the lock holder did not start")


def wait_released(c) -> None:
    for _ in range(100):
        if sh(c, "ls /tmp/released 2>/dev/null"):
            return
        time.sleep(0.1)
    raise AssertionError("the lock holder did not finish")


def test_restore_and_reset_wait_for_ups_lock(inv, containers, tmp_path):
    c = containers.start()
    # reset: an `up` holding the lock writes the state last; reset must empty the folder after it
    sh(c, f"mkdir -p {STATE_DIR} && echo old > {STATE_DIR}/tailscaled.state")
    hold_up_lock(c, f"echo up > {STATE_DIR}/tailscaled.state")
    r = state(inv, c, "reset", "--yes", "--no-backup", "--no-logout", "--json")
    assert r.code == 0, r
    wait_released(c)
    assert sh(c, f"ls -A {STATE_DIR}") == ""

    # restore: the swap comes after the `up` that held the lock, so the backup's identity wins
    sh(c, "rm -f /tmp/held /tmp/released")
    file = tmp_path / "b.tar"
    file.write_bytes(tar_of(("tailscale/tailscaled.state", "f", STATE)))
    file.chmod(0o600)
    hold_up_lock(c, f"echo up > {STATE_DIR}/tailscaled.state")
    r = state(inv, c, "restore", str(file), "--json")
    assert r.code == 0, r
    wait_released(c)
    assert sh(c, f"cat {STATE_DIR}/tailscaled.state").encode() == STATE


def test_reset_refuses_when_its_backup_could_not_be_restored(inv, containers, tmp_path):
    c = containers.start()
    c.put_archive("/var/lib", tar_of(("tailscale/tailscaled.state", "f", STATE)))  # an identity worth keeping
    sh(c, f"ln -s /etc/passwd {STATE_DIR}/link")
    now = fingerprint(c)
    r = state(inv, c, "reset", "--yes", "--output", str(tmp_path), "--json")
    assert r.code == 30 and "nothing was deleted" in r.doc["error"]["message"] and "symbolic link" in r.doc["error"]["message"], r
    assert "--no-backup" in r.doc["error"]["fix"]
    assert fingerprint(c) == now and sh(c, f"readlink {STATE_DIR}/link") == "/etc/passwd\n"
    r = state(inv, c, "reset", "--yes", "--no-backup", "--json")  # told explicitly: goes ahead
    assert r.code == 0, r
    assert sh(c, f"ls -A {STATE_DIR}") == ""
