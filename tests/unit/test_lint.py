"""The lint rules declared in pyproject.toml hold for the whole tree."""

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]


def test_ruff_is_clean():
    ruff = shutil.which("ruff")
    assert ruff, "ruff comes with the test extra: pip install -e '.[test]'"
    r = subprocess.run([ruff, "check", "devc_tasks", "tests", "bench", "tasks.py"], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout


def test_mypy_is_clean():
    mypy = shutil.which("mypy")
    assert mypy, "mypy comes with the test extra: pip install -e '.[test]'"
    r = subprocess.run([mypy], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout
