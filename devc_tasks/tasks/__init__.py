"""The `tailscale` Invoke collection: parse options, call the library, render.

Tasks stay thin. Each option resolves in one place (flag, else the
``tailscale`` config section, else the default declared in ``ns.configure``),
and library errors become ``Exit(message, code)`` in ``common.boundary`` and
nowhere else. Heavy modules (docker, rich, yaml) are imported inside task bodies.
"""

from invoke import Collection

from devc_tasks.tasks import api, compose, doctor, node, state
from devc_tasks.tasks.common import DEFAULTS

ns = Collection("tailscale")
for _task in (*node.TASKS, *api.TASKS, *doctor.TASKS, *compose.TASKS):
    ns.add_task(_task)
if state.TASKS:
    ns.add_collection(Collection("state", *state.TASKS))
ns.configure({"tailscale": dict(DEFAULTS)})

__all__ = ["ns"]
