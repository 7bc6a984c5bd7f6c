"""This project's own tasks: the devc-tasks collection (`inv tailscale.up`)."""

from devc_tasks import ns  # noqa: F401
