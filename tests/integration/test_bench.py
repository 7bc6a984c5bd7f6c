"""The benchmark runs (issue 10): CI runs it once with small counts to prove it works.
No figure is asserted: speed is for the benchmark, never for tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def test_bench_quick_prints_every_figure():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "bench.bench", "--quick"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    for figure in (
        "docker exec C tailscale status --json",
        "floor script",
        "floor script + import invoke",
        "devc-tasks status --json",
        "devc-tasks up (no-op)",
        "execs for a no-op up",
        "devc-tasks --help, first time",
        "devc-tasks --help, again",
        "devc-tasks tailscale.up --help, again",
        "import invoke",
        "inv --list",
        "login latency",
        "status --all over 1 ",
        "status --all over 2 ",
        "floor script over 2 ",
        "docker exec over 2 ",
    ):
        assert figure in proc.stdout, proc.stdout
    assert "x docker exec" in proc.stdout and "x floor" in proc.stdout and "x floor over 2" in proc.stdout, proc.stdout
    assert "a fresh venv, pip install of this checkout" in proc.stdout, proc.stdout  # a user's install, not this one
    header = next(line for line in proc.stdout.splitlines() if line.split()[:1] == ["what"])
    assert header.split() == ["what", "figure", "load", "ratio", "goal"], proc.stdout
