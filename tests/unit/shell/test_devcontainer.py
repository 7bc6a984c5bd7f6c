"""devcontainer.json: JSONC parsing, lookup order, the keys we read, compose project names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from devc_tasks.core.devcontainer import CONFIG_CANDIDATES, DevcontainerConfig, parse_jsonc
from devc_tasks.core.errors import ConfigError
from devc_tasks.shell.config_files import compose_project_name, find_config, find_workspace, load_config

pytestmark = pytest.mark.unit


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="")
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"name": "a"}', {"name": "a"}),
        ('// lead\n{"name": "a" /* inline */}', {"name": "a"}),
        ('{"name": "a", "runArgs": ["--x",],}', {"name": "a", "runArgs": ["--x"]}),
        ('{"url": "http://example.com//x", "c": "/* no */"}', {"url": "http://example.com//x", "c": "/* no */"}),
        ('{\r\n  // c\r\n  "name": "a",\r\n}\r\n', {"name": "a"}),
        ('\ufeff{"name": "a"}', {"name": "a"}),
        ('\ufeff// c\r\n{"name": "a",}', {"name": "a"}),
        ('{"name": "\\ud83d\\ude00 x"}', {"name": "\U0001f600 x"}),
        ('{"name": "\\uD83D\\uDE00"}', {"name": "\U0001f600"}),
        ('{"name": "\\\\ud83d"}', {"name": "\\ud83d"}),
        ('{"a": {"b": [1, /* c */ 2,],},}', {"a": {"b": [1, 2]}}),
        ('{"a": ' + "[" * 63 + "]" * 63 + "}", {"a": eval("[" * 63 + "]" * 63)}),
    ],
    ids=[
        "plain", "comments", "trailing-commas", "comment-like-in-strings", "crlf", "bom", "bom-crlf-comment-comma",
        "surrogate-pair", "surrogate-pair-upper-case", "escaped-backslash-not-an-escape", "nested-comments-commas", "64-levels",
    ],
)
def test_parse_jsonc(text: str, expected: dict[str, Any]) -> None:
    assert parse_jsonc(text) == expected


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"name": }', r"my\.json is not valid JSON with comments: .*column"),
        ('{"name": "a"', r"my\.json is not valid JSON"),
        ("", r"my\.json is not valid JSON"),
        ('["a"]', r"my\.json must hold a JSON object at the top level, not list"),
        ('"a"', r"not str"),
        ('{\n  "name": "\\ud83d"\n}', r"my\.json is not valid JSON with comments: \\ud83d at line 2, column 12 is half of a UTF-16 surrogate pair"),
        ('{"name": "\\ude00 x"}', r"\\ude00 at line 1, column 11 is half of a UTF-16 surrogate pair"),
        ('{"name": "\\ud83dx"}', r"\\ud83d at line 1, column 11 is half"),
        ('{"a": ' + "[" * 64 + "]" * 64 + "}", r"my\.json nests objects or arrays more than 64 levels deep"),
        ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", r"more than 64 levels deep"),
        ('{"a": ' + '{"a": ' * 5000 + "1" + "}" * 5001, r"more than 64 levels deep"),
        ('{"a": 1' + "0" * 5000 + "}", r"my\.json is not valid JSON with comments"),
        ('{"a": 1}}', r"Extra data '}' near line 1, column 8"),
    ],
    ids=[
        "missing-value", "unclosed", "empty", "list", "string", "lone-high-surrogate", "lone-low-surrogate",
        "high-surrogate-then-letter", "65-levels", "100001-levels", "5000-objects", "huge-number", "extra-data",
    ],
)
def test_parse_jsonc_rejects(text: str, match: str) -> None:
    """Every parser failure is a config error (exit 3) that says where, never a crash."""
    with pytest.raises(ConfigError, match=match) as e:
        parse_jsonc(text, source="my.json")
    assert e.value.exit_code == 3


def test_parsed_strings_encode_as_utf8(tmp_path: Path) -> None:
    """The CLI reads "\\ud83d\\ude00" as one emoji; so must we: two lone surrogates crash
    every later encode (labels, output, the hostname)."""
    _write(tmp_path / ".devcontainer/devcontainer.json", '{"name": "caf\\u00e9 \\ud83d\\ude00", "service": "\\ud83d\\ude00"}')
    config = load_config(tmp_path)
    assert config.name == "caf\u00e9 \U0001f600"
    assert (config.name + (config.service or "")).encode("utf-8")


def test_candidates_are_in_cli_order() -> None:
    assert CONFIG_CANDIDATES == (
        ".devcontainer/devcontainer.json",
        ".devcontainer.json",
        ".devcontainer/*/devcontainer.json",
    )


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ([".devcontainer/devcontainer.json", ".devcontainer.json", ".devcontainer/a/devcontainer.json"],
         ".devcontainer/devcontainer.json"),
        ([".devcontainer.json", ".devcontainer/a/devcontainer.json", ".devcontainer/b/devcontainer.json"],
         ".devcontainer.json"),
        ([".devcontainer/b/devcontainer.json"], ".devcontainer/b/devcontainer.json"),
        ([".devcontainer/a/b/devcontainer.json"], None),
        (["devcontainer.json"], None),
        ([], None),
    ],
    ids=["folder-first", "dotfile-second", "single-subfolder", "too-deep", "bare-name-ignored", "nothing"],
)
def test_find_config_lookup_order(tmp_path: Path, files: list[str], expected: str | None) -> None:
    for name in files:
        _write(tmp_path / name, "{}")
    found = find_config(tmp_path)
    assert found == (tmp_path / expected if expected else None)


def test_find_config_several_subfolders_is_ambiguous(tmp_path: Path) -> None:
    _write(tmp_path / ".devcontainer/python/devcontainer.json", "{}")
    _write(tmp_path / ".devcontainer/node/devcontainer.json", "{}")
    expected = (
        r"several devcontainer configurations: "
        r"\.devcontainer/node/devcontainer\.json, \.devcontainer/python/devcontainer\.json"
    )
    with pytest.raises(ConfigError, match=expected) as info:
        find_config(tmp_path)
    assert info.value.fix and "--container" in info.value.fix


def test_find_config_ignores_a_folder_named_like_a_config(tmp_path: Path) -> None:
    (tmp_path / ".devcontainer.json").mkdir()
    assert find_config(tmp_path) is None


@pytest.mark.parametrize(
    ("config", "start", "expected"),
    [
        (".devcontainer/devcontainer.json", "src/pkg/deep", ""),
        (".devcontainer.json", "src", ""),
        (".devcontainer/x/devcontainer.json", "src/pkg", ""),
        (".devcontainer/devcontainer.json", "", ""),
        ("sub/.devcontainer.json", "sub/inner", "sub"),
    ],
    ids=["nested", "dotfile", "subfolder-config", "start-is-workspace", "nearest-wins"],
)
def test_find_workspace(tmp_path: Path, config: str, start: str, expected: str) -> None:
    _write(tmp_path / ".devcontainer/devcontainer.json", "{}")
    _write(tmp_path / config, "{}")
    (tmp_path / start).mkdir(parents=True, exist_ok=True)
    assert find_workspace(tmp_path / start) == tmp_path / expected


def test_find_workspace_from_a_file(tmp_path: Path) -> None:
    _write(tmp_path / ".devcontainer.json", "{}")
    file = _write(tmp_path / "src/main.py", "")
    assert find_workspace(file) == tmp_path


def test_find_workspace_none(tmp_path: Path) -> None:
    (tmp_path / "a/b").mkdir(parents=True)
    found = find_workspace(tmp_path / "a/b")
    # Something above tmp_path could in theory hold a config; it must not be below it.
    assert found is None or tmp_path not in (found, *found.parents)


def test_find_workspace_keeps_symlinks(tmp_path: Path) -> None:
    real = tmp_path / "real"
    _write(real / ".devcontainer.json", "{}")
    link = tmp_path / "link"
    link.symlink_to(real)
    (real / "src").mkdir()
    assert find_workspace(link / "src") == link


def test_load_config_full(tmp_path: Path) -> None:
    _write(
        tmp_path / ".devcontainer/devcontainer.json",
        """{
          // a compose-based config
          "name": "My App",
          "dockerComposeFile": ["../compose.yaml", "compose.override.yaml", "/abs/extra.yaml"],
          "service": "app",
          "runArgs": ["--cap-add=NET_ADMIN", "--device=/dev/net/tun"],
          "mounts": [
            "source=ts-state,target=/var/lib/tailscale,type=volume",
            {"target": "/data", "source": "data", "type": "volume"},
            {"type": "bind", "source": "/tmp", "target": "/host-tmp", "readonly": true},
          ],
          "remoteUser": "dev",
          "containerUser": "root",
          "containerEnv": {"TAILSCALE_HOSTNAME": "box"},
        }""",
    )
    config = load_config(tmp_path)
    assert config == DevcontainerConfig(
        path=tmp_path / ".devcontainer/devcontainer.json",
        workspace=tmp_path,
        name="My App",
        service="app",
        compose_files=(
            tmp_path / "compose.yaml",
            tmp_path / ".devcontainer/compose.override.yaml",
            Path("/abs/extra.yaml"),
        ),
        run_args=("--cap-add=NET_ADMIN", "--device=/dev/net/tun"),
        mounts=(
            "source=ts-state,target=/var/lib/tailscale,type=volume",
            "type=volume,source=data,target=/data",
            "type=bind,source=/tmp,target=/host-tmp,readonly=true",
        ),
        remote_user="dev",
    )
    assert config.is_compose


def test_load_config_minimal(tmp_path: Path) -> None:
    _write(tmp_path / ".devcontainer.json", '{"image": "debian", "containerUser": "vscode"}')
    config = load_config(tmp_path)
    assert (config.name, config.service, config.compose_files) == (None, None, ())
    assert (config.run_args, config.mounts) == ((), ())
    assert (config.remote_user, config.is_compose) == ("vscode", False)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("compose.yaml", ("compose.yaml",)), (["a.yml", "b.yml"], ("a.yml", "b.yml")), ([], ())],
    ids=["string", "list", "empty-list"],
)
def test_compose_file_forms(tmp_path: Path, value: Any, expected: tuple[str, ...]) -> None:
    _write(tmp_path / ".devcontainer/devcontainer.json", json.dumps({"dockerComposeFile": value}))
    config = load_config(tmp_path)
    assert config.compose_files == tuple(tmp_path / ".devcontainer" / name for name in expected)


def test_load_config_explicit_path_relative_to_subfolder(tmp_path: Path) -> None:
    path = _write(tmp_path / ".devcontainer/py/devcontainer.json", '{"dockerComposeFile": "c.yml"}')
    _write(tmp_path / ".devcontainer/node/devcontainer.json", "{}")
    config = load_config(tmp_path, path)
    assert (config.path, config.compose_files) == (path, (tmp_path / ".devcontainer/py/c.yml",))


def test_load_config_relative_workspace_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path / "ws/.devcontainer.json", "{}")
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("ws"))
    assert (config.workspace, config.path) == (tmp_path / "ws", tmp_path / "ws/.devcontainer.json")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ('{"name": 3}', r"devcontainer\.json: 'name' must be a string"),
        ('{"dockerComposeFile": 3}', r"'dockerComposeFile' must be a string or a list of strings"),
        ('{"runArgs": "--x"}', r"'runArgs' must be a list of strings"),
        ('{"mounts": [3]}', r"mounts\[0\] must be a string or an object"),
        ('{"mounts": "x"}', r"'mounts' must be a list"),
        ('{"name": "a",,}', r"devcontainer\.json is not valid JSON"),
    ],
    ids=["name", "compose-file", "run-args", "mount-entry", "mounts", "syntax"],
)
def test_load_config_rejects_bad_values(tmp_path: Path, content: str, match: str) -> None:
    _write(tmp_path / ".devcontainer/devcontainer.json", content)
    with pytest.raises(ConfigError, match=match):
        load_config(tmp_path)


def test_load_config_missing(tmp_path: Path) -> None:
    expected = r"no devcontainer configuration in .* \(looked for \.devcontainer/devcontainer\.json"
    with pytest.raises(ConfigError, match=expected):
        load_config(tmp_path)


def test_load_config_explicit_path_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.json does not exist"):
        load_config(tmp_path, tmp_path / "nope.json")


def test_load_config_not_utf8(tmp_path: Path) -> None:
    (tmp_path / ".devcontainer.json").write_bytes(b'{"name": "\xff"}')
    with pytest.raises(ConfigError, match=r"cannot read .*\.devcontainer\.json"):
        load_config(tmp_path)


def _compose_config(tmp_path: Path, compose_files: list[str], workspace: str = "My.Work Space") -> DevcontainerConfig:
    ws = tmp_path / workspace
    _write(ws / ".devcontainer/devcontainer.json", json.dumps({"dockerComposeFile": compose_files, "service": "app"}))
    for name in compose_files:
        target = (ws / ".devcontainer" / name).resolve()
        if not target.exists():
            _write(target, "services:\n  app:\n    image: debian\n")
    return load_config(ws)


@pytest.mark.parametrize(
    ("compose_files", "environ", "dotenv", "compose_name", "expected"),
    [
        (["compose.yaml"], {"COMPOSE_PROJECT_NAME": "From_Env"}, "COMPOSE_PROJECT_NAME=dotenv", "named", "from_env"),
        (["compose.yaml"], {"COMPOSE_PROJECT_NAME": ""}, "COMPOSE_PROJECT_NAME=DotEnv", "named", "dotenv"),
        (["compose.yaml"], {}, 'COMPOSE_PROJECT_NAME="quoted name"', "named", "quotedname"),
        (["compose.yaml"], {}, "# c\nexport COMPOSE_PROJECT_NAME='single' # c", "named", "single"),
        (["compose.yaml"], {}, "COMPOSE_PROJECT_NAME=plain # comment", "named", "plain"),
        (["compose.yaml"], {}, "OTHER=x\nCOMPOSE_PROJECT_NAME=", "Named.Project", "namedproject"),
        (["compose.yaml"], {}, None, None, "myworkspace_devcontainer"),
        (["../compose.yaml"], {}, None, None, "myworkspace"),
        (["../docker/compose.yaml"], {}, None, None, "docker"),
    ],
    ids=[
        "environ",
        "dotenv-when-environ-empty",
        "dotenv-double-quotes",
        "dotenv-export-single-quotes",
        "dotenv-inline-comment",
        "compose-name",
        "in-devcontainer-folder",
        "workspace-root",
        "other-folder",
    ],
)
def test_compose_project_name(
    tmp_path: Path,
    compose_files: list[str],
    environ: dict[str, str],
    dotenv: str | None,
    compose_name: str | None,
    expected: str,
) -> None:
    config = _compose_config(tmp_path, compose_files)
    first = config.compose_files[0]
    if dotenv is not None:
        _write(first.parent / ".env", dotenv + "\n")
    if compose_name is not None:
        _write(first, f"name: {compose_name}\nservices:\n  app:\n    image: debian\n")
    assert compose_project_name(config, environ) == expected


def test_compose_project_name_dotenv_of_workspace_root_is_not_read(tmp_path: Path) -> None:
    config = _compose_config(tmp_path, ["compose.yaml"], workspace="ws")
    _write(config.workspace / ".env", "COMPOSE_PROJECT_NAME=wrong\n")
    assert compose_project_name(config, {}) == "ws_devcontainer"


def test_compose_project_name_later_file_name_wins(tmp_path: Path) -> None:
    config = _compose_config(tmp_path, ["a.yaml", "b.yaml"], workspace="ws")
    _write(config.compose_files[0], "name: first\n")
    _write(config.compose_files[1], "name: second\n")
    assert compose_project_name(config, {}) == "second"


def test_compose_project_name_subfolder_config(tmp_path: Path) -> None:
    path = _write(tmp_path / ".devcontainer/py/devcontainer.json", '{"dockerComposeFile": "compose.yaml"}')
    _write(tmp_path / ".devcontainer/py/compose.yaml", "services: {}\n")
    assert compose_project_name(load_config(tmp_path, path), {}) == "py"


@pytest.mark.parametrize(
    ("setup", "match"),
    [
        ("not-compose", r"is not compose-based"),
        ("missing-file", r"compose file .*compose\.yaml does not exist"),
        ("bad-yaml", r"compose file .*compose\.yaml is not valid YAML"),
        ("unusable-name", r"compose project name '\.\.\.' has no usable characters"),
    ],
    ids=["not-compose", "missing-file", "bad-yaml", "unusable-name"],
)
def test_compose_project_name_errors(tmp_path: Path, setup: str, match: str) -> None:
    if setup == "not-compose":
        _write(tmp_path / ".devcontainer.json", '{"image": "debian"}')
        config = load_config(tmp_path)
    else:
        _write(tmp_path / ".devcontainer/devcontainer.json", '{"dockerComposeFile": "compose.yaml"}')
        config = load_config(tmp_path)
        if setup == "bad-yaml":
            _write(config.compose_files[0], "services: [unclosed\n")
        elif setup == "unusable-name":
            _write(config.compose_files[0], "name: '...'\n")
    with pytest.raises(ConfigError, match=match):
        compose_project_name(config, {})
