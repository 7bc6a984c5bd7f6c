"""The command surface as users meet it: task list, help, the three ways in, start-up weight."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from devc_tasks import ns

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
NODE_TASKS = ["up", "down", "status", "restart", "logout", "hostname"]
JUST_RECIPES = [*NODE_TASKS, "doctor", "compose", "prune"]


def _tasks(collection, prefix=""):
    for name, t in collection.tasks.items():
        yield prefix + name, t
    for name, sub in collection.collections.items():
        yield from _tasks(sub, prefix + name + ".")


def test_every_option_has_help():
    missing = []
    for name, t in _tasks(ns):
        params = [p for p in inspect.signature(t.body).parameters if p != "c"]
        missing += [f"{name} --{p}" for p in params if p not in t.help]
        assert (t.body.__doc__ or "").strip(), f"{name} has no docstring (its help line)"
    assert missing == []


def test_every_node_task_takes_the_selectors():
    for name in NODE_TASKS:
        params = inspect.signature(ns.collections["tailscale"].tasks[name].body).parameters
        assert {"container", "workspace", "host", "context", "local", "json"} <= set(params), name


def test_import_stays_light():
    code = "import sys, devc_tasks; print(sorted(m for m in ('docker', 'rich', 'requests', 'pyjson5') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# what `status` (through the API) must not load: the doctor, the state archive code, the
# Tailscale API client and its HTTP stack beyond docker's own
_NOT_FOR_STATUS = (
    "devc_tasks.api.doctor", "devc_tasks.api.state", "devc_tasks.core.doctor_checks", "devc_tasks.shell.state.backup",
    "devc_tasks.shell.state.restore", "devc_tasks.shell.hostapi", "devc_tasks.shell.tsapi", "tarfile",
)


def test_the_api_loads_only_what_the_call_needs():
    """`devc_tasks.api` names every operation but loads each on first use: `api.status`
    pays for no doctor, archive or Tailscale API code; every public name still resolves."""
    code = (
        "import sys; from devc_tasks import api; f = api.status\n"
        f"print(sorted(m for m in {_NOT_FOR_STATUS!r} if m in sys.modules))\n"
        "from devc_tasks.api import doctor, state_restore; print(sorted(m for m in ('devc_tasks.api.doctor', 'devc_tasks.api.state') if m in sys.modules))\n"
        "print(all(getattr(api, n) is not None for n in api.__all__), sorted(dir(api)) == sorted(api.__all__))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == ["[]", "['devc_tasks.api.doctor', 'devc_tasks.api.state']", "True True"]


# what a command that only prints help must not load: the Engine client, output, config
# discovery, secrets handling, the status model and the planner (each costs import time the
# user waits for). PyYAML is not listed: invoke itself loads it (its vendored yaml uses the
# C loader when installed).
_NOT_FOR_HELP = (
    "docker", "rich", "requests", "pyjson5", "devc_tasks.shell.engine", "devc_tasks.shell.discovery",
    "devc_tasks.shell.config_files", "devc_tasks.core.endpoint", "devc_tasks.core.secrets", "devc_tasks.tasks.ui",
    "devc_tasks.core.status", "devc_tasks.core.probe", "devc_tasks.core.plan",
)


@pytest.mark.parametrize("argv", [["--help"], ["--list"], ["--version"]])
def test_help_and_list_load_only_the_task_definitions(argv):
    """`devc-tasks --help`/`--list` print from the task definitions alone."""
    code = (
        "import sys; from devc_tasks.program import main; sys.argv = ['devc-tasks', *sys.argv[1:]]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"sys.stderr.write(repr(sorted(m for m in {_NOT_FOR_HELP!r} if m in sys.modules)))"
    )
    proc = subprocess.run([sys.executable, "-c", code, *argv], cwd=REPO, capture_output=True, text=True, check=True)
    assert proc.stderr.strip().splitlines()[-1] == "[]", proc.stderr


def test_the_console_script_skips_the_collection_at_exit():
    """The interpreter's last garbage collection walks every imported object (70-100 ms
    of waiting after the work is done); the console script freezes them at exit. Seen from
    an exit hook registered before it (atexit runs hooks last-in first-out)."""
    code = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: sys.stderr.write('frozen=%d' % gc.get_freeze_count()))\n"
        "from devc_tasks.program import main\n"
        "sys.argv = ['devc-tasks', '--version']\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0 and "frozen=" in proc.stderr, proc
    assert int(proc.stderr.rsplit("frozen=", 1)[1]) > 10_000, proc.stderr


def test_inv_list_in_this_repo():
    out = subprocess.run([sys.executable, "-m", "invoke", "--list"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for name in NODE_TASKS:
        assert f"tailscale.{name}" in out


def test_one_line_in_a_users_tasks_py(tmp_path):
    (tmp_path / "tasks.py").write_text(
        textwrap.dedent(
            """
            from invoke import Collection, task
            from devc_tasks import tailscale

            @task
            def build(c):
                "The user's own task."

            ns = Collection(build, tailscale)
            """
        )
    )
    out = subprocess.run([sys.executable, "-m", "invoke", "--list"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert "build" in out and "tailscale.up" in out and "tailscale.status" in out


def test_console_script_and_just_module(tmp_path):
    out = subprocess.run(["devc-tasks", "--list"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert "tailscale.up" in out
    module = Path(subprocess.run(["devc-tasks", "--just-module"], capture_output=True, text=True, check=True).stdout.strip())
    assert module.is_file()
    (tmp_path / "justfile").write_text(f"mod tailscale '{module}'\n")
    listing = subprocess.run(["just", "--list", "tailscale"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert "[tailscale]" in listing
    for name in JUST_RECIPES:
        assert f"{name} *args" in listing
    assert "state action *args" in listing
    assert "# Connect the devcontainer to the tailnet" in listing


def test_just_passes_arguments_intact(tmp_path):
    """`just tailscale <task> ARGS` hands each argument over unsplit (quoting kept)."""
    module = Path(subprocess.run(["devc-tasks", "--just-module"], capture_output=True, text=True, check=True).stdout.strip())
    (tmp_path / "justfile").write_text(f"mod tailscale '{module}'\n")
    echo = tmp_path / "echo-args"
    echo.write_text("#!/bin/sh\nfor a in \"$@\"; do printf '<%s>\\n' \"$a\"; done\n")
    echo.chmod(0o755)
    r = subprocess.run(
        ["just", "tailscale", "up", "--hostname", "my box", "--json", "it's"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin:" + str(Path(sys.executable).parent), "DEVC_TASKS": str(echo)},
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["<tailscale.up>", "<--hostname>", "<my box>", "<--json>", "<it's>"]
    r = subprocess.run(
        ["just", "tailscale", "state", "backup", "--output", "my backup.tar"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin:" + str(Path(sys.executable).parent), "DEVC_TASKS": str(echo)},
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["<tailscale.state.backup>", "<--output>", "<my backup.tar>"]


def test_console_script_reads_the_projects_invoke_yaml(tmp_path):
    """Flag, else invoke.yaml, else the default: the file is read by `devc-tasks` too."""
    (tmp_path / "invoke.yaml").write_text("tailscale:\n  timeout: soon\n")
    r = subprocess.run(["devc-tasks", "tailscale.up", "--container", "x", "--json"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 3  # a config error, naming the file
    assert f"{tmp_path}/invoke.yaml: tailscale.timeout takes a number of seconds, not 'soon'" in r.stdout
    r = subprocess.run(["devc-tasks", "tailscale.up", "--container", "x", "--timeout", "0", "--json"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 2 and "between 0 and 86400" in r.stdout  # the flag wins over the file


def test_bad_engine_url_is_a_usage_error_with_one_json_document(tmp_path):
    r = subprocess.run([sys.executable, "-m", "invoke", "--search-root", str(REPO), "tailscale.status", "--host", "http://[::1", "--json"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 2
    doc = __import__("json").loads(r.stdout)
    assert doc["ok"] is False and doc["error"]["kind"] == "usage"
    assert "Traceback" not in r.stderr


def test_readme_exit_code_table_is_the_code():
    """The README's table lists every error class's code and kind, and the codes are distinct."""
    import re

    from devc_tasks.core.errors import EXIT_CODES

    text = (REPO / "README.md").read_text()
    table = text[text.index("## Exit codes") :].split("\n## ", 1)[0]
    rows = dict((kind, int(code)) for code, kind in re.findall(r"^\| (\d+) \| `([a-z_]+)` \|", table, re.M))
    assert rows == EXIT_CODES
    assert len(set(EXIT_CODES.values())) == len(EXIT_CODES)


def test_engine_errors_map_to_their_classes():
    import docker.errors
    import requests

    from devc_tasks.core.errors import ContainerNotFound, ContainerNotRunning, EngineRefused, EngineUnreachable
    from devc_tasks.shell.executors import sdk_call

    def api_error(status, text):
        response = requests.Response()
        response.status_code = status
        return docker.errors.APIError(text, response=response, explanation=text)

    cases = [
        (docker.errors.NotFound("No such container: x"), ContainerNotFound),
        (api_error(409, "Container abc is not running"), ContainerNotRunning),
        (api_error(409, "Container abc is paused, unpause the container before exec"), ContainerNotRunning),
        (api_error(500, "something odd"), EngineRefused),
        (requests.exceptions.ConnectionError("refused"), EngineUnreachable),
    ]
    for exc, cls in cases:
        def boom(exc=exc):
            raise exc

        with pytest.raises(cls):
            sdk_call("docker exec", boom)


@pytest.mark.parametrize(
    "shell, registers",
    [("bash", "complete -F _complete_devc-tasks -o default devc-tasks"), ("zsh", "compctl -K _complete_devc-tasks + -f devc-tasks"), ("fish", "complete --command devc-tasks")],
)
def test_completion_scripts_register_for_devc_tasks_however_it_was_started(tmp_path, shell, registers):
    """README: `source <(devc-tasks --print-completion-script bash)`. The script names the
    console script and asks it for candidates (`devc-tasks --complete`), also when the
    program was started another way (here `python -c`, whose argv[0] is `-c`)."""
    r = subprocess.run([sys.executable, "-c", "from devc_tasks.program import main; main()", "--print-completion-script", shell],
                       cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert registers in r.stdout
    assert re.search(r"devc-tasks [^\n]*--complete", r.stdout), r.stdout


def test_a_broken_invoke_yaml_with_events_is_reported_as_a_json_event(tmp_path):
    """With --events, stderr carries JSON lines only, even for an error found before the task runs."""
    (tmp_path / "invoke.yaml").write_text("tailscale: [1\n")
    r = subprocess.run(["devc-tasks", "tailscale.up", "--container", "x", "--events"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 3, r.stderr
    lines = [json.loads(line) for line in r.stderr.splitlines()]
    assert lines and lines[-1]["event"] == "error" and lines[-1]["exit_code"] == 3, lines
