"""The `devc-tasks` console script: the same collection, usable from any workspace."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from invoke import Program

from devc_tasks import __version__, ns


def just_module_path() -> Path:
    """The just module shipped with the package (`mod tailscale '<path>'`)."""
    return Path(__file__).with_name("tailscale.just")


@contextmanager
def _redacted_parse_errors() -> Iterator[None]:
    """Invoke's "No idea what 'X' is!" quotes the word it could not place, which may be a
    key typed where no option takes it (`devc-tasks tailscale.up tskey-...`)."""
    from invoke.exceptions import ParseError

    try:
        yield
    except ParseError as e:
        from devc_tasks.core.secrets import redact  # only when there is something to redact

        raise ParseError(redact(str(e)), e.context) from None


class DevcProgram(Program):
    """An Invoke program over our collection that still reads the project's invoke.yaml,
    as `inv` would from the folder of a tasks.py: the one of the workspace ``--workspace``
    names, else of the nearest folder upward holding a devcontainer configuration, else
    of the current one. A configuration we cannot use is a config error (exit 3, one JSON
    document with ``--json``), not a traceback."""

    _config_error: Exception | None = None

    def parse_core(self, argv: list[str] | None) -> None:
        with _redacted_parse_errors():
            super().parse_core(argv)

    def parse_collection(self) -> None:
        super().parse_collection()
        if self.args.help.value or self.args.list.value or self.args.version.value:
            return  # nothing runs: no project configuration to find (and no engine module to import)
        from devc_tasks.core.errors import ConfigError
        from devc_tasks.shell.config_files import find_workspace
        from devc_tasks.shell.discovery import logical_cwd

        cwd = logical_cwd()
        try:
            workspace = find_workspace(cwd)
        except ConfigError:  # e.g. an unreadable .devcontainer: `--list` still works; a task reports it
            workspace = None
        self._load_project(workspace or cwd)

    def parse_tasks(self) -> None:
        with _redacted_parse_errors():
            super().parse_tasks()
        named = [ctx.args["workspace"].value for ctx in self.tasks if "workspace" in ctx.args and ctx.args["workspace"].value]
        if named:
            from devc_tasks.shell.discovery import logical_cwd

            folder = Path(named[0]).expanduser()
            folder = Path(os.path.normpath(folder if folder.is_absolute() else logical_cwd() / folder))
            if folder.is_dir():  # else the task says "no such folder" (usage, 2)
                self._load_project(folder)
        if self.tasks and not self.args.help.value:  # `--list` and `--help` (`TASK --help` too) still work with a broken file
            self._check_config()

    def _load_project(self, folder: Path) -> None:
        """Read ``folder``'s invoke.yaml in place of any project file read before."""
        self._config_error = None
        self.config.set_project_location(str(folder))
        try:
            self.config.load_project()
        except Exception as e:  # noqa: BLE001 - YAML syntax, unreadable file: reported by _check_config
            self._config_error = e
            self.config.set_project_location(str(folder))  # forget the half-read file
        self.config.merge()

    def _check_config(self) -> None:
        from devc_tasks.core.errors import ConfigError
        from devc_tasks.tasks.common import _output, boundary, config_section

        json_mode = any(ctx.args["json"].value for ctx in self.tasks if "json" in ctx.args)
        events = any(ctx.args["events"].value for ctx in self.tasks if "events" in ctx.args)
        with boundary(_output(json_mode, events)):
            if self._config_error is not None:
                where = getattr(self.config, "_project_prefix", None) or "the project folder"
                raise ConfigError(
                    f"cannot read the invoke.yaml in {where}: {' '.join(str(self._config_error).split())}",
                    fix="Fix the file's YAML syntax (or remove it).",
                )
            config_section(self.config)  # its values are checked where they are used (a flag wins)


def main() -> None:
    import atexit
    import gc

    # The interpreter's last garbage collection at exit walks every object the imports made
    # (invoke, docker, requests: some 100k) and costs 70-100 ms, after the work is done:
    # freezing them (they are module-level and die with the process anyway) skips it.
    # Only for this console script, which owns its process; atexit runs it last.
    atexit.register(gc.freeze)
    if sys.argv[1:] == ["--just-module"]:
        print(just_module_path())
        return
    # binary_names: the completion scripts (--print-completion-script) register for and call
    # `devc-tasks`, whatever argv[0] this process was started with
    DevcProgram(namespace=ns, name="devc-tasks", binary="devc-tasks", binary_names=["devc-tasks"], version=__version__).run()
