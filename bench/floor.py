"""The floor of any Python tool on the Docker SDK: the interpreter's start, `import docker`,
one container lookup and one `exec_run`. devc-tasks cannot beat this; the bench compares
`status --json` and a no-op `up` with it (and with the docker CLI's own exec).

    python3 bench/floor.py CONTAINER
"""

import sys

import docker

client = docker.from_env()
container = client.containers.get(sys.argv[1])
result = container.exec_run(["tailscale", "status", "--json"])
sys.stdout.buffer.write(result.output)
sys.exit(result.exit_code)
