"""`up` and `prune` with Tailscale API credentials on the host (real engine, both stand-ins)."""

from __future__ import annotations

import time

import pytest

from tests.conftest import logins
from tests.support.contract import document

pytestmark = pytest.mark.integration

TAGS = "tag:devc"


def oauth_env(api, *, scopes=("auth_keys", "devices:core"), tags=("tag:devc",), **extra):
    cid, secret = api.state.add_client(scopes=scopes, tags=tags)
    env = {"TAILSCALE_OAUTH_CLIENT_ID": cid, "TAILSCALE_OAUTH_CLIENT_SECRET": secret, "TAILSCALE_BASE_URL": api.url}
    env.update(extra)
    return env, secret


def api_up(inv, c, env, *args, **kw):
    return inv("tailscale.up", "--container", c.name, "--json", "--advertise-tags", TAGS, *args, env=env, **kw)


def nothing_changed(c) -> bool:
    """No tailscaled started and no state written: the API error stopped `up` first."""
    r = c.exec_run(["sh", "-c", "ls -A /var/lib/tailscale; for d in /proc/[0-9]*; do cat $d/comm; done | grep -x tailscaled"])
    return r.output.decode().strip() == ""


def test_up_with_only_oauth_mints_logs_in_and_deletes_the_key(inv, containers, tailscale_api, docker_client):
    env, secret = oauth_env(tailscale_api)
    c = containers.start()
    start = int(time.time()) - 1
    r = api_up(inv, c, env, "--hostname", "minted")
    assert r.code == 0, r
    doc = r.doc
    assert doc["outcome"] == "connected" and doc["node"]["dns_name"].startswith("minted.")
    assert doc["key_source"].startswith("minted through the Tailscale API")
    (login,) = logins(containers.control)
    (rec,) = tailscale_api.state.minted_keys().values()
    # single use, pre-authorized, tagged, short-lived, and deleted after the login
    assert rec["uses"] == 1 and rec["revoked"] is True and rec["preauthorized"] and not rec["reusable"] and not rec["ephemeral"]
    assert rec["tags"] == [TAGS] and rec["description"].startswith("devc-tasks ") and len(rec["description"]) <= 50
    assert doc["api"]["minted_key"] == rec["id"]
    assert doc["api"]["device"]["connected"] is True and doc["api"]["device"]["authorized"] is True
    assert doc["api"]["device"]["tags"] == [TAGS]
    # the secret and the access token never left the host process
    tokens = list(tailscale_api.state.tokens)
    assert tokens
    secrets = [secret, *tokens]
    for s in secrets:
        assert s not in r.stdout and s not in r.stderr
    events = docker_client.events(since=start, until=int(time.time()) + 1, decode=True, filters={"container": c.id})
    execs = [e["Action"] for e in events if e.get("Action", "").startswith("exec_")]
    assert execs and not [a for a in execs if any(s in a for s in secrets)]
    for s in secrets:
        grep = c.exec_run(["grep", "-rlF", "--exclude-dir=sys", "--exclude-dir=dev", "--exclude-dir=proc", s, "/"], user="0")
        assert grep.exit_code == 1, grep.output
    procs = c.exec_run(["sh", "-c", "cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' '\\n'"]).output.decode()
    assert procs and not [s for s in secrets if s in procs]
    # the Engine's view of the container holds no secret either
    attrs = str(docker_client.api.inspect_container(c.id))
    assert not [s for s in secrets if s in attrs]


def test_minted_key_is_not_used_when_the_node_has_an_identity(inv, containers, tailscale_api):
    env, _ = oauth_env(tailscale_api)
    c = containers.start()
    assert api_up(inv, c, env, "--hostname", "once").code == 0
    r = api_up(inv, c, env, "--hostname", "once")
    assert r.code == 0 and r.doc["outcome"] == "already-connected", r
    assert len(tailscale_api.state.minted_keys()) == 1  # nothing minted the second time
    assert r.doc["api"]["device"]["connected"] is True


def test_ephemeral_and_expiry(inv, containers, tailscale_api):
    env, _ = oauth_env(tailscale_api)
    c = containers.start()
    r = api_up(inv, c, env, "--hostname", "eph", "--ephemeral", "--key-expiry", "120")
    assert r.code == 0, r
    (rec,) = tailscale_api.state.minted_keys().values()
    assert rec["ephemeral"] is True
    from datetime import datetime

    created, expires = (datetime.fromisoformat(rec[k].replace("Z", "+00:00")) for k in ("created", "expires"))
    assert (expires - created).total_seconds() == 120
    assert r.doc["api"]["device"]["listed"]


def _lose_state(inv, containers, c):
    """The old container's node goes offline and its state volume is gone."""
    assert inv("tailscale.down", "--container", c.name, "--json").code == 0
    c.remove(force=True, v=True)


def test_replace_gives_the_plain_name_after_the_state_is_lost(inv, containers, tailscale_api):
    env, _ = oauth_env(tailscale_api)
    old = containers.start()
    first = api_up(inv, old, env, "--hostname", "rebuilt")
    assert first.code == 0, first
    old_id = first.doc["api"]["device"]["node_id"]
    _lose_state(inv, containers, old)

    new = containers.start()
    r = api_up(inv, new, env, "--hostname", "rebuilt", "--replace")
    assert r.code == 0, r
    assert r.doc["node"]["dns_name"].startswith("rebuilt.")  # not rebuilt-1
    assert [d["node_id"] for d in r.doc["api"]["deleted"]] == [old_id]
    assert "deleted stale copy rebuilt" in r.stderr and old_id in r.stderr
    assert not (containers.control / "nodes" / f"{old_id}.json").exists()


def test_without_replace_the_warning_names_the_stale_copy_then_prune(inv, containers, tailscale_api):
    env, _ = oauth_env(tailscale_api)
    old = containers.start()
    first = api_up(inv, old, env, "--hostname", "rebuilt")
    old_id = first.doc["api"]["device"]["node_id"]
    _lose_state(inv, containers, old)

    new = containers.start()
    r = api_up(inv, new, env, "--hostname", "rebuilt")
    assert r.code == 0, r
    assert r.doc["node"]["dns_name"].startswith("rebuilt-1.")
    assert old_id in r.stderr and "--replace" in r.stderr and "stale cop" in r.stderr
    assert [d["node_id"] for d in r.doc["api"]["stale_copies"]] == [old_id]

    listed = inv("tailscale.prune", "--container", new.name, "--hostname", "rebuilt", "--dry-run", "--json", env=env)
    assert listed.code == 0, listed
    assert [d["node_id"] for d in listed.doc["stale"]] == [old_id]
    assert [d["reason"] for d in listed.doc["kept"]] == ["this node"]

    refused = inv("tailscale.prune", "--container", new.name, "--hostname", "rebuilt", "--json", env=env)
    assert refused.code == 2 and "--yes" in refused.stdout, refused
    assert (containers.control / "nodes" / f"{old_id}.json").exists()

    done = inv("tailscale.prune", "--container", new.name, "--hostname", "rebuilt", "--yes", "--json", env=env)
    assert done.code == 0, done
    assert [d["node_id"] for d in done.doc["deleted"]] == [old_id]
    assert not (containers.control / "nodes" / f"{old_id}.json").exists()
    again = inv("tailscale.prune", "--container", new.name, "--hostname", "rebuilt", "--json", env=env)
    assert again.code == 0 and again.doc["stale"] == [], again


def test_failed_key_delete_is_a_warning(inv, containers, tailscale_api):
    env, _ = oauth_env(tailscale_api)
    tailscale_api.state.fail("/api/v2/tailnet/-/keys/", 500, count=100, method="DELETE", retry_after="0")
    c = containers.start()
    r = api_up(inv, c, env, "--hostname", "keepkey")
    assert r.code == 0, r
    assert "could not delete the minted auth key" in r.stderr


@pytest.mark.parametrize(
    "case, code, match",
    [
        ("bad-secret", 51, "refused the OAuth client"),
        ("no-auth-keys-scope", 52, "`auth_keys`"),
        ("no-devices-scope-replace", 52, "`devices:core`"),
        ("tags-not-owned", 53, "requested tags [tag:devc] are invalid or not permitted"),
        ("unknown-tailnet", 54, "nobody.example"),
        ("unreachable", 55, "cannot reach the Tailscale API"),
        ("slow", 55, "did not answer within 2 s"),
        ("rate-limited", 56, "429"),
        ("server-error", 56, "502"),
        ("no-tags", 2, "only mint tagged auth keys"),
        ("secret-in-config", 3, "a secret is in the configuration file"),
    ],
)
def test_api_errors_change_nothing_in_the_container(inv, containers, tailscale_api, tmp_path, case, code, match):
    scopes, tags, extra, args = ("auth_keys", "devices:core"), ("tag:devc",), {}, ["--advertise-tags", TAGS]
    pre: list[str] = []
    if case == "no-auth-keys-scope":
        scopes = ("devices:core",)
    elif case == "no-devices-scope-replace":
        scopes = ("auth_keys",)
        args += ["--replace"]
    elif case == "tags-not-owned":
        tags = ("tag:other",)
    elif case == "unknown-tailnet":
        extra = {"TAILSCALE_TAILNET": "nobody.example"}
    elif case == "unreachable":
        import socket

        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        extra = {"TAILSCALE_BASE_URL": f"http://127.0.0.1:{s.getsockname()[1]}"}
        s.close()
    elif case == "slow":
        tailscale_api.state.fail("/api/v2/oauth/token", delay=5)
        args += ["--timeout", "2"]
    elif case == "rate-limited":
        tailscale_api.state.fail("/api/v2/", 429, count=100, retry_after="0")
    elif case == "server-error":
        tailscale_api.state.fail("/api/v2/", 502, count=100)
    elif case == "no-tags":
        args = []
    elif case == "secret-in-config":
        (tmp_path / "invoke.yaml").write_text("tailscale:\n  oauth_client_secret: tskey-client-kX-123\n")
        pre = ["-f", str(tmp_path / "invoke.yaml")]
    env, secret = oauth_env(tailscale_api, scopes=scopes, tags=tags, **extra)
    if case == "bad-secret":
        env["TAILSCALE_OAUTH_CLIENT_SECRET"] = secret[:-4] + "0000"
    c = containers.start()
    r = inv(*pre, "tailscale.up", "--container", c.name, "--json", "--hostname", "errs", *args, env=env)
    assert r.code == code, r
    assert r.doc["ok"] is False and match in r.doc["error"]["message"], r.doc
    assert secret not in r.stdout + r.stderr and "tskey-client-kX-123" not in r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert nothing_changed(c)
    assert logins(containers.control) == []


def test_without_devices_scope_up_still_logs_in_and_says_why_it_could_not_look(inv, containers, tailscale_api):
    env, _ = oauth_env(tailscale_api, scopes=("auth_keys",))
    c = containers.start()
    r = api_up(inv, c, env, "--hostname", "keysonly")
    assert r.code == 0, r
    assert "devices:core" in r.stderr


def test_just_tailscale_prune(containers, tailscale_api, tmp_path):
    import os
    import subprocess

    module = subprocess.run(["devc-tasks", "--just-module"], capture_output=True, text=True, check=True).stdout.strip()
    (tmp_path / "justfile").write_text(f"mod tailscale '{module}'\n")
    env, _ = oauth_env(tailscale_api)
    c = containers.start()
    r = subprocess.run(
        ["just", "tailscale", "prune", "--container", c.name, "--hostname", "nobody here", "--dry-run", "--json"],
        cwd=tmp_path, env={**os.environ, **env}, capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stderr
    doc = document(r.stdout)
    assert doc["ok"] and doc["stale"] == [] and doc["hostname"] == "nobody-here"


@pytest.mark.parametrize("how", ["file", "stdin"])
def test_oauth_secret_file(inv, containers, tailscale_api, tmp_path, how):
    env, secret = oauth_env(tailscale_api)
    del env["TAILSCALE_OAUTH_CLIENT_SECRET"]
    (tmp_path / "secret").write_text(secret + "\n")
    arg, stdin = (str(tmp_path / "secret"), None) if how == "file" else ("-", secret + "\n")
    c = containers.start()
    r = api_up(inv, c, env, "--hostname", "fromfile", "--oauth-secret-file", arg, stdin=stdin)
    assert r.code == 0, r
    assert r.doc["key_source"] == f"minted through the Tailscale API (OAuth client {env['TAILSCALE_OAUTH_CLIENT_ID']} (--oauth-secret-file {arg}))"
    assert secret not in r.stdout + r.stderr


def test_config_tags_and_replace(inv, containers, tailscale_api, tmp_path):
    env, _ = oauth_env(tailscale_api)
    cfg = tmp_path / "invoke.yaml"
    cfg.write_text("tailscale:\n  tags: [tag:devc]\n  replace: true\n  key_expiry: 300\n")
    old = containers.start()
    first = inv("-f", str(cfg), "tailscale.up", "--container", old.name, "--hostname", "cfgnode", "--json", env=env)
    assert first.code == 0, first
    old_id = first.doc["api"]["device"]["node_id"]
    _lose_state(inv, containers, old)
    new = containers.start()
    r = inv("-f", str(cfg), "tailscale.up", "--container", new.name, "--hostname", "cfgnode", "--json", env=env)
    assert r.code == 0, r
    assert r.doc["node"]["dns_name"].startswith("cfgnode.") and [d["node_id"] for d in r.doc["api"]["deleted"]] == [old_id]
    assert all(k["tags"] == ["tag:devc"] for k in tailscale_api.state.minted_keys().values())


def test_api_access_token_mints_too(inv, containers, tailscale_api):
    key = tailscale_api.state.add_api_key()
    c = containers.start()
    r = inv("tailscale.up", "--container", c.name, "--hostname", "withtoken", "--json", env={"TAILSCALE_API_KEY": key, "TAILSCALE_BASE_URL": tailscale_api.url})
    assert r.code == 0, r
    assert r.doc["key_source"] == "minted through the Tailscale API (API access token (TAILSCALE_API_KEY))"
    assert key not in r.stdout + r.stderr
    (rec,) = tailscale_api.state.minted_keys().values()
    assert rec["revoked"] and rec["tags"] == []


def test_minted_key_is_deleted_when_the_login_step_fails(inv, containers, tailscale_api):
    env, _ = oauth_env(tailscale_api)
    c = containers.start(tun=False)
    r = api_up(inv, c, env, "--hostname", "notun")
    assert r.code == 20, r  # no TUN device
    (rec,) = tailscale_api.state.minted_keys().values()
    assert rec["revoked"] is True and rec["uses"] == 0
    assert "deleted the auth key" in r.stderr


def test_prune_never_deletes_this_node_while_its_daemon_is_stopped(inv, containers, tailscale_api):
    """The container's tailscaled is not running (container restarted): its own device is
    offline with its name and tags, and prune cannot read its node ID, so it must refuse."""
    env, _ = oauth_env(tailscale_api)
    c = containers.start()
    first = api_up(inv, c, env, "--hostname", "sleeper")
    assert first.code == 0, first
    own = first.doc["api"]["device"]["node_id"]
    # tailscaled stops (as when the container is restarted); the state volume stays
    stop = c.exec_run(["sh", "-c", "for d in /proc/[0-9]*; do [ \"$(cat $d/comm)\" = tailscaled ] && kill ${d#/proc/}; done; sleep 2"], user="0")
    assert stop.exit_code == 0
    r = inv("tailscale.prune", "--container", c.name, "--hostname", "sleeper", "--advertise-tags", TAGS, "--yes", "--json", env=env)
    assert r.code == 5, r
    assert "tailscale.up" in r.stdout
    assert (containers.control / "nodes" / f"{own}.json").exists()


def test_a_key_request_that_times_out_leaves_no_usable_key(inv, containers, tailscale_api):
    """The API made the key but its answer came after --timeout: `up` stops (exit 55), then finds the
    key it may have minted (its description, created in the last minute) and deletes it, so no
    single-use key is left usable until it expires; another key of the tailnet is left alone."""
    import requests

    env, secret = oauth_env(tailscale_api)
    token = requests.post(f"{tailscale_api.url}/api/v2/oauth/token", timeout=10,
                          data={"grant_type": "client_credentials", "client_id": env["TAILSCALE_OAUTH_CLIENT_ID"], "client_secret": secret}).json()["access_token"]
    body = {"capabilities": {"devices": {"create": {"tags": [TAGS], "preauthorized": True}}}, "expirySeconds": 600, "description": "someone elses key"}
    other = requests.post(f"{tailscale_api.url}/api/v2/tailnet/-/keys", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10).json()["id"]
    tailscale_api.state.fail("/api/v2/tailnet/-/keys", delay=6, method="POST", late=True)  # made, answered too late
    c = containers.start()
    r = api_up(inv, c, env, "--hostname", "slowkey", "--timeout", "2")
    assert r.code == 55 and "did not answer within 2 s" in r.doc["error"]["message"], r
    keys = {k["id"]: k for k in tailscale_api.state.minted_keys().values()}
    ours = [k for k in keys.values() if k["id"] != other]
    assert len(ours) == 1 and ours[0]["revoked"], keys
    assert not keys[other]["revoked"]
    assert f"deleted the auth key {ours[0]['id']}" in r.stderr, r.stderr
    assert secret not in r.stdout + r.stderr and "Traceback" not in r.stderr
    assert nothing_changed(c)
    assert logins(containers.control) == []
