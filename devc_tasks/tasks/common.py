"""What every task shares: selector options, the error boundary, settings."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from invoke.exceptions import Exit

from devc_tasks.core.errors import ConfigError, DevcError, Interrupted, UsageError

SELECTOR_HELP = {
    "container": "The container (name or id). Default: the devcontainer of the workspace.",
    "workspace": "The workspace folder. Default: the nearest folder upward holding a devcontainer configuration.",
    "host": "Docker Engine URL (unix://, tcp://, ssh://). Default: DOCKER_HOST or the current context.",
    "context": "Docker context name. Default: DOCKER_CONTEXT or the current context.",
    "local": "Run here, inside the container (e.g. from a postStartCommand), not through the Engine.",
    "json": "Print exactly one JSON document on stdout (errors included).",
}

DEFAULTS = {"timeout": 60, "daemon_wait": 20, "ephemeral": False, "replace": False}


def _help(**extra: str) -> dict[str, str]:
    return {**SELECTOR_HELP, **extra}


def _selectors(container: str | None, workspace: str | None, host: str | None, context: str | None, local: bool):
    from devc_tasks.shell.target import Selectors

    return Selectors(container=container, workspace=workspace, host=host, context=context, local=local)


def _one_line(text: str) -> str:
    return " ".join(text.split())


@contextmanager
def boundary(out: Any) -> Iterator[None]:
    """Library errors become a clean message and their documented exit code; anything
    else (a bug) becomes exit 1 with one line, or its traceback with DEVC_DEBUG=1."""
    from devc_tasks.core.secrets import redact

    try:
        yield
    except DevcError as e:
        # every message passes through the redaction: an error may quote a value the user
        # gave (a path that is really a key) or text that came back from tailscale
        doc = {k: redact(v) if isinstance(v, str) else v for k, v in e.to_dict().items()}
        out.error_doc(doc)
        raise Exit(redact(f"error: {e}"), code=e.exit_code) from None
    except KeyboardInterrupt:
        # a script reading --json output gets its document even now
        stop = Interrupted(
            "interrupted (Ctrl-C); the step under way was stopped",
            fix="Run the same command again: each step checks what is already done.",
        )
        out.error_doc(stop.to_dict())
        raise Exit("interrupted", code=stop.exit_code) from None
    except Exit:
        raise
    except Exception as e:  # a bug: still one JSON document and no traceback, unless asked for
        if os.environ.get("DEVC_DEBUG"):
            raise
        err = DevcError(
            f"unexpected error: {type(e).__name__}: {_one_line(redact(str(e)))}",
            fix="This is a bug in devc-tasks: rerun with DEVC_DEBUG=1 for the traceback, and report it.",
        )
        out.error_doc(err.to_dict())
        raise Exit(f"error: {err.message} (a bug: DEVC_DEBUG=1 shows the traceback)", code=err.exit_code) from None


def _output(json_mode: bool) -> Any:
    from devc_tasks.tasks.ui import Output

    return Output(json_mode=json_mode)


def _config_where(config: Any, name: str | None = None) -> str:
    """Which file set ``tailscale`` (or ``tailscale.<name>``): the project's invoke.yaml when it
    did, else Invoke's other sources (user and system files, INVOKE_* variables)."""
    project = getattr(config, "_project", None) or {}
    path = getattr(config, "_project_path", None)
    section = project.get("tailscale") if isinstance(project, Mapping) else None
    if path and section is not None and (name is None or not isinstance(section, Mapping) or name in section):
        return str(path)
    return "the Invoke configuration (invoke.yaml, ~/.invoke.yaml, /etc/invoke.yaml or INVOKE_TAILSCALE_* variables)"


def config_section(config: Any) -> Mapping[str, Any]:
    """The ``tailscale`` section of the Invoke configuration, checked to be a mapping;
    else a ``ConfigError`` (exit 3). Its values are checked where they are used."""
    section = config.get("tailscale", None) if config is not None else None
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise ConfigError(
            f"`tailscale` in {_config_where(config)} must be a mapping of settings, not {type(section).__name__} {section!r}",
            fix="Write it as a mapping, e.g. `tailscale: {timeout: 60, daemon_wait: 20}`.",
        )
    return section


def _setting(c: Any, name: str, given: Any) -> Any:
    """Flag, else config (`tailscale.<name>`; a bad value there is a config error), else the default."""
    if given is not None:
        return given
    config = getattr(c, "config", None)
    value = config_section(config).get(name)
    if value is None:
        return DEFAULTS[name]
    default = DEFAULTS[name]
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        try:
            _seconds(value, f"tailscale.{name}")
        except UsageError as e:
            raise ConfigError(f"{_config_where(config, name)}: {e.message}", fix=f"Set tailscale.{name} to a number of seconds, e.g. {default}.") from None
    return value


def _seconds(value: Any, flag: str) -> float:
    if isinstance(value, bool):  # YAML's `timeout: yes` is True, which float() reads as 1
        raise UsageError(f"{flag} takes a number of seconds, not {value!r}")
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{flag} takes a number of seconds, not {value!r}") from None
    if not 0 < seconds <= 24 * 3600:
        raise UsageError(f"{flag} must be between 0 and 86400 seconds, not {value!r}")
    return seconds


_TAG_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]*")


def parse_tags(raw: str | None) -> tuple[str, ...]:
    """Comma-separated ACL tags, each checked with Tailscale's own rule (``tailcfg.CheckTag``:
    ``tag:`` then a letter, then letters, digits or ``-``) so that a bad one is a usage
    error here rather than a failed `tailscale up` in the container."""
    tags = tuple(t.strip() for t in (raw or "").split(",") if t.strip())
    for t in tags:
        if not (t.startswith("tag:") and _TAG_NAME.fullmatch(t[4:])):
            raise UsageError(
                f"--advertise-tags: {t!r} is not a tag: a tag is tag:NAME, NAME a letter followed by letters, digits or '-'",
                fix="Tags are comma-separated, without spaces inside: --advertise-tags=tag:dev,tag:ci",
            )
    return tags


