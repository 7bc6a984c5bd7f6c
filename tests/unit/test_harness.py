"""The test harness itself: without an engine, integration tests skip with one reason
outside CI and fail in CI (a skip must never hide a missing engine there)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]


def _run(extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "DEVC_REQUIRE_ENGINE")}
    env.update({"DOCKER_HOST": "tcp://127.0.0.1:9", **extra_env})  # nothing listens on port 9
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-n0", "-q", "-rs", "-p", "no:cacheprovider", "tests/integration/test_up.py::test_not_installed"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_an_engine_integration_tests_skip_with_one_reason():
    r = _run({})
    assert r.returncode == 0, r.stdout
    assert "1 skipped" in r.stdout
    assert "no Docker engine reachable" in r.stdout


@pytest.mark.parametrize("env", [{"CI": "true"}, {"DEVC_REQUIRE_ENGINE": "1"}], ids=["CI", "DEVC_REQUIRE_ENGINE"])
def test_in_ci_a_missing_engine_fails(env):
    r = _run(env)
    assert r.returncode != 0
    assert "a Docker engine is required here" in r.stdout


def test_no_integration_or_e2e_test_fails_without_an_engine():
    """README: "Outside CI, without an engine, integration and e2e tests skip with one reason" --
    every one of them, also those that only run `inv` against the engine (no docker_client fixture)."""
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "DEVC_REQUIRE_ENGINE", "DOCKER_CONTEXT")}
    env["DOCKER_HOST"] = "unix:///nonexistent.sock"
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-n0", "-q", "-rs", "-p", "no:cacheprovider", "tests/integration", "tests/e2e"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout[-3000:]
    assert " failed" not in r.stdout and " error" not in r.stdout, r.stdout[-3000:]
    reasons = {line.split(": ", 1)[1] for line in r.stdout.splitlines() if line.startswith("SKIPPED")}
    assert reasons == {"no Docker engine reachable; start one (see README) to run integration and e2e tests"}, reasons
