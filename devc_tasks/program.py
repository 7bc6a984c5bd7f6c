"""The `devc-tasks` console script: the same collection, usable from any workspace."""

from __future__ import annotations

import sys
from pathlib import Path

from invoke import Program

from . import __version__, ns


def just_module_path() -> Path:
    """The just module shipped with the package (`mod tailscale '<path>'`)."""
    return Path(__file__).with_name("tailscale.just")


def main() -> None:
    if sys.argv[1:] == ["--just-module"]:
        print(just_module_path())
        return
    Program(namespace=ns, name="devc-tasks", binary="devc-tasks", version=__version__).run()
