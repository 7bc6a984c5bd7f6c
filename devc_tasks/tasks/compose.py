"""The compose task: render, write or check the container settings Tailscale needs.

It reads devcontainer.json (and the compose files it names) and never edits
them: the override is a new file the user adds to ``dockerComposeFile``, and
an image-based devcontainer gets a snippet to merge by hand.
"""

from __future__ import annotations

import json as jsonlib
import os
from pathlib import Path
from typing import Any

from invoke import task
from invoke.exceptions import Exit

from devc_tasks.tasks.common import _output, boundary


def _override_path(raw: str) -> Path:
    """``--write PATH``: relative to the current folder; a folder gets the default file name."""
    from devc_tasks.core.compose_render import OVERRIDE_FILENAME
    from devc_tasks.shell.discovery import logical_cwd

    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = logical_cwd() / path
    path = Path(os.path.normpath(path))
    if path.is_dir():
        path = path / OVERRIDE_FILENAME
    return path


def compose_file_entry(config: Any, override: Path) -> tuple[str, bool]:
    """The ``dockerComposeFile`` value with ``override`` as the last entry, and whether it is there already.

    Paths are relative to devcontainer.json's folder, as the devcontainer CLI reads them.
    """
    base = config.path.parent
    entries = [os.path.relpath(f, base) for f in config.compose_files]
    new = os.path.relpath(override, base)
    listed = Path(os.path.normpath(override)) in {Path(os.path.normpath(f)) for f in config.compose_files}
    if not listed:
        entries.append(new)
    return f'"dockerComposeFile": {jsonlib.dumps(entries)}', listed


@task(
    auto_shortflags=False,
    help={
        "write": "Write the compose override to PATH (a folder gets docker-compose.tailscale.yml; "
        "the usual place is next to the first compose file, e.g. .devcontainer/docker-compose.tailscale.yml).",
        "force": "With --write: replace an existing file (a symlink is replaced itself, not written through).",
        "check": "Check the effective configuration instead: one row per requirement; exit 40 when one is missing.",
        "workspace": "The workspace folder. Default: the nearest folder upward holding a devcontainer configuration.",
        "json": "Print exactly one JSON document on stdout (errors included).",
    }
)
def compose(c, write=None, force=False, check=False, workspace=None, json=False):
    """Render (or --write, or --check) the TUN/capability/state-volume settings Tailscale needs."""
    out = _output(json)
    with boundary(out):
        from devc_tasks.core import compose_render
        from devc_tasks.core.errors import ChecksFailed, ConfigError, UsageError
        from devc_tasks.shell import compose
        from devc_tasks.shell.discovery import logical_cwd
        from devc_tasks.shell.target import Selectors, resolve_workspace

        if check and write:
            raise UsageError("--check and --write do different things; give one of them")
        if force and not write:
            raise UsageError("--force only applies to --write PATH")
        ws, config = resolve_workspace(Selectors(workspace=workspace))
        if config is None:
            where = f"in {ws}" if ws else "from the current folder upward"
            raise ConfigError(f"no devcontainer configuration {where}", fix="Run from the workspace folder or pass --workspace DIR.")
        kind = "compose" if config.is_compose else "image"

        if check:
            reqs = compose.check(config)
            missing = [r for r in reqs if not r.present]
            doc = {
                "ok": not missing,
                "config": str(config.path),
                "kind": kind,
                "requirements": [
                    {"key": r.key, "description": r.description, "present": r.present, "seen": r.seen, "fix": r.fix}
                    for r in reqs
                ],
            }
            rows = [
                (r.description, "present" if r.present else "MISSING", r.seen, "" if r.present else r.fix.rstrip())
                for r in reqs
            ]
            verdict = "everything Tailscale needs is there" if not missing else f"{len(missing)} missing"
            out.emit(doc, out.table(f"{config.path}: {verdict}", ["Requirement", "Result", "Seen", "Fix"], rows), kind="compose.check")
            if missing:
                hint = " Or write them all at once: `inv tailscale.compose --write PATH`." if config.is_compose else ""
                raise Exit(f"compose --check: missing {', '.join(r.key for r in missing)}.{hint}", code=ChecksFailed.exit_code)
            return

        text = compose_render.render(config)
        if not write:
            doc = {"ok": True, "config": str(config.path), "kind": kind, "text": text, "path": None}
            if config.is_compose:
                doc["suggested_path"] = str(compose.default_override_path(config))
            out.emit(doc, out.lines(text.rstrip("\n")), kind="compose.snippet")
            if not json:
                hint = (
                    f"Write it with --write {os.path.relpath(compose.default_override_path(config), logical_cwd())}, then add that file as the last dockerComposeFile entry."
                    if config.is_compose
                    else "Merge these entries into devcontainer.json, then rebuild the container."
                )
                out.step(hint)
            return

        if not config.is_compose:
            raise UsageError(
                f"{config.path} is image/Dockerfile-based: there is no compose file to write",
                fix="Merge the runArgs and mounts entries that `inv tailscale.compose` prints into devcontainer.json by hand.",
            )
        path = _override_path(write)
        compose.write_override(path, text, force=force)
        entry, listed = compose_file_entry(config, path)
        doc = {"ok": True, "config": str(config.path), "kind": kind, "text": text, "path": str(path), "docker_compose_file": entry, "already_listed": listed}
        advice = (
            f"{config.path} already lists it in dockerComposeFile; rebuild the container."
            if listed
            else f"Now set in {config.path} (it must be the last entry), then rebuild the container:\n    {entry}"
        )
        out.emit(doc, out.lines(f"Wrote {path}.\n{advice}"), kind="compose.write")


TASKS = (compose,)
