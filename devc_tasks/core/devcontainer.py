"""The devcontainer configuration as data: devcontainer.json parsed (JSONC, bounded)
into a ``DevcontainerConfig`` with the few keys we use.

We need the configuration for two things: to find the container the CLI
created (its labels name the workspace folder and config file; compose-based
configs add a compose project and service) and to derive the node name. Pure:
``shell/config_files.py`` finds and reads the files the way the CLI does.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devc_tasks.core.errors import ConfigError

__all__ = ["CONFIG_CANDIDATES", "DevcontainerConfig", "parse_jsonc", "MAX_NESTING"]


CONFIG_CANDIDATES: tuple[str, ...] = (
    ".devcontainer/devcontainer.json",
    ".devcontainer.json",
    ".devcontainer/*/devcontainer.json",
)
"""Where the devcontainer CLI looks for the configuration, in its order.

The last entry is a glob: one level of subfolders under ``.devcontainer``.
"""


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


def normalized(path: Path) -> Path:
    """Lexically normalized (``a/../b`` is ``b``), symlinks kept, as the CLI's labels record
    it; ``path`` is already absolute (the shell's ``config_files.absolute_path``)."""
    return Path(os.path.normpath(path))


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


def config_from_dict(data: Mapping[str, Any], *, path: Path, workspace: Path) -> DevcontainerConfig:
    """Build the config, validating each key we use as we read it."""
    source = str(path)
    compose_files = tuple(
        normalized(path.parent / entry) for entry in _str_list(data, "dockerComposeFile", source, allow_str=True)
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
