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
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "tests/integration/test_up.py::test_not_installed"],
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
