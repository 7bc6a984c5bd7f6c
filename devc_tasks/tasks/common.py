"""What every task shares: selector options, the error boundary, settings."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from invoke.exceptions import Exit

from devc_tasks.core.errors import ConfigError, DevcError, Interrupted, UsageError
from devc_tasks.core.options import parse_tags
from devc_tasks.core.options import seconds as _seconds

__all__ = ["boundary", "config_section", "parse_tags", "_seconds"]

SELECTOR_HELP = {
    "container": "The container (name or id). Default: the devcontainer of the workspace.",
    "workspace": "The workspace folder. Default: the nearest folder upward holding a devcontainer configuration.",
    "host": "Docker Engine URL (unix://, tcp://, ssh://). Default: DOCKER_HOST or the current context.",
    "context": "Docker context name. Default: DOCKER_CONTEXT or the current context.",
    "local": "Run here, inside the container (e.g. from a postStartCommand), not through the Engine.",
    "json": "Print exactly one JSON document on stdout (errors included).",
}

EVENTS_HELP = "Stream progress as one JSON object per line on stderr (event, step, elapsed_ms, container); no other stderr output."

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
    else (a bug) becomes exit 1 with one line, or its traceback with DEVC_DEBUG=1. A reader
    that went away (`... --json | head -0`) ends the run with 141, even when it was the
    error document that met the closed pipe (under `inv`, nothing else would catch it)."""
    try:
        with _reported(out):
            yield
    except BrokenPipeError:
        from devc_tasks.shell.pipes import reader_gone

        raise Exit(code=reader_gone()) from None


@contextmanager
def _reported(out: Any) -> Iterator[None]:
    from devc_tasks.core.secrets import redact

    try:
        yield
    except DevcError as e:
        # every message passes through the redaction: an error may quote a value the user
        # gave (a path that is really a key) or text that came back from tailscale
        doc = {k: redact(v) if isinstance(v, str) else v for k, v in e.to_dict().items()}
        out.error_doc(doc)
        if getattr(out, "events", False):  # stderr stays JSON lines: the error is the last event
            out.error_event(doc)
            raise Exit(code=e.exit_code) from None
        raise Exit(redact(f"error: {e}"), code=e.exit_code) from None
    except KeyboardInterrupt:
        # a script reading --json output gets its document even now
        stop = Interrupted(
            "interrupted (Ctrl-C); the step under way was stopped",
            fix="Run the same command again: each step checks what is already done.",
        )
        out.error_doc(stop.to_dict())
        if getattr(out, "events", False):
            out.error_event(stop.to_dict())
            raise Exit(code=stop.exit_code) from None
        raise Exit("interrupted", code=stop.exit_code) from None
    except Exit:
        raise
    except BrokenPipeError:  # the reader went away: no error to tell anyone (boundary ends it)
        raise
    except Exception as e:  # a bug: still one JSON document and no traceback, unless asked for
        if os.environ.get("DEVC_DEBUG"):
            raise
        err = DevcError(
            f"unexpected error: {type(e).__name__}: {_one_line(redact(str(e)))}",
            fix="This is a bug in devc-tasks: rerun with DEVC_DEBUG=1 for the traceback, and report it.",
        )
        out.error_doc(err.to_dict())
        if getattr(out, "events", False):
            out.error_event(err.to_dict())
            raise Exit(code=err.exit_code) from None
        raise Exit(f"error: {err.message} (a bug: DEVC_DEBUG=1 shows the traceback)", code=err.exit_code) from None


def _output(json_mode: bool, events: bool = False) -> Any:
    from devc_tasks.tasks.ui import Output

    return Output(json_mode=json_mode, events=events)


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
        shown = "" if isinstance(section, str) else f" {section!r}"  # a string may be a pasted key: never echoed
        raise ConfigError(
            f"`tailscale` in {_config_where(config)} must be a mapping of settings, not {type(section).__name__}{shown}",
            fix="Write it as a mapping, e.g. `tailscale: {timeout: 60, daemon_wait: 20}`.",
        )
    from devc_tasks.core.apirules import check_no_secret  # not for --help/--list (test_surface)

    check_no_secret(section)
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
