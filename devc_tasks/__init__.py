"""devc-tasks: put running devcontainers on a Tailscale tailnet and keep them there.

``from devc_tasks import ns`` gives the root Invoke collection with the
``tailscale`` namespace; ``tailscale`` alone is the collection to add to a
project's own ``tasks.py``.
"""

from typing import Any

# The one version: the wheel's metadata (pyproject reads this line statically),
# `devc-tasks --version` and every --json document's "devc_tasks_version".
__version__ = "0.1.0"
__all__ = ["ns", "tailscale", "__version__"]



def __getattr__(name: str) -> Any:
    """The collections are built on first use, so that ``import devc_tasks.api`` (a script's
    way in) does not load Invoke and every task module."""
    if name == "tailscale":
        from devc_tasks.tasks import ns as tailscale

        return tailscale
    if name == "ns":
        from invoke import Collection

        from devc_tasks.tasks import ns as tailscale

        root = Collection()
        root.add_collection(tailscale)
        globals()["ns"] = root  # one root collection, however often it is asked for
        return root
    raise AttributeError(f"module 'devc_tasks' has no attribute {name!r}")
