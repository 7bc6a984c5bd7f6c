"""core/compose_render.py, core/compose_check.py, core/compose_merge.py and shell/compose.py: rendering the Tailscale settings, and checking configurations for them.

Every compose fixture is checked twice, through ``docker compose config``
(skipped where the CLI is missing) and through our own merger, and the two
must agree exactly.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import pytest

from devc_tasks.core.compose_check import REQUIREMENT_KEYS, Requirement
from devc_tasks.core.compose_render import OVERRIDE_FILENAME, render
from devc_tasks.core.devcontainer import DevcontainerConfig
from devc_tasks.core.errors import ConfigError, UsageError
from devc_tasks.shell.compose import check, compose_config_argv, default_override_path, docker_compose_available, write_override
from devc_tasks.shell.config_files import load_config
from tests.conftest import _engine_required

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "compose"
ALL = frozenset(REQUIREMENT_KEYS)
HAS_DOCKER_COMPOSE = docker_compose_available()
# where the tools are required (CI), a missing `docker compose` fails instead of skipping
NO_COMPOSE_SKIP = pytest.mark.skipif(not HAS_DOCKER_COMPOSE and not _engine_required(), reason="`docker compose version` does not work here")

MERGERS = [
    pytest.param(False, id="own-merger"),
    pytest.param(
        True,
        id="docker-compose",
        marks=NO_COMPOSE_SKIP,
    ),
]


def _env() -> dict[str, str]:
    """The test's environment without variables the fixtures interpolate or compose reads."""
    drop = {"TUN_DEVICE", "EXTRA_CAP", "STATE_VOLUME", "COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def _config(name: str) -> DevcontainerConfig:
    return load_config(FIXTURES / name)


def _missing(requirements: list[Requirement]) -> set[str]:
    return {r.key for r in requirements if not r.present}


def _copy(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(FIXTURES / name, target)
    return target


def _image_config(run_args: tuple[str, ...] = (), mounts: tuple[str, ...] = ()) -> DevcontainerConfig:
    return dataclasses.replace(_config("image-based"), run_args=run_args, mounts=mounts)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- compose fixtures: exactly the missing entries, on both paths ------------------------------------

COMPOSE_CASES = [
    ("all-present", set(), "named volume tailscale-state at /var/lib/tailscale"),
    ("missing-tun", {"tun-device"}, "named volume tailscale-state at /var/lib/tailscale"),
    ("missing-net-admin", {"cap-net-admin"}, "named volume tailscale-state at /var/lib/tailscale"),
    ("missing-net-raw", {"cap-net-raw"}, "named volume tailscale-state at /var/lib/tailscale"),
    ("missing-volume", {"state-volume"}, "nothing mounted at /var/lib/tailscale"),
    ("anonymous-volume", {"state-volume"}, "anonymous volume at /var/lib/tailscale"),
    ("read-only-volume", {"state-volume"}, "read-only volume mount at /var/lib/tailscale"),
    ("bind-mount", set(), "bind mount {fixture}/.devcontainer/tailscale-state at /var/lib/tailscale"),
    ("multi-file", set(), "named volume ts-state at /var/lib/tailscale"),
    ("privileged", set(), "named volume tailscale-state at /var/lib/tailscale"),
    ("interpolated", set(), "named volume tailscale-state at /var/lib/tailscale"),
    ("bare", set(ALL), "nothing mounted at /var/lib/tailscale"),
]


@pytest.mark.parametrize("use_docker", MERGERS)
@pytest.mark.parametrize(("fixture", "missing", "volume_seen"), COMPOSE_CASES, ids=[c[0] for c in COMPOSE_CASES])
def test_check_compose_finds_exactly_the_missing(
    fixture: str, missing: set[str], volume_seen: str, use_docker: bool
) -> None:
    requirements = check(_config(fixture), _env(), use_docker=use_docker)
    assert [r.key for r in requirements] == list(REQUIREMENT_KEYS)
    assert _missing(requirements) == missing
    volume = next(r for r in requirements if r.key == "state-volume")
    assert volume.seen.startswith(volume_seen.format(fixture=FIXTURES / fixture))


@NO_COMPOSE_SKIP
@pytest.mark.parametrize("fixture", [c[0] for c in COMPOSE_CASES], ids=[c[0] for c in COMPOSE_CASES])
def test_check_docker_and_own_merger_agree(fixture: str) -> None:
    config = _config(fixture)
    assert check(config, _env(), use_docker=True) == check(config, _env(), use_docker=False)


@pytest.mark.parametrize(
    ("fixture", "key", "seen"),
    [
        ("missing-tun", "tun-device", "devices: [/dev/fuse]"),
        ("missing-net-raw", "cap-net-raw", "cap_add: [NET_ADMIN, SYS_PTRACE]"),
        ("bare", "cap-net-admin", "cap_add: []"),
        ("privileged", "tun-device", "privileged: true (every host device)"),
        ("privileged", "cap-net-raw", "privileged: true (every capability)"),
        ("multi-file", "cap-net-admin", "cap_add: [SYS_PTRACE, net_admin, CAP_NET_RAW]"),
        ("anonymous-volume", "state-volume", "anonymous volume at /var/lib/tailscale: it dies with the container"),
    ],
    ids=["other-device", "other-caps", "no-caps", "privileged-device", "privileged-cap", "cap-spellings", "anonymous"],
)
@pytest.mark.parametrize("use_docker", MERGERS)
def test_check_compose_says_what_it_saw(fixture: str, key: str, seen: str, use_docker: bool) -> None:
    requirement = next(r for r in check(_config(fixture), _env(), use_docker=use_docker) if r.key == key)
    assert requirement.seen == seen


@pytest.mark.parametrize("use_docker", MERGERS)
def test_check_interpolates_from_environ(use_docker: bool) -> None:
    env = {**_env(), "EXTRA_CAP": "SYS_ADMIN", "TUN_DEVICE": "/dev/fuse", "STATE_VOLUME": "other-state"}
    requirements = check(_config("interpolated"), env, use_docker=use_docker)
    assert _missing(requirements) == {"tun-device", "cap-net-admin"}
    assert requirements[-1].seen == "named volume other-state at /var/lib/tailscale"


@pytest.mark.parametrize("use_docker", MERGERS)
@pytest.mark.parametrize(
    ("fixture", "match"),
    [
        ("undefined-volume", r"refers to undefined volume tailscale-state"),
        ("wrong-service", r"'devcontainer' is not in the compose files .*services: app"),
    ],
    ids=["undefined-volume", "wrong-service"],
)
def test_check_compose_rejects(fixture: str, match: str, use_docker: bool) -> None:
    with pytest.raises(ConfigError, match=match):
        check(_config(fixture), _env(), use_docker=use_docker)


@pytest.mark.parametrize("use_docker", MERGERS)
@pytest.mark.parametrize(
    ("text", "match"),
    [
        (None, r"does not exist"),
        ("services: [\n", r"not valid YAML|yaml|parse"),
    ],
    ids=["missing-file", "bad-yaml"],
)
def test_check_unreadable_compose_file(tmp_path: Path, text: str | None, match: str, use_docker: bool) -> None:
    workspace = _copy("bare", tmp_path)
    extra = workspace / ".devcontainer" / "extra.yml"
    if text is not None:
        _write(extra, text)
    config = dataclasses.replace(_config("bare"), compose_files=(*load_config(workspace).compose_files, extra))
    with pytest.raises(ConfigError, match=match):
        check(config, _env(), use_docker=use_docker)


@pytest.mark.parametrize("use_docker", MERGERS)
@pytest.mark.parametrize(
    ("entry", "present", "seen"),
    [
        ("ts:/var/lib/tailscale/", True, "named volume ts at /var/lib/tailscale"),
        ("{type: volume, source: ts, target: /var/lib/tailscale}", True, "named volume ts at /var/lib/tailscale"),
        ("{type: volume, source: ts, target: /var/lib/tailscale/}", False, "2 mounts at /var/lib/tailscale"),
    ],
    ids=["short-trailing-slash-replaces", "long-replaces", "long-trailing-slash-adds"],
)
def test_check_later_mount_at_the_state_dir(
    tmp_path: Path, entry: str, present: bool, seen: str, use_docker: bool
) -> None:
    """Compose cleans short-syntax targets but keys long-syntax ones as written: ``/x/`` then does not
    replace ``/x``, and docker refuses two mounts at one path."""
    workspace = _copy("anonymous-volume", tmp_path)
    extra = _write(
        workspace / ".devcontainer" / "extra.yml",
        f"services:\n  app:\n    volumes:\n      - {entry}\nvolumes:\n  ts: {{}}\n",
    )
    base = load_config(workspace)
    config = dataclasses.replace(base, compose_files=(*base.compose_files, extra))
    volume = check(config, _env(), use_docker=use_docker)[-1]
    assert volume.present is present
    assert volume.seen.startswith(seen)


def test_check_compose_without_service() -> None:
    config = dataclasses.replace(_config("bare"), service=None)
    with pytest.raises(ConfigError, match=r"no 'service'"):
        check(config, _env(), use_docker=False)


def test_check_forced_docker_without_docker() -> None:
    with pytest.raises(ConfigError, match=r"docker is not installed"):
        check(_config("bare"), {"PATH": "/nonexistent"}, use_docker=True)


def test_docker_compose_available_without_docker() -> None:
    assert docker_compose_available({"PATH": "/nonexistent"}) is False


def test_compose_config_argv() -> None:
    files = (Path("/w/docker-compose.yml"), Path("/w/.devcontainer/b.yml"))
    assert compose_config_argv("/usr/bin/docker", files) == [
        "/usr/bin/docker", "compose",
        "-f", "/w/docker-compose.yml",
        "-f", "/w/.devcontainer/b.yml",
        "--project-directory", "/w",
        "config", "--format", "json",
    ]  # fmt: skip


# --- render, and the round trip render -> override -> check ------------------------------------------


def test_render_compose() -> None:
    import yaml

    text = render(_config("bare"))
    assert text.startswith("# Generated by devc-tasks")
    assert yaml.safe_load(text) == {
        "services": {
            "app": {
                "devices": ["/dev/net/tun:/dev/net/tun"],
                "cap_add": ["NET_ADMIN", "NET_RAW"],
                "volumes": ["tailscale-state:/var/lib/tailscale"],
            }
        },
        "volumes": {"tailscale-state": {}},
    }


def test_render_compose_quotes_odd_service_names() -> None:
    import yaml

    config = dataclasses.replace(_config("bare"), service="dev: container")
    assert list(yaml.safe_load(render(config))["services"]) == ["dev: container"]


def test_render_compose_without_service() -> None:
    with pytest.raises(ConfigError, match=r"no 'service'"):
        render(dataclasses.replace(_config("bare"), service=None))


def test_render_image_based() -> None:
    assert json.loads(render(_config("image-based"))) == {
        "runArgs": ["--device=/dev/net/tun", "--cap-add=NET_ADMIN", "--cap-add=NET_RAW"],
        "mounts": ["source=tailscale-state-${devcontainerId},target=/var/lib/tailscale,type=volume"],
    }


ROUND_TRIP = [c[0] for c in COMPOSE_CASES]


@pytest.mark.parametrize("use_docker", MERGERS)
@pytest.mark.parametrize("fixture", ROUND_TRIP, ids=ROUND_TRIP)
def test_render_round_trip_compose(tmp_path: Path, fixture: str, use_docker: bool) -> None:
    """The rendered override, added as the last compose file, satisfies every requirement."""
    config = load_config(_copy(fixture, tmp_path))
    path = default_override_path(config)
    write_override(path, render(config), force=False)
    with_override = dataclasses.replace(config, compose_files=(*config.compose_files, path))
    requirements = check(with_override, _env(), use_docker=use_docker)
    assert _missing(requirements) == set()
    assert "anonymous" not in requirements[-1].seen


@pytest.mark.parametrize(
    ("run_args", "mounts"),
    [((), ()), (("--cap-add=NET_ADMIN",), ("source=other,target=/data,type=volume",))],
    ids=["empty", "partial"],
)
def test_render_round_trip_image_based(run_args: tuple[str, ...], mounts: tuple[str, ...]) -> None:
    snippet = json.loads(render(_image_config()))
    config = _image_config(run_args + tuple(snippet["runArgs"]), mounts + tuple(snippet["mounts"]))
    assert _missing(check(config)) == set()


def test_default_override_path() -> None:
    config = _config("multi-file")
    assert default_override_path(config) == FIXTURES / "multi-file" / OVERRIDE_FILENAME


def test_default_override_path_image_based() -> None:
    with pytest.raises(ConfigError, match=r"not compose-based"):
        default_override_path(_config("image-based"))


# --- compose fixes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("tun-device", {"services": {"app": {"devices": ["/dev/net/tun:/dev/net/tun"]}}}),
        ("cap-net-admin", {"services": {"app": {"cap_add": ["NET_ADMIN"]}}}),
        ("cap-net-raw", {"services": {"app": {"cap_add": ["NET_RAW"]}}}),
        (
            "state-volume",
            {
                "services": {"app": {"volumes": ["tailscale-state:/var/lib/tailscale"]}},
                "volumes": {"tailscale-state": {}},
            },
        ),
    ],
    ids=list(REQUIREMENT_KEYS),
)
def test_compose_fixes_are_yaml_for_the_service(key: str, expected: dict[str, object]) -> None:
    import yaml

    requirement = next(r for r in check(_config("bare"), _env(), use_docker=False) if r.key == key)
    assert yaml.safe_load(requirement.fix) == expected


# --- image-based: runArgs and mounts -----------------------------------------------------------------

IMAGE_CASES = [
    (("--device=/dev/net/tun", "--cap-add=NET_ADMIN", "--cap-add=NET_RAW"), ("source=ts,target=/var/lib/tailscale,type=volume",), set()),
    (("--device", "/dev/net/tun", "--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW"), ("source=ts,target=/var/lib/tailscale",), set()),
    (("--device /dev/net/tun", "--cap-add NET_ADMIN", "--cap-add NET_RAW"), ("src=ts,dst=/var/lib/tailscale",), set()),
    (("--device=/dev/net/tun:/dev/net/tun", "--cap-add=ALL"), ("type=bind,source=/srv/ts,target=/var/lib/tailscale",), set()),
    (("--device=/dev/net/tun:/dev/net/tun:rwm", "--cap-add=net_admin", "--cap-add=CAP_NET_RAW"), ("type=volume,source=ts,destination=/var/lib/tailscale/",), set()),
    (("--privileged",), ("source=ts,target=/var/lib/tailscale,type=volume",), set()),
    (("--privileged=false", "--init"), (), set(ALL)),
    ((), (), set(ALL)),
    (("--device=/dev/fuse", "--cap-add=NET_ADMIN", "--cap-add=NET_RAW"), ("source=ts,target=/var/lib/tailscale",), {"tun-device"}),
    (("--device=/dev/net/tun:/dev/tun0", "--cap-add=NET_ADMIN", "--cap-add=NET_RAW"), ("source=ts,target=/var/lib/tailscale",), {"tun-device"}),
    (("--device=/dev/net/tun", "--cap-add=NET_RAW"), ("source=ts,target=/var/lib/tailscale",), {"cap-net-admin"}),
    (("--device=/dev/net/tun", "--cap-add=NET_ADMIN"), ("source=ts,target=/var/lib/tailscale",), {"cap-net-raw"}),
    (("--device=/dev/net/tun", "--cap-add=NET_ADMIN", "--cap-add=NET_RAW"), (), {"state-volume"}),
    (("--device=/dev/net/tun", "--cap-add=NET_ADMIN", "--cap-add=NET_RAW"), ("type=volume,target=/var/lib/tailscale",), {"state-volume"}),
    (("--device=/dev/net/tun", "--cap-add=NET_ADMIN", "--cap-add=NET_RAW"), ("type=tmpfs,target=/var/lib/tailscale",), {"state-volume"}),
    (("--device=/dev/net/tun", "--cap-add=NET_ADMIN", "--cap-add=NET_RAW", "-v", "ts:/var/lib/tailscale"), (), set()),
    (("--device=/dev/net/tun", "--cap-add=NET_ADMIN", "--cap-add=NET_RAW", "-v", "ts:/var/lib/tailscale:ro"), (), {"state-volume"}),
    (("--device=/dev/net/tun", "--cap-add=NET_ADMIN", "--cap-add=NET_RAW"), ("source=ts,target=/var/lib/tailscale,readonly",), {"state-volume"}),
    (("--device=/dev/net/tun", "--cap-add=NET_ADMIN", "--cap-add=NET_RAW", "--volume=/var/lib/tailscale"), (), {"state-volume"}),
    (("--device=/dev/net/tun", "--cap-add=NET_ADMIN", "--cap-add=NET_RAW", "--mount", "source=ts,target=/var/lib"), (), set()),
    (("--cap-add",), (), set(ALL)),
]  # fmt: skip
IMAGE_IDS = [
    "equals-form",
    "two-entry-form",
    "space-in-one-entry",
    "device-pair-cap-all-bind",
    "device-perms-cap-spellings-destination",
    "privileged",
    "privileged-false",
    "nothing",
    "other-device",
    "tun-mapped-elsewhere",
    "no-net-admin",
    "no-net-raw",
    "no-mount",
    "anonymous-mount",
    "tmpfs-mount",
    "runargs-v-named",
    "runargs-v-read-only",
    "mount-readonly",
    "runargs-volume-anonymous",
    "runargs-mount-at-parent",
    "dangling-option",
]


@pytest.mark.parametrize(("run_args", "mounts", "missing"), IMAGE_CASES, ids=IMAGE_IDS)
def test_check_image_based(run_args: tuple[str, ...], mounts: tuple[str, ...], missing: set[str]) -> None:
    assert _missing(check(_image_config(run_args, mounts))) == missing


def test_check_image_based_fixture() -> None:
    """The fixture's object-form mount comes through load_config's rendering."""
    requirements = check(_config("image-based"), use_docker=True)  # use_docker means nothing without compose
    assert _missing(requirements) == set()
    assert requirements[-1].seen == "named volume tailscale-state at /var/lib/tailscale"


@pytest.mark.parametrize(
    ("mounts", "seen"),
    [
        (("type=bind,source=/srv/ts,target=/var/lib/tailscale",), "bind mount /srv/ts at /var/lib/tailscale"),
        (("source=data,target=/var/lib",), "named volume data at /var/lib (holds /var/lib/tailscale)"),
        (
            ("source=data,target=/var/lib", "type=volume,target=/var/lib/tailscale"),
            "anonymous volume at /var/lib/tailscale: it dies with the container",
        ),
        (("source=data,target=/var/lib/tailscale-other",), "nothing mounted at /var/lib/tailscale"),
    ],
    ids=["bind", "parent", "deepest-wins", "prefix-is-not-parent"],
)
def test_check_image_based_volume_seen(mounts: tuple[str, ...], seen: str) -> None:
    volume = check(_image_config((), mounts))[-1]
    assert volume.seen.startswith(seen)


@pytest.mark.parametrize(
    ("mounts", "fix"),
    [
        ((), '"mounts": ["source=tailscale-state-${devcontainerId},target=/var/lib/tailscale,type=volume"]'),
        (
            ("type=volume,target=/var/lib/tailscale",),
            "replace the mount at /var/lib/tailscale in devcontainer.json with\n"
            '"mounts": ["source=tailscale-state-${devcontainerId},target=/var/lib/tailscale,type=volume"]',
        ),
    ],
    ids=["add", "replace-anonymous"],
)
def test_image_based_volume_fix(mounts: tuple[str, ...], fix: str) -> None:
    assert check(_image_config((), mounts))[-1].fix == fix


def test_image_based_fixes() -> None:
    fixes = {r.key: r.fix for r in check(_image_config())}
    assert fixes["tun-device"] == '"runArgs": ["--device=/dev/net/tun"]'
    assert fixes["cap-net-admin"] == '"runArgs": ["--cap-add=NET_ADMIN"]'
    assert fixes["cap-net-raw"] == '"runArgs": ["--cap-add=NET_RAW"]'


# --- write_override ------------------------------------------------------------------------------------


def test_write_override_new(tmp_path: Path) -> None:
    path = tmp_path / OVERRIDE_FILENAME
    write_override(path, "services: {}\n", force=False)
    assert path.read_text(encoding="utf-8") == "services: {}\n"


def test_write_override_refuses_existing(tmp_path: Path) -> None:
    path = _write(tmp_path / OVERRIDE_FILENAME, "mine\n")
    with pytest.raises(UsageError, match=r"already exists") as info:
        write_override(path, "services: {}\n", force=False)
    assert "--force" in (info.value.fix or "")
    assert path.read_text(encoding="utf-8") == "mine\n"


def test_write_override_force(tmp_path: Path) -> None:
    path = _write(tmp_path / OVERRIDE_FILENAME, "mine\n")
    write_override(path, "services: {}\n", force=True)
    assert path.read_text(encoding="utf-8") == "services: {}\n"


def test_write_override_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot write"):
        write_override(tmp_path / "nope" / OVERRIDE_FILENAME, "x\n", force=False)


def test_check_leaves_files_alone(tmp_path: Path) -> None:
    workspace = _copy("bare", tmp_path)
    before = {p: p.read_bytes() for p in workspace.rglob("*") if p.is_file()}
    check(load_config(workspace), _env())
    render(load_config(workspace))
    assert {p: p.read_bytes() for p in workspace.rglob("*") if p.is_file()} == before


def test_module_imports_yaml_only_inside_functions() -> None:
    """Startup stays light: yaml is imported where a compose file is read or written, not at module level."""
    import ast

    import devc_tasks.core.compose_check
    import devc_tasks.core.compose_merge
    import devc_tasks.core.compose_render
    import devc_tasks.shell.compose

    for module in (devc_tasks.shell.compose, devc_tasks.core.compose_render, devc_tasks.core.compose_check, devc_tasks.core.compose_merge):
        tree = ast.parse(Path(module.__file__ or "").read_text(encoding="utf-8"))
        top_level = {
            alias.name.split(".")[0]
            for node in tree.body
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
        }
        assert "yaml" not in top_level, module.__name__


def _list_bomb(levels: int) -> str:
    """Each anchor a list of nine aliases to the one before: 9**levels values from a few lines."""
    lines = ["x-l0: &l0 [v, v, v, v, v, v, v, v, v]"]
    lines += [f"x-l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + f"\nservices:\n  app:\n    image: x\n    labels: {{bomb: '1'}}\n    x-bomb: *l{levels - 1}\n"


def _merge_bomb(levels: int) -> str:
    """Merge keys of merge keys: PyYAML doubles each level's pairs (2**levels)."""
    lines = ["x-m0: &m0 {k: v}"]
    lines += [f"x-m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}]}}" for i in range(1, levels)]
    return "\n".join(lines) + f"\nservices:\n  app:\n    <<: *m{levels - 1}\n    image: x\n"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (_list_bomb(6), r"expands to more than 100000 values .*alias bomb"),
        (_merge_bomb(18), r"expands to more than 100000 values"),
        ("x-a: &a [*a]\nservices: {app: {image: x}}\n", r"an alias refers to a node that contains it"),
        ("services: {app: {image: x, labels: " + "[" * 5000 + "]" * 5000 + "}}\n", r"more than 64 levels deep"),
        ("services:\n" + "".join(" " * (2 * i + 2) + f"k{i}:\n" for i in range(80)) + " " * 162 + "v\n", r"more than 64 levels deep"),
    ],
    ids=["alias-bomb", "merge-key-bomb", "recursive-alias", "deep-flow", "deep-block"],
)
def test_own_merger_bounds_hostile_yaml(tmp_path: Path, text: str, match: str) -> None:
    """A few lines of YAML can stand for billions of values (aliases, merge keys) or nest
    thousands of levels: the fallback merger refuses them as a config error (exit 3) at once,
    instead of expanding them for minutes or dying of RecursionError."""
    workspace = _copy("bare", tmp_path)
    extra = _write(workspace / ".devcontainer" / "extra.yml", text)
    base = load_config(workspace)
    config = dataclasses.replace(base, compose_files=(*base.compose_files, extra))
    with pytest.raises(ConfigError, match=match) as e:
        check(config, _env(), use_docker=False)
    assert e.value.exit_code == 3 and str(extra) in e.value.message


def test_own_merger_reads_ordinary_anchors_and_merge_keys(tmp_path: Path) -> None:
    workspace = _copy("bare", tmp_path)
    extra = _write(
        workspace / ".devcontainer" / "extra.yml",
        "x-net: &net\n  cap_add: [NET_ADMIN, NET_RAW]\n  devices: [/dev/net/tun]\nservices:\n  app:\n    <<: *net\n",
    )
    base = load_config(workspace)
    config = dataclasses.replace(base, compose_files=(*base.compose_files, extra))
    seen = {r.key: r.present for r in check(config, _env(), use_docker=False)}
    assert seen["tun-device"] and seen["cap-net-admin"] and seen["cap-net-raw"]
