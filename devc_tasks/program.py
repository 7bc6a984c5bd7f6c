"""The `devc-tasks` console script: the same collection, usable from any workspace."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from invoke import Program

from devc_tasks import __version__, ns


@contextmanager
def _cleaned_invoke_errors() -> Iterator[None]:
    """Invoke's "No idea what 'X' is!" and "Sub-collection 'X' not found!" quote the word
    it could not place, which may be a key typed where no option takes it (`devc-tasks
    tailscale.up tskey-...`), or carry characters that act on a terminal."""
    from invoke.exceptions import Exit, ParseError

    try:
        yield
    except (ParseError, Exit) as e:
        text = str(e) if isinstance(e, ParseError) else e.message
        if not isinstance(text, str):  # --help and --list end with a bare Exit: nothing to clean
            raise
        from devc_tasks.core.redaction import inert
        from devc_tasks.core.secrets import redact

        if isinstance(e, ParseError):
            raise ParseError(inert(redact(text)), e.context) from None
        raise Exit(inert(redact(text)), e.code) from None


class DevcProgram(Program):
    """An Invoke program over our collection that still reads the project's invoke.yaml,
    as `inv` would from the folder of a tasks.py: the one of the workspace ``--workspace``
    names, else of the nearest folder upward holding a devcontainer configuration, else
    of the current one. A configuration we cannot use is a config error (exit 3, one JSON
    document with ``--json``), not a traceback."""

    _config_error: Exception | None = None
    _executed = False  # a task ran

    def parse_core(self, argv: list[str] | None) -> None:
        with _cleaned_invoke_errors():
            super().parse_core(argv)

    def parse_cleanup(self) -> None:
        with _cleaned_invoke_errors():
            super().parse_cleanup()

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
        with _cleaned_invoke_errors():
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

    def execute(self) -> None:
        self._executed = True
        super().execute()

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


class _Tee:
    """A stream that writes through and keeps what was written (through ``write``; a
    program that reached for the raw buffer has printed past it: then nothing is kept)."""

    def __init__(self, stream: Any) -> None:
        self._stream, self.bypassed = stream, False
        self.text: list[str] = []

    def write(self, text: str) -> int:
        self.text.append(text)
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        if name == "buffer":
            self.bypassed = True
        return getattr(self._stream, name)


@contextmanager
def _recorded(program: DevcProgram, record: Callable[[str], None] | None) -> Iterator[None]:
    """Hand ``record`` what the program printed, when it only printed: it exited 0, ran no
    task, wrote nothing to stderr, raised nothing else (a closed pipe: the text is cut
    short) and answered --help, --list or --version (see devc_tasks.entry). These come
    from the task definitions alone: of a project's invoke.yaml read on the way, Invoke
    consults only ``tasks.ignore_unknown_help``, which can turn an answer into an error
    (never recorded) but not into another answer."""
    if record is None:
        yield
        return
    out, err = _Tee(sys.stdout), _Tee(sys.stderr)
    sys.stdout, sys.stderr = out, err
    code: object = 0
    try:
        yield
    except SystemExit as e:
        code = e.code
        raise
    except BaseException:  # a closed pipe, an unencodable character, Ctrl-C: what was kept is cut short
        code = "raised"
        raise
    finally:
        sys.stdout, sys.stderr = out._stream, err._stream
        args = getattr(program, "args", None)
        answered = args is not None and any(args[flag].value for flag in ("help", "list", "version"))
        if answered and code in (0, None) and not (program._executed or err.text or out.bypassed or err.bypassed):
            record("".join(out.text))


def main(record: Callable[[str], None] | None = None) -> None:
    """Run the program; ``record`` (from devc_tasks.entry) receives an answer that only printed."""
    import atexit
    import gc

    # The interpreter's last garbage collection at exit walks every object the imports made
    # (invoke, docker, requests: some 100k) and costs 70-100 ms, after the work is done:
    # freezing them (they are module-level and die with the process anyway) skips it.
    # Only for this console script, which owns its process; atexit runs it last.
    atexit.register(gc.freeze)
    # binary_names: the completion scripts (--print-completion-script) register for and call
    # `devc-tasks`, whatever argv[0] this process was started with
    program = DevcProgram(namespace=ns, name="devc-tasks", binary="devc-tasks", binary_names=["devc-tasks"], version=__version__)
    with _recorded(program, record):
        program.run()
