"""The `devc-tasks` console script: the same collection, usable from any workspace."""

from __future__ import annotations

import sys
from pathlib import Path

from invoke import Program

from . import __version__, ns


def just_module_path() -> Path:
    """The just module shipped with the package (`mod tailscale '<path>'`)."""
    return Path(__file__).with_name("tailscale.just")


class DevcProgram(Program):
    """An Invoke program over our collection that still reads the project's invoke.yaml:
    the nearest folder upward holding a devcontainer configuration, else the current one,
    as `inv` would from the folder of a tasks.py."""

    def parse_collection(self) -> None:
        super().parse_collection()
        from .devcontainer import find_workspace
        from .engine import logical_cwd

        cwd = logical_cwd()
        self.config.set_project_location(str(find_workspace(cwd) or cwd))
        self.config.load_project()


def main() -> None:
    if sys.argv[1:] == ["--just-module"]:
        print(just_module_path())
        return
    DevcProgram(namespace=ns, name="devc-tasks", binary="devc-tasks", version=__version__).run()
