"""One version, reported everywhere a user or a script looks: `--version` and every --json document."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from devc_tasks import __version__
from tests.support.contract import document

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
PROGRAM = [sys.executable, "-c", "from devc_tasks.entry import main; main()"]


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PROGRAM, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_version_flag_prints_the_package_version(tmp_path: Path) -> None:
    r = _run("--version", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"devc-tasks {__version__}"


@pytest.mark.parametrize(
    "args, code",
    [
        (("tailscale.compose", "--workspace", str(REPO / "tests/fixtures/compose/image-based"), "--json"), 0),
        (("tailscale.status", "--host", "http://[::1", "--json"), 2),
    ],
    ids=["success-document", "error-document"],
)
def test_every_json_document_names_the_devc_tasks_version(tmp_path: Path, args: tuple[str, ...], code: int) -> None:
    r = _run(*args, cwd=tmp_path)
    assert r.returncode == code, r
    doc = document(r.stdout)
    assert doc["devc_tasks_version"] == __version__


def test_the_version_has_one_source() -> None:
    """pyproject reads the version from the package, so a release cannot report two."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "devc_tasks.__version__"}


def test_changelog_has_an_entry_for_this_version() -> None:
    text = (REPO / "CHANGELOG.md").read_text()
    assert f"## [{__version__}]" in text
