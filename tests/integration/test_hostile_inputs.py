"""Inputs a hostile (or careless) user gives, through the real tasks, engine and stand-in:
a key where a path belongs, endless or binary key files, bad tags and hostnames,
devcontainer.json escapes and nesting, backup archives with odd modes and times, and
restores whose swap fails half-way. Each ends in a clear message and its documented exit
code, and never loses the node's identity."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from tests.conftest import logins
from tests.integration.test_state import STATE as IDENTITY_STATE
from tests.integration.test_state import STATE_DIR, identity, owners_and_modes, plain, profile, sh, state
from tests.integration.test_up import new_key, up
from tests.support.archives import foreign_tar
from tests.support.limits import memory_cap

pytestmark = pytest.mark.integration

STATE = IDENTITY_STATE  # a state file with an identity, in tailscaled's layout


# --- the key -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["--json", "human"])
def test_a_key_given_as_the_key_file_is_never_echoed(inv, containers, mode):
    c = containers.start()
    key = new_key()
    r = inv("tailscale.up", "--container", c.name, "--authkey-file", key, *(["--json"] if mode == "--json" else []))
    assert r.code == 2, r
    assert key not in r.stdout and key not in r.stderr
    assert "looks like the key itself" in r.stdout + r.stderr and "revoke" in r.stdout + r.stderr
    if mode == "--json":
        assert r.doc["error"]["kind"] == "usage"
    assert logins(containers.control) == []


@pytest.mark.parametrize(
    "content, words",
    [("/dev/zero", "longer than 4096 bytes"), (b"tskey-auth-\xff\xfe\n", "not UTF-8 text"), (b"tskey-auth-a\x00b\n", "control or non-ASCII")],
    ids=["dev-zero", "not-utf8", "nul"],
)
def test_key_files_that_hold_no_key(inv, containers, tmp_path, content, words):
    """Bounded, strict reads: a clear usage error (exit 2), no traceback, nothing started."""
    c = containers.start()
    path = content if isinstance(content, str) else str(tmp_path / "key")
    if not isinstance(content, str):
        Path(path).write_bytes(content)
    with memory_cap():  # the task's process inherits the cap: an endless read fails instead of eating the machine
        r = inv("tailscale.up", "--container", c.name, "--hostname", "nokey", "--authkey-file", path, "--json", timeout=60)
    assert r.code == 2 and words in r.doc["error"]["message"], r
    assert "Traceback" not in r.stderr and "tskey-auth-a" not in r.stdout + r.stderr
    assert logins(containers.control) == []


def test_stdin_that_never_ends_is_read_with_a_bound(inv, containers):
    c = containers.start()
    r = inv("tailscale.up", "--container", c.name, "--hostname", "nokey", "--authkey-file", "-", "--json", stdin="x" * 1_000_000, timeout=60)
    assert r.code == 2 and "longer than 4096 bytes" in r.doc["error"]["message"], r


# --- options checked before anything runs -----------------------------------------------


@pytest.mark.parametrize("tags", ["tag:a b", "tag:", "tag:9", "dev"])
def test_bad_tags_are_a_usage_error(inv, containers, tags):
    c = containers.start()
    r = up(inv, c, "--hostname", "tags", "--advertise-tags", tags, key=new_key())
    assert r.code == 2 and r.doc["error"]["kind"] == "usage" and "is not a tag" in r.doc["error"]["message"], r
    assert logins(containers.control) == []


def test_restart_hostname_follows_the_one_hostname_rule(inv, containers):
    """`restart --hostname` sanitizes like `up` (warning, then the clean name) and does not
    warn about a collision that is only the difference between the raw and the clean name."""
    c = containers.start()
    assert up(inv, c, "--hostname", "plain", key=new_key()).code == 0
    r = inv("tailscale.restart", "--container", c.name, "--hostname", "My Host!", "--json")
    assert r.code == 0, r
    assert r.doc["node"]["hostname"] == "my-host" and r.doc["node"]["dns_name"].startswith("my-host.")
    assert "not a valid hostname" in r.stderr and "using 'my-host'" in r.stderr
    assert not any("another node" in w for w in r.doc["warnings"]), r.doc["warnings"]
    long = inv("tailscale.restart", "--container", c.name, "--hostname", "x" * 100, "--json")
    assert long.code == 0 and long.doc["node"]["hostname"] == "x" * 63, long
    assert not any("another node" in w for w in long.doc["warnings"])
    assert len(logins(containers.control)) == 1



@pytest.mark.parametrize("where", ["container-env", "host-env", "flag"])
def test_an_auth_key_as_the_hostname_is_refused_never_echoed(inv, containers, where):
    """A key pasted into TAILSCALE_HOSTNAME would become the node's name, seen by the whole tailnet."""
    key = new_key()
    c = containers.start(env={"TAILSCALE_HOSTNAME": key} if where == "container-env" else None)
    env = {"TAILSCALE_HOSTNAME": key} if where == "host-env" else {}
    args = ["--hostname", key] if where == "flag" else []
    r = inv("tailscale.up", "--container", c.name, "--json", *args, env={**env, "TAILSCALE_AUTHKEY": new_key()})
    assert r.code == 2 and "looks like an auth key" in r.doc["error"]["message"], r
    assert key not in r.stdout + r.stderr
    assert logins(containers.control) == []


@pytest.mark.parametrize("value", ["/", "../images", "x/../../images", "../images/alpine"])
def test_a_container_value_that_is_no_name_is_not_found(inv, value):
    """docker-py puts --container into the URL as is: `../images` would read GET /images/json
    and end as an unexpected error quoting the Engine's whole list; it is no container name."""
    r = inv("tailscale.status", "--container", value, "--json")
    assert r.code == 11 and r.doc["error"]["kind"] == "container_not_found", r
    assert "Can't create" not in r.stdout + r.stderr and "sha256:" not in r.stdout + r.stderr

# --- devcontainer.json -------------------------------------------------------------------


def _workspace(tmp_path: Path, text: str) -> Path:
    ws = tmp_path / "proj"
    (ws / ".devcontainer").mkdir(parents=True)
    (ws / ".devcontainer" / "devcontainer.json").write_text(text, encoding="utf-8")
    return ws


def test_devcontainer_json_with_surrogate_pair_escapes(inv, tmp_path):
    """Valid JSON the devcontainer CLI reads: one emoji, written as a UTF-16 pair."""
    ws = _workspace(tmp_path, '{\n  // the emoji is escaped\n  "name": "caf\\u00e9 \\ud83d\\ude00",\n  "image": "x",\n}\n')
    r = inv("tailscale.hostname", "--workspace", str(ws), "--json")
    assert r.code == 0, r
    assert r.doc["hostname"].startswith("cafe-devc-") and r.doc["project_source"] == "devcontainer.json name"


@pytest.mark.parametrize(
    "text, words",
    [
        ('{"name": "\\ud83d", "image": "x"}', "half of a UTF-16 surrogate pair"),
        ('{"name": "a", "x": ' + "[" * 50_000 + "]" * 50_000 + "}", "more than 64 levels deep"),
    ],
    ids=["lone-surrogate", "deep-nesting"],
)
def test_devcontainer_json_parser_failures_are_config_errors(inv, tmp_path, text, words):
    ws = _workspace(tmp_path, text)
    r = inv("tailscale.hostname", "--workspace", str(ws), "--json")
    assert r.code == 3 and r.doc["error"]["kind"] == "config" and words in r.doc["error"]["message"], r
    assert "devcontainer.json" in r.doc["error"]["message"] and "Traceback" not in r.stderr


# --- archives ------------------------------------------------------------------------------


ODD_MODES = [("tailscale", 0o555, None), ("tailscale/certs", 0o644, None), ("tailscale/tailscaled.state", 0o000, STATE), ("tailscale/certs/a.key", 0o444, b"key")]
ROOT_PRIVATE = {
    f"{STATE_DIR} 0 0 700",
    f"{STATE_DIR}/certs 0 0 700",
    f"{STATE_DIR}/certs/a.key 0 0 600",
    f"{STATE_DIR}/tailscaled.state 0 0 600",
}


def test_restored_modes_are_exactly_0600_and_0700(inv, containers, tmp_path):
    """Whatever the archive says (000, 0444, a 0644 directory), into a running container and
    into a stopped one whose state directory belongs to someone else with mode 0755."""
    file = tmp_path / "odd.tar"
    file.write_bytes(foreign_tar(ODD_MODES))
    file.chmod(0o600)
    running = containers.start()
    stopped = containers.start()
    sh(stopped, f"mkdir -p {STATE_DIR}/certs && chown 1000:1000 {STATE_DIR} {STATE_DIR}/certs && chmod 755 {STATE_DIR} {STATE_DIR}/certs")
    stopped.stop(timeout=1)
    for c in (running, stopped):
        r = state(inv, c, "restore", str(file), "--json")
        assert r.code == 0, r
    stopped.start()
    assert owners_and_modes(running) == ROOT_PRIVATE
    assert owners_and_modes(stopped) == ROOT_PRIVATE
    assert sh(running, f"cat {STATE_DIR}/tailscaled.state").encode() == STATE


def test_restore_into_a_stopped_container_with_a_read_only_root(inv, containers, tmp_path):
    """The Engine refuses to write into a read-only root filesystem outside volumes: the
    archive then goes into the state volume itself, whose own mode stays (and is said so)."""
    file = tmp_path / "odd.tar"
    file.write_bytes(foreign_tar(ODD_MODES))
    file.chmod(0o600)
    vol = containers.volume()
    c = plain(containers, read_only=True, volumes={vol: {"bind": STATE_DIR, "mode": "rw"}})
    sh(c, f"chmod 755 {STATE_DIR}")
    c.stop(timeout=1)
    r = state(inv, c, "restore", str(file), "--json")
    assert r.code == 0, r
    assert any("kept its owner and mode" in w for w in r.doc["warnings"]), r.doc["warnings"]
    c.start()
    assert owners_and_modes(c) == (ROOT_PRIVATE - {f"{STATE_DIR} 0 0 700"}) | {f"{STATE_DIR} 0 0 755"}


@pytest.mark.parametrize("mtime", ["inf", "nan", "1e400", "-1"])
def test_members_with_out_of_range_mtimes_are_refused(inv, containers, tmp_path, mtime):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("tailscale/tailscaled.state")
        info.size, info.mode, info.pax_headers = len(STATE), 0o600, {"mtime": mtime}
        tf.addfile(info, io.BytesIO(STATE))
    file = tmp_path / "t.tar"
    file.write_bytes(buf.getvalue())
    file.chmod(0o600)
    c = containers.start()
    r = state(inv, c, "restore", str(file), "--json")
    assert r.code == 31 and r.doc["error"]["kind"] == "unsafe_archive", r
    assert "modification time out of range" in r.doc["error"]["message"]
    assert sh(c, f"ls -A {STATE_DIR}") == ""


# --- a swap that fails half-way ----------------------------------------------------------------

# Installed ahead of the real mv in the container's PATH: moves out of the staging folder
# (the swap's second phase) fail, and so, with PUTBACK=fail, do moves back out of .old
# (putting the previous state back); with PUTBACK=kill the first move out of the staging
# folder kills the swap script instead, as if the exec were cut off half-way.
FAULTY_MV = r"""#!/bin/sh
case "$1" in
  */.devc-restore-*.old/*) [ -f /tmp/putback-fails ] && { echo "mv: injected failure" >&2; exit 1; } ;;
  */.devc-restore-*/*)
    if [ -f /tmp/kill-swap ]; then
      for d in /proc/[0-9]*; do
        [ "${d#/proc/}" = "$$" ] && continue
        tr '\0' '\n' <"$d/cmdline" 2>/dev/null | grep -qx 'phase=1' && kill -9 "${d#/proc/}"
      done
      exit 1
    fi
    echo "mv: injected failure" >&2; exit 1 ;;
esac
exec /bin/mv "$@"
"""


def _connected_with_faulty_mv(inv, containers, fault: str):
    c = containers.start()
    node = up(inv, c, "--hostname", "keepme", key=new_key()).doc["node"]["node_id"]
    before = identity(c)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("mv")
        info.size, info.mode = len(FAULTY_MV), 0o755
        tf.addfile(info, io.BytesIO(FAULTY_MV.encode()))
    assert c.put_archive("/usr/local/bin", buf.getvalue())
    sh(c, f"touch /tmp/{fault}")
    assert sh(c, "command -v mv").strip() == "/usr/local/bin/mv"
    return c, node, before


@pytest.mark.parametrize("fault", ["putback-fails", "kill-swap"])
def test_a_swap_that_cannot_put_the_old_state_back_keeps_it(inv, containers, tmp_path, fault):
    c, node, before = _connected_with_faulty_mv(inv, containers, fault)
    file = tmp_path / "other.tar"
    file.write_bytes(foreign_tar([("tailscale", 0o700, None), ("tailscale/tailscaled.state", 0o600, STATE)], uid=0, user="root"))
    file.chmod(0o600)
    r = state(inv, c, "restore", str(file), "--stop-daemon", "--json")
    assert r.code == 30 and r.doc["error"]["kind"] == "state_volume", r
    message = r.doc["error"]["message"]
    assert "kept in /var/lib/tailscale/.devc-restore-" in message and "not deleted" in message, message
    old = message.split("kept in ", 1)[1].split(" ", 1)[0]
    assert old.endswith(".old")
    # the previous identity is all there, where the message says
    assert profile(sh(c, f"cat {old}/tailscaled.state"))["NodeID"] == before["NodeID"]
    assert sh(c, f"ls -A {STATE_DIR}").split() == [old.rsplit("/", 1)[1]]  # the staged copy is gone
    assert sh(c, "for d in /proc/[0-9]*; do cat $d/comm 2>/dev/null; done | grep -cx tailscaled").strip() == "0"
    # the fix the message gives works: move it back, then `up` brings the same node back without a key
    sh(c, f"rm -f /usr/local/bin/mv /tmp/{fault} && cd {old} && for e in * .[!.]*; do [ -e \"$e\" ] && mv \"$e\" {STATE_DIR}/; done; cd / && rmdir {old}")
    assert identity(c) == before
    again = up(inv, c, "--hostname", "keepme")
    assert again.code == 0 and again.doc["node"]["node_id"] == node, again
    assert len(logins(containers.control)) == 1


# --- a state file far larger than tailscaled writes ------------------------------------


def test_a_huge_state_file_is_a_state_error_that_says_its_size(inv, containers):
    """A 19 MB state file (tailscaled's is a few KiB): up and status say the file's size and how to
    recover (exit 30), instead of "`sh` printed more than 16 MiB" (exit 26); the file is left as it was."""
    c = containers.start()
    fill = "awk 'BEGIN{printf \"{\"; for(i=0;i<1200000;i++) printf \"\\\"k%d\\\": \\\"v\\\", \", i; print \"\\\"z\\\": \\\"\\\"}\"}'"
    sh(c, f"mkdir -p {STATE_DIR} && {fill} > {STATE_DIR}/tailscaled.state")
    before = sh(c, f"wc -c < {STATE_DIR}/tailscaled.state; sha256sum {STATE_DIR}/tailscaled.state")
    size = int(before.split()[0])
    assert size > 16 * 1024 * 1024
    for task in ("tailscale.up", "tailscale.status"):
        r = inv(task, "--container", c.name, "--json", env={"TAILSCALE_AUTHKEY": new_key()})
        assert r.code == 30, r
        error = r.doc["error"]
        assert error["kind"] == "state_volume" and f"{size} bytes" in error["message"] and f"{STATE_DIR}/tailscaled.state" in error["message"], error
        assert "state.restore" in error["fix"] and "Traceback" not in r.stderr, error
    shown = state(inv, c, "show", "--json")
    assert shown.code == 0 and f"{size} bytes" in shown.doc["probe_error"], shown
    assert sh(c, f"wc -c < {STATE_DIR}/tailscaled.state; sha256sum {STATE_DIR}/tailscaled.state") == before
    assert logins(containers.control) == []
