"""devc-tasks: put running devcontainers on a Tailscale tailnet and keep them there.

``from devc_tasks import ns`` gives the root Invoke collection with the
``tailscale`` namespace; ``tailscale`` alone is the collection to add to a
project's own ``tasks.py``.
"""

from invoke import Collection

from devc_tasks.tasks import ns as tailscale

# The one version: the wheel's metadata (pyproject reads this line statically),
# `devc-tasks --version` and every --json document's "devc_tasks_version".
__version__ = "0.1.0"
__all__ = ["ns", "tailscale", "__version__"]

ns = Collection()
ns.add_collection(tailscale)
