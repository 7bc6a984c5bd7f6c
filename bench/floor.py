"""The floor of any Python tool on the Docker SDK: the interpreter's start, `import docker`,
one container lookup and one `exec_run` of `tailscale status --json`. devc-tasks cannot
beat this; the bench compares `status --json` and a no-op `up` with it (and with the
docker CLI's own exec). Given several containers, it runs one lookup and exec per
container, as many at once as `--all` does: the floor of `status --all`.
``--invoke`` imports Invoke first: the floor of any Invoke program on the SDK.

    python3 bench/floor.py [--invoke] CONTAINER [CONTAINER ...]
"""

import sys

if sys.argv[1:2] == ["--invoke"]:
    del sys.argv[1]
    import invoke  # noqa: F401

import docker  # noqa: E402

WORKERS = 8  # devc_tasks.tasks.fleet.DEFAULT_WORKERS (not imported: the floor loads docker only)

client = docker.from_env()


def status(name: str) -> int:
    result = client.containers.get(name).exec_run(["tailscale", "status", "--json"])
    sys.stdout.buffer.write(result.output)
    return result.exit_code


names = sys.argv[1:]
if len(names) == 1:
    sys.exit(status(names[0]))
from concurrent.futures import ThreadPoolExecutor  # noqa: E402 - only the many-container floor pays for it

with ThreadPoolExecutor(min(WORKERS, len(names))) as pool:
    sys.exit(max(pool.map(status, names)))
