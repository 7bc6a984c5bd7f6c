"""The local executor (`--local`): an overall deadline that kills what the command
started, an output cap, and no auth key in the environment of what it runs."""

from __future__ import annotations

import time

import pytest

from devc_tasks.core.errors import TailscaleFailed, TimedOut
from devc_tasks.shell import executors
from devc_tasks.shell.executors import LocalExecutor


def test_the_deadline_kills_the_whole_command_not_only_its_shell(tmp_path):
    pidfile = tmp_path / "pid"
    with pytest.raises(TimedOut, match="did not finish within 1 s"):
        LocalExecutor().run(["sh", "-c", f'sleep 30 >/dev/null 2>&1 & echo $! > {pidfile}; wait'], timeout=1)
    pid = int(pidfile.read_text())

    def state() -> str:
        try:
            return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return "gone"

    # killed with its process group, not left running (SIGKILL lands asynchronously: a bounded wait)
    end = time.monotonic() + 10
    while state() not in ("gone", "Z") and time.monotonic() < end:
        time.sleep(0.05)
    assert state() in ("gone", "Z")


def test_output_is_capped(monkeypatch):
    monkeypatch.setattr(executors, "MAX_OUTPUT", 1024 * 1024)
    with pytest.raises(TailscaleFailed, match="printed more than 1 MiB"):
        LocalExecutor().run(["sh", "-c", "head -c 5000000 /dev/zero"], timeout=30)


def test_output_under_the_cap_and_stdin_arrive_intact():
    r = LocalExecutor().run(["sh", "-c", "cat; echo err >&2; exit 3"], stdin=b"line\n", timeout=30)
    assert (r.exit_code, r.stdout, r.stderr) == (3, "line\n", "err\n")


def test_commands_never_see_the_key_variables(monkeypatch):
    for name in executors.KEY_ENV:
        monkeypatch.setenv(name, "tskey-auth-secret")
    monkeypatch.setenv("KEEP_ME", "yes")
    r = LocalExecutor().run(["sh", "-c", "env"], timeout=30)
    assert "tskey-auth-secret" not in r.stdout and "KEEP_ME=yes" in r.stdout
