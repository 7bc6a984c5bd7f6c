"""Option values every entry point checks the same way: a number of seconds, ACL tags.

Pure, so the Python API (``devc_tasks.api``) and the tasks refuse the same
values with the same message.
"""

from __future__ import annotations

import re
from typing import Any

from devc_tasks.core.errors import UsageError

__all__ = ["seconds", "parse_tags", "check_tags"]


def seconds(value: Any, flag: str) -> float:
    """A positive number of seconds up to a day; else a ``UsageError`` naming ``flag``."""
    if isinstance(value, bool):  # YAML's `timeout: yes` is True, which float() reads as 1
        raise UsageError(f"{flag} takes a number of seconds, not {value!r}")
    try:
        n = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{flag} takes a number of seconds, not {value!r}") from None
    if not 0 < n <= 24 * 3600:
        raise UsageError(f"{flag} must be between 0 and 86400 seconds, not {value!r}")
    return n


_TAG_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]*")


def check_tags(tags: tuple[str, ...]) -> tuple[str, ...]:
    """Each tag checked with Tailscale's own rule (``tailcfg.CheckTag``: ``tag:`` then a
    letter, then letters, digits or ``-``), so that a bad one is a usage error here rather
    than a failed `tailscale up` in the container."""
    for t in tags:
        if not (t.startswith("tag:") and _TAG_NAME.fullmatch(t[4:])):
            raise UsageError(
                f"--advertise-tags: {t!r} is not a tag: a tag is tag:NAME, NAME a letter followed by letters, digits or '-'",
                fix="Tags are comma-separated, without spaces inside: --advertise-tags=tag:dev,tag:ci",
            )
    return tags


def parse_tags(raw: str | None) -> tuple[str, ...]:
    """Comma-separated ACL tags (``--advertise-tags``), each checked."""
    return check_tags(tuple(t.strip() for t in (raw or "").split(",") if t.strip()))
