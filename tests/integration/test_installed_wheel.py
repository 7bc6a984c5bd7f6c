"""The release as a user gets it: the wheel and sdist built from this tree (`python -m build`),
the wheel installed with pipx into a fresh virtual environment that cannot see the source tree
(run from a temporary folder, PYTHONPATH unset), and that installed copy used: --help, the just
module, shell completion and one up/status/down cycle on the real engine.

Built and installed once per session (about 15 s together, most of it pip)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devc_tasks import __version__
from tests.conftest import REPO, logins
from tests.support.contract import document

pytestmark = pytest.mark.integration
SCHEMAS = REPO / "devc_tasks" / "schemas"

# what the installed copy must not inherit from this test run
_DROP = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "DEVC_TASKS", "TAILSCALE_AUTHKEY", "TAILSCALE_HOSTNAME", "PIP_REQUIRE_VIRTUALENV")


def _env(first_on_path: Path | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROP}
    if first_on_path is not None:
        env["PATH"] = f"{first_on_path}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    env.update(extra)
    return env


def _run(argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def _source_copy(dest: Path) -> Path:
    """What a clean clone holds (tracked and new, not ignored, files), so no stale build/ or
    *.egg-info of the working tree can slip into the artefacts. Outside a git checkout (an
    unpacked sdist) everything but build output and caches."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO, capture_output=True)
    if listed.returncode != 0:
        ignore = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".venv")
        shutil.copytree(REPO, dest, ignore=ignore, dirs_exist_ok=True)
        return dest
    for name in filter(None, listed.stdout.decode().split("\0")):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


@dataclass(frozen=True)
class Dist:
    wheel: Path
    sdist: Path


@dataclass(frozen=True)
class Installed:
    bin_dir: Path  # pipx's bin folder: devc-tasks, and nothing of this tree
    venv: Path  # the virtual environment pipx made
    cwd: Path  # a folder outside the source tree to run from

    @property
    def exe(self) -> Path:
        return self.bin_dir / "devc-tasks"

    def env(self, **extra: str) -> dict[str, str]:
        return _env(self.bin_dir, **extra)

    def run(self, *args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        return _run([str(self.exe), *args], cwd=cwd or self.cwd, env=self.env(**env))


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    src = _source_copy(tmp_path_factory.mktemp("source"))
    out = tmp_path_factory.mktemp("dist")
    r = _run([sys.executable, "-m", "build", "--outdir", str(out), str(src)], cwd=out, env=_env(), timeout=300)
    assert r.returncode == 0, f"python -m build failed:\n{r.stdout}\n{r.stderr}"
    wheels, sdists = sorted(out.glob("*.whl")), sorted(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in out.iterdir())
    return Dist(wheel=wheels[0], sdist=sdists[0])


@pytest.fixture(scope="session")
def installed(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("pipx")
    cwd = tmp_path_factory.mktemp("elsewhere")
    home, bin_dir = root / "home", root / "bin"
    env = _env(PIPX_HOME=str(home), PIPX_BIN_DIR=str(bin_dir), PIPX_MAN_DIR=str(root / "man"))
    r = _run([sys.executable, "-m", "pipx", "install", "--python", sys.executable, str(dist.wheel)], cwd=cwd, env=env, timeout=300)
    assert r.returncode == 0, f"pipx install failed:\n{r.stdout}\n{r.stderr}"
    made = Installed(bin_dir=bin_dir, venv=home / "venvs" / "devc-tasks", cwd=cwd)
    assert made.exe.exists(), sorted(p.name for p in bin_dir.iterdir())
    return made


def test_the_wheel_ships_the_just_module_types_and_license(dist: Dist) -> None:
    with zipfile.ZipFile(dist.wheel) as whl:
        names = set(whl.namelist())
        info = f"devc_tasks-{__version__}.dist-info"
        metadata = whl.read(f"{info}/METADATA").decode()
        entry_points = whl.read(f"{info}/entry_points.txt").decode()
    assert {"devc_tasks/tailscale.just", "devc_tasks/py.typed", f"{info}/licenses/LICENSE"} <= names
    assert {n for n in names if n.startswith("devc_tasks/schemas/")} == {f"devc_tasks/schemas/{p.name}" for p in SCHEMAS.glob("*.json")}
    assert not any(n.startswith(("tests/", "bench/")) for n in names)
    # every module of every layer (core, shell, shell/state, tasks), not only the top folder
    source = Path(__file__).resolve().parents[2] / "devc_tasks"
    modules = {p.relative_to(source.parent).as_posix() for p in source.rglob("*.py")}
    assert {"devc_tasks/core/plan.py", "devc_tasks/shell/state/restore.py", "devc_tasks/tasks/ui.py"} <= modules <= names, modules - names
    headers = [line for line in metadata.splitlines() if ": " in line]
    assert f"Version: {__version__}" in headers and "License-Expression: MIT" in headers
    assert "Classifier: Typing :: Typed" in headers
    assert "devc-tasks = devc_tasks.entry:main" in entry_points


def test_the_sdist_carries_license_docs_and_tests(dist: Dist) -> None:
    with tarfile.open(dist.sdist) as sd:
        names = {n.split("/", 1)[1] for n in sd.getnames() if "/" in n}
    assert {"LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml", "devc_tasks/tailscale.just", "devc_tasks/py.typed"} <= names
    assert {f"devc_tasks/schemas/{p.name}" for p in SCHEMAS.glob("*.json")} <= names
    assert {"tests/conftest.py", "tests/standin/tailscale", "tasks.py", "ARCHITECTURE.md", "devc_tasks/core/scripts.py", "tests/unit/core/test_plan.py"} <= names


def test_the_installed_copy_runs_without_the_source_tree(installed: Installed) -> None:
    where = _run([str(installed.venv / "bin" / "python"), "-c", "import devc_tasks, sys; print(devc_tasks.__file__); print(sys.path)"], cwd=installed.cwd, env=installed.env())
    assert where.returncode == 0, where.stderr
    module_file, path = where.stdout.splitlines()
    assert Path(module_file).is_relative_to(installed.venv)
    assert str(REPO) not in path

    # the JSON contract ships with the code: the installed copy holds every schema, as in the tree
    schemas = _run(
        [str(installed.venv / "bin" / "python"), "-c",
         "import json; from importlib.resources import files; d = files('devc_tasks') / 'schemas'; "
         "print(json.dumps({p.name: json.loads(p.read_text()) for p in d.iterdir() if p.name.endswith('.json')}))"],
        cwd=installed.cwd, env=installed.env(),
    )
    assert schemas.returncode == 0, schemas.stderr
    shipped = json.loads(schemas.stdout)  # not a task document
    assert shipped == {p.name: json.loads(p.read_text()) for p in SCHEMAS.glob("*.json")}

    version = installed.run("--version")
    assert (version.returncode, version.stdout.strip()) == (0, f"devc-tasks {__version__}")
    helped = installed.run("--help")
    assert helped.returncode == 0 and "Usage: devc-tasks" in helped.stdout, helped
    listed = installed.run("--list")
    assert listed.returncode == 0 and "tailscale.up" in listed.stdout and "tailscale.state.backup" in listed.stdout
    task_help = installed.run("--help", "tailscale.up")
    assert task_help.returncode == 0 and "--authkey-file" in task_help.stdout


def test_just_mods_the_installed_module(installed: Installed, tmp_path: Path) -> None:
    r = installed.run("--just-module")
    assert r.returncode == 0, r
    module = Path(r.stdout.strip())
    assert module.is_file() and module.is_relative_to(installed.venv)
    (tmp_path / "justfile").write_text(f"mod tailscale '{module}'\n")
    listing = _run(["just", "--list", "tailscale"], cwd=tmp_path, env=installed.env())
    assert listing.returncode == 0, listing
    for recipe in ("up *args", "down *args", "status *args", "doctor *args", "state action *args"):
        assert recipe in listing.stdout


def _completions(installed: Installed, words: list[str]) -> list[str]:
    """What bash offers after sourcing `devc-tasks --print-completion-script bash`, found through
    `complete -p devc-tasks` (so the script must register for this binary's name)."""
    script = r"""
eval "$(devc-tasks --print-completion-script bash)"
fn=$(complete -p devc-tasks | sed -n 's/.* -F \([^ ]*\) .*/\1/p')
[ -n "$fn" ] || { echo "no completion registered for devc-tasks" >&2; exit 3; }
COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
"$fn" devc-tasks "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"""
    r = _run(["bash", "-c", script, "bash", *words], cwd=installed.cwd, env=installed.env())
    assert r.returncode == 0, r
    return sorted(filter(None, r.stdout.splitlines()))


@pytest.mark.parametrize(
    "words, expected",
    [
        (["devc-tasks", "tailscale.st"], ["tailscale.state.backup", "tailscale.state.reset", "tailscale.state.restore", "tailscale.state.show", "tailscale.status"]),
        (["devc-tasks", "tailscale.up", "--ho"], ["--host", "--hostname"]),
        (["devc-tasks", "--vers"], ["--version"]),
    ],
    ids=["task-names", "task-options", "core-options"],
)
def test_bash_completion_of_the_installed_binary(installed: Installed, words: list[str], expected: list[str]) -> None:
    assert _completions(installed, words) == expected


@pytest.mark.parametrize("shell, registers", [("zsh", "compctl -K _complete_devc-tasks + -f devc-tasks"), ("fish", "complete --command devc-tasks")])
def test_zsh_and_fish_completion_scripts_name_the_binary(installed: Installed, shell: str, registers: str) -> None:
    r = installed.run("--print-completion-script", shell)
    assert r.returncode == 0 and registers in r.stdout, r


def test_up_status_down_through_the_installed_copy(installed: Installed, containers: Any, tmp_path: Path) -> None:
    """The main job with nothing of the source tree: devc-tasks up with a key, just's
    `tailscale status --json` through the installed module, devc-tasks down."""
    key = f"tskey-auth-{uuid.uuid4().hex[:10]}CNTRL-{uuid.uuid4().hex}"
    c = containers.start()

    up = installed.run("tailscale.up", "--container", c.name, "--hostname", "wheel-box", "--json", TAILSCALE_AUTHKEY=key)
    assert up.returncode == 0, up
    doc = document(up.stdout)
    assert doc["outcome"] == "connected" and doc["node"]["hostname"] == "wheel-box"
    assert doc["devc_tasks_version"] == __version__
    assert len(logins(containers.control)) == 1

    module = installed.run("--just-module").stdout.strip()
    (tmp_path / "justfile").write_text(f"mod tailscale '{module}'\n")
    assert shutil.which("devc-tasks", path=installed.env()["PATH"]) == str(installed.exe)
    status = _run(["just", "tailscale", "status", "--container", c.name, "--json"], cwd=tmp_path, env=installed.env())
    assert status.returncode == 0, status
    st = document(status.stdout)
    assert st["backend_state"] == "Running" and st["hostname"] == "wheel-box"
    assert st["devc_tasks_version"] == __version__

    down = installed.run("tailscale.down", "--container", c.name, "--json")
    assert down.returncode == 0, down
    assert document(down.stdout)["node"]["backend_state"] == "Stopped"

    for r in (up, status, down):
        assert key not in r.stdout and key not in r.stderr
