"""Reading devcontainer.json the way the devcontainer CLI does.

We need the configuration for two things: to find the container the CLI
created (its labels name the workspace folder and config file; compose-based
configs add a compose project and service) and to derive the node name. So
this module follows the CLI's lookup order, path rules and compose project
naming, and otherwise reads only the few keys we use. Everything here is
pure apart from reading files; nothing talks to an engine.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devc_tasks.core.errors import ConfigError

MAX_CONFIG_BYTES = 16 * 1024 * 1024
"""The most a devcontainer.json, compose or .env file may hold: far past any real one."""


def read_config_text(path: Path, limit: int = MAX_CONFIG_BYTES) -> str:
    """A configuration file's text, read only from a regular file and at most ``limit`` bytes:
    a FIFO would hang the read and ``/dev/zero`` would fill memory. Raises ``OSError`` (or
    ``UnicodeDecodeError``) as ``Path.read_text`` does, for the callers' messages."""
    import errno
    import stat

    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file (a FIFO or a device)", str(path))
        data = f.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than {limit} bytes", str(path))
    return data.decode("utf-8")

__all__ = [
    "read_dotenv",
    "CONFIG_CANDIDATES",
    "DevcontainerConfig",
    "parse_jsonc",
    "MAX_NESTING",
    "load_yaml",
    "find_workspace",
    "find_config",
    "load_config",
    "compose_project_name",
    "check_compose_files",
]

CONFIG_CANDIDATES: tuple[str, ...] = (
    ".devcontainer/devcontainer.json",
    ".devcontainer.json",
    ".devcontainer/*/devcontainer.json",
)
"""Where the devcontainer CLI looks for the configuration, in its order.

The last entry is a glob: one level of subfolders under ``.devcontainer``.
"""

_PROJECT_NAME_DROP = re.compile(r"[^-_a-z0-9]")
_WORKSPACE_FIX = "Pass --workspace with the folder that holds the devcontainer configuration"


MAX_NESTING = 64
"""How deep objects and arrays may nest in devcontainer.json and compose files.

Real files nest a handful of levels; the bound turns a hostile or broken file
into a config error instead of a RecursionError deep inside a parser.
"""

_NEAR = re.compile(r"near (\d+)")
_CODEPOINT = re.compile(r"U\+([0-9a-fA-F]{4,6})")
_BYTES_NAME = re.compile(r"b'([^']*)'")
_GRAMMAR_WORDS = {"JSON5Value": "a value", "comma": "','"}
# A UTF-16 escape of half a surrogate pair: a high half not followed by a low one,
# or a low half not preceded by a high one (JSON text can only name characters
# beyond U+FFFF as such pairs, "\ud83d\ude00").
_LONE_SURROGATE = re.compile(
    r"(?<!\\)(?:\\\\)*(\\u[dD][89abAB][0-9a-fA-F]{2})(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<![dD][89abAB][0-9a-fA-F]{2})(?<!\\)(?:\\\\)*(\\u[dD][c-fC-F][0-9a-fA-F]{2})"
)


def _line_column(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"line {line}, column {column}"


def _explain(message: str, text: str) -> str:
    """pyjson5's message in the user's terms: a line and column instead of an offset,
    characters instead of code points, grammar names in words."""
    message = _NEAR.sub(lambda m: "near " + _line_column(text, max(int(m.group(1)) - 1, 0)), message)

    def char(m: re.Match[str]) -> str:
        ch = chr(int(m.group(1), 16))
        return repr(ch) if ch.isprintable() else m.group(0)

    message = _CODEPOINT.sub(char, message)
    return _BYTES_NAME.sub(lambda m: _GRAMMAR_WORDS.get(m.group(1), m.group(1)), message)


def parse_jsonc(text: str, *, source: str = "devcontainer.json") -> dict[str, Any]:
    """Parse devcontainer.json's dialect: JSON with comments and trailing commas.

    pyjson5 is a compiled, maintained JSON5 parser: it handles what
    regex-based comment strippers get wrong (``//`` inside strings, CRLF, a
    BOM), joins UTF-16 surrogate pairs (``"\\ud83d\\ude00"`` is one emoji, as
    in the devcontainer CLI; the pure-Python json5 left two lone surrogates
    that crashed any later encoding) and bounds nesting instead of recursing
    without limit. It accepts a superset of JSONC (JSON5: single quotes,
    unquoted keys); the devcontainer CLI would refuse those, we read them.
    Every failure is a ``ConfigError`` naming ``source`` and the place.
    """
    import pyjson5  # compiled; imported where a file is read, so `--list` stays light

    text = text.removeprefix("\ufeff")
    try:
        data = pyjson5.decode(text, maxdepth=MAX_NESTING)
    except pyjson5.Json5NestingTooDeep as exc:
        raise ConfigError(
            f"{source} nests objects or arrays more than {MAX_NESTING} levels deep",
            fix=f"Fix {source}: a devcontainer configuration nests a few levels",
        ) from exc
    except (pyjson5.Json5Exception, ValueError, RecursionError, MemoryError) as exc:
        lone = _LONE_SURROGATE.search(text)
        if lone is not None:
            escape = lone.group(1) or lone.group(2)
            raise ConfigError(
                f"{source} is not valid JSON with comments: {escape} at {_line_column(text, lone.start(lone.lastindex or 0))} "
                "is half of a UTF-16 surrogate pair",
                fix=f"Fix {source}: write the character itself, or both halves of its escape (e.g. \\ud83d\\ude00)",
            ) from exc
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        raise ConfigError(
            f"{source} is not valid JSON with comments: {_explain(message, text)}",
            fix=f"Fix the syntax of {source}",
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source} must hold a JSON object at the top level, not {type(data).__name__}",
            fix=f"Fix {source}",
        )
    return data


def _is_file(path: Path) -> bool:
    """``Path.is_file``, but a folder we may not look into (EACCES) is a ``ConfigError``
    that names it, not a traceback."""
    try:
        return path.is_file()
    except OSError as exc:
        raise ConfigError(
            f"cannot look for a devcontainer configuration at {path}: {exc.strerror or exc}",
            fix=f"Check the permissions of {path.parent} (e.g. `ls -ld {path.parent}`), or pass --workspace DIR or --container NAME.",
        ) from None


def _candidates(folder: Path) -> list[Path]:
    """Every config file ``folder`` holds, in the CLI's lookup order."""
    found: list[Path] = []
    for pattern in CONFIG_CANDIDATES:
        if "*" in pattern:
            found.extend(p for p in sorted(folder.glob(pattern)) if _is_file(p))
        else:
            candidate = folder / pattern
            if _is_file(candidate):
                found.append(candidate)
    return found


def _absolute(path: Path) -> Path:
    """Absolute and lexically normalized, symlinks kept (as the CLI's labels record it)."""
    return Path(os.path.abspath(path))


def find_workspace(start: Path) -> Path | None:
    """The nearest folder upward from ``start`` (inclusive) that holds a devcontainer configuration.

    This lets tasks run from anywhere inside a project, like git does.
    """
    here = _absolute(start)
    if not here.is_dir():
        here = here.parent
    for folder in (here, *here.parents):
        if _candidates(folder):
            return folder
    return None


def find_config(workspace: Path) -> Path | None:
    """The configuration file of ``workspace``, or None if it has none.

    The two top-level locations win outright. Several subfolder configurations
    and neither top-level file is ambiguous: the CLI would ask which one, so
    we raise ``ConfigError`` listing them rather than guess.
    """
    workspace = _absolute(workspace)
    found = _candidates(workspace)
    if not found:
        return None
    top_level = [p for p in found if p.parent == workspace / ".devcontainer" or p.parent == workspace]
    if top_level or len(found) == 1:
        return found[0]
    listing = ", ".join(str(p.relative_to(workspace)) for p in found)
    raise ConfigError(
        f"{workspace} has several devcontainer configurations: {listing}",
        fix=(
            "Keep one of them (or add .devcontainer/devcontainer.json), "
            "or name the container with --container"
        ),
    )


@dataclass(frozen=True, kw_only=True)
class DevcontainerConfig:
    """The parts of devcontainer.json devc-tasks uses, with paths made absolute."""

    path: Path
    """The devcontainer.json file (absolute, symlinks not resolved)."""
    workspace: Path
    """The workspace folder (absolute, symlinks not resolved), as in ``devcontainer.local_folder``."""
    name: str | None
    service: str | None
    """The compose service the devcontainer runs in, when compose-based."""
    compose_files: tuple[Path, ...]
    """Absolute, in the listed order, relative ones resolved against the config file's folder."""
    run_args: tuple[str, ...]
    mounts: tuple[str, ...]
    """String entries as written; object entries rendered ``type=..,source=..,target=..``."""
    remote_user: str | None
    """``remoteUser``, else ``containerUser``."""

    @property
    def is_compose(self) -> bool:
        """Compose-based configs are found by compose labels, not only by CLI labels."""
        return bool(self.compose_files)


def _opt_str(data: Mapping[str, Any], key: str, source: str) -> str | None:
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value
    raise ConfigError(f"{source}: {key!r} must be a string, not {type(value).__name__}", fix=f"Fix {source}")


def _str_list(data: Mapping[str, Any], key: str, source: str, *, allow_str: bool = False) -> tuple[str, ...]:
    value = data.get(key)
    if value is None:
        return ()
    if allow_str and isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    kind = "a string or a list of strings" if allow_str else "a list of strings"
    raise ConfigError(f"{source}: {key!r} must be {kind}", fix=f"Fix {source}")


def _render_mount_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _mounts(data: Mapping[str, Any], source: str) -> tuple[str, ...]:
    """Mounts as ``--mount`` strings, so callers see one form whatever the file used."""
    value = data.get("mounts")
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(f"{source}: 'mounts' must be a list", fix=f"Fix {source}")
    out: list[str] = []
    for index, entry in enumerate(value):
        if isinstance(entry, str):
            out.append(entry)
        elif isinstance(entry, dict):
            keys = [k for k in ("type", "source", "target") if k in entry]
            keys += [k for k in entry if k not in keys]
            out.append(",".join(f"{k}={_render_mount_value(entry[k])}" for k in keys))
        else:
            raise ConfigError(
                f"{source}: mounts[{index}] must be a string or an object", fix=f"Fix {source}"
            )
    return tuple(out)


def _from_dict(data: Mapping[str, Any], *, path: Path, workspace: Path) -> DevcontainerConfig:
    """Build the config, validating each key we use as we read it."""
    source = str(path)
    compose_files = tuple(
        _absolute(path.parent / entry) for entry in _str_list(data, "dockerComposeFile", source, allow_str=True)
    )
    return DevcontainerConfig(
        path=path,
        workspace=workspace,
        name=_opt_str(data, "name", source),
        service=_opt_str(data, "service", source),
        compose_files=compose_files,
        run_args=_str_list(data, "runArgs", source),
        mounts=_mounts(data, source),
        remote_user=_opt_str(data, "remoteUser", source) or _opt_str(data, "containerUser", source),
    )


def load_config(workspace: Path, config_path: Path | None = None) -> DevcontainerConfig:
    """Read the workspace's devcontainer.json (or ``config_path``), raising ``ConfigError`` if we cannot."""
    workspace = _absolute(workspace)
    if config_path is None:
        found = find_config(workspace)
        if found is None:
            searched = ", ".join(CONFIG_CANDIDATES)
            raise ConfigError(
                f"no devcontainer configuration in {workspace} (looked for {searched})",
                fix=f"{_WORKSPACE_FIX}, or name the container with --container",
            )
        config_path = found
    path = _absolute(config_path)
    try:
        text = read_config_text(path)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path} does not exist", fix=_WORKSPACE_FIX) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}", fix=f"Check {path}") from exc
    return _from_dict(parse_jsonc(text, source=str(path)), path=path, workspace=workspace)


def read_dotenv(path: Path) -> dict[str, str]:
    """A ``.env`` file's plain ``KEY=VALUE`` lines (``export`` allowed, quotes stripped,
    trailing `` # comments`` dropped); empty when unreadable.

    Full dotenv syntax (interpolation, multi-line values) is out of scope: the
    values we read (a project name, compose variables for our keys) are short.
    """
    try:
        lines = read_config_text(path).splitlines()
    except (OSError, UnicodeDecodeError):
        return {}
    values: dict[str, str] = {}
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.removeprefix("export ").partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[name.strip()] = value
    return values


MAX_YAML_NODES = 100_000
"""The most values a compose file may expand to, aliases and merge keys counted
each time they are used (a compose file has hundreds)."""


def _yaml_expanded_size(root: Any, limit: int) -> int:
    """How many nodes the composed YAML graph stands for once aliases and ``<<``
    merges are expanded, counted without expanding them (shared nodes are
    sized once); stops early past ``limit``. Raises ``ValueError`` on a node
    that contains itself and ``RecursionError`` past ``MAX_NESTING`` levels.
    """
    import yaml

    sizes: dict[int, int] = {}
    stack: list[tuple[Any, int, bool]] = [(root, 0, False)]
    on_path: set[int] = set()
    while stack:
        node, depth, children_done = stack.pop()
        key = id(node)
        children: list[Any] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        if children_done:
            on_path.discard(key)
            total = 1 + sum(sizes[id(child)] for child in children)
            sizes[key] = min(total, limit + 1)
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise ValueError("an alias refers to a node that contains it")
        if depth > MAX_NESTING:
            raise RecursionError
        on_path.add(key)
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in children if id(child) not in sizes)
    return sizes[id(root)]


@functools.cache
def _bounded_loader() -> type:
    """PyYAML's SafeLoader, refusing nesting past ``MAX_NESTING`` as it reads.

    The check has to come while scanning: PyYAML's scanner takes time
    quadratic in the flow nesting level (4,000 ``[`` take seconds, 40,000
    minutes), and its composer recurses once per level.
    """
    import yaml

    class BoundedLoader(yaml.SafeLoader):
        _depth = 0

        def fetch_flow_collection_start(self, token_class: Any) -> None:
            if self.flow_level >= MAX_NESTING:
                raise RecursionError
            super().fetch_flow_collection_start(token_class)

        def compose_node(self, parent: Any, index: Any) -> Any:
            self._depth += 1
            try:
                if self._depth > MAX_NESTING:
                    raise RecursionError
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

    return BoundedLoader


def _yaml_error(exc: Exception, source: str, fix: str) -> ConfigError:
    """PyYAML's error as one line with the place: ``... is not valid YAML at line 3, column 5: ...``."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    what = getattr(exc, "problem", None) or " ".join(str(exc).split())
    return ConfigError(f"{source} is not valid YAML{where}: {what}", fix=fix)


def load_yaml(text: str, *, source: str, fix: str) -> Any:
    """``yaml.safe_load`` with bounds: every failure is a ``ConfigError``.

    PyYAML expands aliases and ``<<`` merge keys without limit, so a few
    lines (an "alias bomb", or merges of merges) can stand for billions of
    values and keep the loader or our merger busy for minutes; and it recurses
    once per nesting level. The composed node graph is therefore sized first
    (cheaply: shared nodes once) and refused past ``MAX_YAML_NODES`` values or
    ``MAX_NESTING`` levels, before anything is constructed.
    """
    import yaml  # heavy; only compose-based lookups pay for it

    loader = _bounded_loader()(text)
    try:
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            size = _yaml_expanded_size(node, MAX_YAML_NODES)
        except yaml.YAMLError as exc:
            raise _yaml_error(exc, source, fix) from exc
        except RecursionError as exc:
            raise ConfigError(f"{source} nests mappings or lists more than {MAX_NESTING} levels deep (aliases counted where they are used)", fix=fix) from exc
        except ValueError as exc:
            raise ConfigError(f"{source} is not usable YAML: {exc}", fix=fix) from exc
        if size > MAX_YAML_NODES:
            raise ConfigError(
                f"{source} expands to more than {MAX_YAML_NODES} values through YAML aliases or merge keys "
                "(an alias bomb?); refusing to read it",
                fix=f"{fix}: use fewer nested aliases (*name) and merge keys (<<)",
            )
        try:
            return loader.construct_document(node)
        except yaml.YAMLError as exc:
            raise _yaml_error(exc, source, fix) from exc
        except RecursionError as exc:
            raise ConfigError(f"{source} nests mappings or lists more than {MAX_NESTING} levels deep (aliases counted where they are used)", fix=fix) from exc
    finally:
        loader.dispose()


def _load_compose(compose_file: Path) -> Any:
    """One compose file as YAML data, or the ``ConfigError`` that says why it cannot be read."""
    try:
        text = read_config_text(compose_file)
    except FileNotFoundError as exc:
        raise ConfigError(
            f"compose file {compose_file} does not exist",
            fix="Fix dockerComposeFile in devcontainer.json",
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read compose file {compose_file}: {exc}", fix=f"Check {compose_file}") from exc
    return load_yaml(text, source=f"compose file {compose_file}", fix=f"Fix {compose_file}")


def check_compose_files(config: DevcontainerConfig) -> None:
    """Raise ``ConfigError`` when a compose file devcontainer.json names is missing or
    invalid, or names no service: the devcontainer CLI could not have started the
    container, so "no container" would send the user looking in the wrong place."""
    if not config.compose_files:
        return
    if not config.service:
        raise ConfigError(
            f"{config.path} names compose files but no 'service'",
            fix="Set 'service' in devcontainer.json to the compose service the devcontainer runs in",
        )
    for compose_file in config.compose_files:
        data = _load_compose(compose_file)
        if data is not None and not isinstance(data, dict):
            raise ConfigError(f"compose file {compose_file} must hold a mapping at the top level", fix=f"Fix {compose_file}")


def _compose_name(compose_files: tuple[Path, ...]) -> str | None:
    """The top-level ``name:`` compose would use: the last file that sets one wins (compose merges)."""
    name: str | None = None
    for compose_file in compose_files:
        data = _load_compose(compose_file)
        if isinstance(data, dict) and isinstance(data.get("name"), str) and data["name"].strip():
            name = data["name"].strip()
    return name


def compose_project_name(config: DevcontainerConfig, environ: Mapping[str, str]) -> str:
    """The compose project name the devcontainer CLI gives a compose-based devcontainer.

    We need it to find the containers (``com.docker.compose.project``) and the
    real name of the state volume (``<project>_<volume>``). The rules are the
    CLI's, in order: ``COMPOSE_PROJECT_NAME`` in the environment; in ``.env``
    of the folder of the first compose file (the CLI's working directory);
    the compose files' top-level ``name:``; ``<workspace>_devcontainer`` when
    the first compose file sits in ``<workspace>/.devcontainer``; else the
    name of that file's folder. The result is lower-cased with characters
    outside ``[-_a-z0-9]`` removed.
    """
    if not config.compose_files:
        raise ConfigError(
            f"{config.path} is not compose-based (no dockerComposeFile)",
            fix="Name the container with --container",
        )
    working_dir = config.compose_files[0].parent
    name = (
        environ.get("COMPOSE_PROJECT_NAME", "").strip()
        or read_dotenv(working_dir / ".env").get("COMPOSE_PROJECT_NAME")
        or _compose_name(config.compose_files)
    )
    if not name:
        if working_dir == config.workspace / ".devcontainer":
            name = f"{config.workspace.name}_devcontainer"
        else:
            name = working_dir.name
    project = _PROJECT_NAME_DROP.sub("", name.lower())
    if not project:
        raise ConfigError(
            f"the compose project name {name!r} has no usable characters",
            fix="Set COMPOSE_PROJECT_NAME to a name made of letters, digits, '-' and '_'",
        )
    return project
