"""`up --dry-run`: the plan from one probe, as data, with exact command lines."""

import pytest

from devc_tasks.core import plan
from devc_tasks.core.errors import KeyRequired, TunMissing
from devc_tasks.core.plan import UpWish, dry_run
from devc_tasks.core.probe import parse_probe
from tests.unit.samples import prefs_json, probe_text, status_json

pytestmark = pytest.mark.unit

CLI = "/usr/local/bin/tailscale"
DAEMON = ("/usr/local/sbin/tailscaled", "--state=/var/lib/tailscale/tailscaled.state", "--socket=/var/run/tailscale/tailscaled.sock")
SOCK = "--socket=/var/run/tailscale/tailscaled.sock"
NAME = "web-devc-laptop"
UP = (CLI, SOCK, "up", f"--hostname={NAME}", "--ssh", "--accept-routes=false", "--advertise-tags=", "--timeout=60s")
LOGIN = (*UP, "--auth-key=file:/dev/stdin")
BARE = (CLI, SOCK, "up")  # a logged-in Stopped node comes back with a bare `up`
DOWN = dict(pid=None, socket=False)


def wish(**kw):
    return UpWish(**{"hostname": NAME, **kw})


CASES = [
    # (id, probe kwargs, wish kwargs, outcome, [(action, argv, conditional)], uses key)
    ("fresh-with-key", DOWN, dict(have_key=True), "would-connect",
     [("start tailscaled", DAEMON, False), ("log in with the auth key", LOGIN, False)], True),
    ("identity-no-key", dict(state_file=True, **DOWN), {}, "would-connect",
     [("start tailscaled", DAEMON, False), ("bring the node up (no key needed)", BARE, True)], False),
    ("identity-and-key", dict(state_file=True, **DOWN), dict(have_key=True), "would-connect",
     [("start tailscaled", DAEMON, False), ("bring the node up (no key needed)", BARE, True), ("log in with the auth key", LOGIN, True)], True),
    # a `{}` state file (what a fresh tailscaled writes) holds no identity: the login is certain
    ("fresh-file-and-key", dict(state_file="fresh", **DOWN), dict(have_key=True), "would-connect",
     [("start tailscaled", DAEMON, False), ("log in with the auth key", LOGIN, False)], True),
    ("needs-login", dict(pid=4, socket=True, status=status_json("NeedsLogin")), dict(have_key=True), "would-connect",
     [("log in with the auth key", LOGIN, False)], True),
    ("rename", dict(pid=4, socket=True, status=status_json("Running"), prefs=prefs_json(hostname="old")), {}, "would-connect",
     [("change hostname", (CLI, SOCK, "set", f"--hostname={NAME}"), False)], False),
    ("starting", dict(pid=4, socket=True, status=status_json("Starting")), {}, "would-connect",
     [("wait for Running", (CLI, SOCK, "status", "--json", "--peers=false"), False)], False),
    ("running", dict(pid=4, socket=True, status=status_json("Running"), prefs=prefs_json()), dict(have_key=True), "already-connected", [], False),
    ("no-key-no-identity", DOWN, {}, "skipped", [], False),
]


@pytest.mark.parametrize(("probe", "want", "outcome", "steps", "uses_key"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_plans(probe, want, outcome, steps, uses_key):
    result = dry_run(parse_probe(probe_text(**probe)), wish(**want))
    assert result.outcome == outcome
    assert [(s.action, s.argv, s.when is not None) for s in result.steps] == steps
    assert result.uses_key is uses_key
    for s in result.steps:  # a key is only ever read from stdin
        assert not any(a.startswith("--auth-key=") and a != "--auth-key=file:/dev/stdin" for a in s.argv)


@pytest.mark.parametrize(
    ("probe", "want", "error"),
    [(dict(tun=False, **DOWN), dict(have_key=True), TunMissing), (DOWN, dict(require_key=True), KeyRequired)],
    ids=["no-tun", "key-required"],
)
def test_a_plan_that_would_fail_raises_what_up_would(probe, want, error):
    with pytest.raises(error):
        dry_run(parse_probe(probe_text(**probe)), wish(**want))


def test_the_first_step_is_the_one_up_takes():
    probe, w = parse_probe(probe_text(**DOWN)), wish(have_key=True)
    assert dry_run(probe, w).steps[0].argv == plan.next_step(probe, w).argv  # type: ignore[attr-defined]


def test_the_conditional_reconnect_is_the_command_up_then_runs():
    """After the daemon start, a node back in Stopped gets what next_step plans for it."""
    probe, w = parse_probe(probe_text(state_file=True, **DOWN)), wish()
    planned = dry_run(probe, w).steps[1]
    after = parse_probe(probe_text(pid=4, socket=True, state_file=True, status=status_json("Stopped"), prefs=prefs_json()))
    assert planned.argv == plan.next_step(after, w).argv  # type: ignore[attr-defined]


def test_just_plan_is_up_dry_run(tmp_path):
    """`just tailscale plan ARGS` runs `tailscale.up --dry-run ARGS`."""
    import subprocess
    import sys
    from pathlib import Path

    module = Path(subprocess.run(["devc-tasks", "--just-module"], capture_output=True, text=True, check=True).stdout.strip())
    (tmp_path / "justfile").write_text(f"mod tailscale '{module}'\n")
    echo = tmp_path / "echo-args"
    echo.write_text("#!/bin/sh\nfor a in \"$@\"; do printf '<%s>\\n' \"$a\"; done\n")
    echo.chmod(0o755)
    r = subprocess.run(
        ["just", "tailscale", "plan", "--hostname", "my box", "--json"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin:" + str(Path(sys.executable).parent), "DEVC_TASKS": str(echo)},
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["<tailscale.up>", "<--dry-run>", "<--hostname>", "<my box>", "<--json>"]
