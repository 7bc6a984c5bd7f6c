"""Benchmarks: every figure of issue 10 side by side, in one run (never asserted in tests).

    python3 -m bench.bench [--runs N] [--counts 1,5,20] [--quick]

Needs the Docker engine, the docker CLI and the test image (built on first use).
Compares, in one run on one machine:

- ``docker exec C tailscale status --json`` (the docker CLI);
- the floor script (``bench/floor.py``: interpreter start, ``import docker``, one
  container lookup, one ``exec_run``), the best any Python tool on the SDK can do;
- ``status --json``, a no-op ``up`` (and the execs it makes, from the Engine's
  event stream), ``devc-tasks --help`` and ``inv --list``;
- ``status --all`` over 1, 5 and 20 devcontainers it starts (and removes),
  with the ratio to one; other devcontainers on the engine are listed too, so
  the rows column says how many were probed;
- the login latency: from the node reaching Running (the stand-in's control
  registry marks the node online in the same step, watched from the host) to
  ``up`` returning.

``--quick`` (CI) runs each figure once with counts 1 and 2: it proves the
benchmark works; its figures mean little.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FLOOR = Path(__file__).resolve().parent / "floor.py"

# Users' Pythons cache bytecode; this machine's environment turns that off, which
# would bill every run for compiling every module.
BASE_ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "TAILSCALE_AUTHKEY", "TAILSCALE_HOSTNAME")} | {"NO_COLOR": "1"}
LABEL = "devc-tasks-bench"


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=REPO, env={**BASE_ENV, **(env or {})}, capture_output=True, text=True)
    return time.perf_counter() - start, proc


def inv(*args: str) -> list[str]:
    return [sys.executable, "-m", "invoke", "--search-root", str(REPO), *args]


def devc(*args: str) -> list[str]:
    """The console script's entry point, run by this interpreter from this checkout."""
    return [sys.executable, "-c", "from devc_tasks.program import main; main()", *args]


def median_ms(argv: list[str], runs: int, env: dict[str, str] | None = None, ok: tuple[int, ...] = (0,)) -> float:
    times = []
    for _ in range(runs):
        t, proc = timed(argv, env)
        if proc.returncode not in ok:
            raise SystemExit(f"{argv} failed ({proc.returncode}): {proc.stderr}")
        times.append(t)
    return statistics.median(times) * 1000


def execs(client: Any, container: Any, since: float) -> int:
    events = client.events(since=int(since), until=int(time.time()) + 1, decode=True, filters={"container": container.id})
    return sum(1 for e in events if e.get("Action", "").startswith("exec_create"))


def new_key() -> dict[str, str]:
    return {"TAILSCALE_AUTHKEY": f"tskey-auth-bench{uuid.uuid4().hex[:6]}CNTRL-{uuid.uuid4().hex}"}


class Fleet:
    """Bench containers (stand-in image, one shared control registry), removed at the end."""

    def __init__(self, client: Any, image: str) -> None:
        self.client, self.image = client, image
        self.control = Path(tempfile.mkdtemp(prefix="devc-bench-", dir="/tmp"))
        os.chmod(self.control, 0o777)
        self.run_id = uuid.uuid4().hex[:6]
        self.containers: list[Any] = []
        self.volumes: list[Any] = []

    def start(self, devcontainer: bool = False) -> Any:
        volume = self.client.volumes.create(name=f"devc-bench-{self.run_id}-{len(self.volumes)}", labels={LABEL: self.run_id})
        self.volumes.append(volume)
        labels = {LABEL: self.run_id}
        if devcontainer:
            labels["devcontainer.local_folder"] = f"/tmp/devc-bench-{self.run_id}/{len(self.containers)}"
        c = self.client.containers.run(
            self.image, ["sleep", "infinity"], detach=True, init=True, network_mode="none",
            devices=["/dev/net/tun:/dev/net/tun"], cap_add=["NET_ADMIN", "NET_RAW"],
            volumes={str(self.control): {"bind": "/srv/tailscale-control", "mode": "rw"}, volume.name: {"bind": "/var/lib/tailscale", "mode": "rw"}},
            labels=labels, name=f"devc-bench-{self.run_id}-{len(self.containers)}",
        )
        self.containers.append(c)
        return c

    def running_at(self, hostname: str) -> Callable[[], float | None]:
        """Watch the control registry from the host: when the node with ``hostname`` goes online
        (the stand-in marks it so in the step that makes the backend Running)."""
        seen: list[float] = []
        stop = threading.Event()

        def watch() -> None:
            nodes = self.control / "nodes"
            while not stop.is_set():
                for f in nodes.glob("*.json") if nodes.is_dir() else ():
                    try:
                        rec = json.loads(f.read_text())
                    except (OSError, ValueError):
                        continue
                    if rec.get("HostName") == hostname and rec.get("Online"):
                        seen.append(time.perf_counter())
                        return
                time.sleep(0.002)

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()

        def result() -> float | None:
            stop.set()
            thread.join(1)
            return seen[0] if seen else None

        return result

    def remove(self) -> None:
        for c in self.containers:
            try:
                c.remove(force=True, v=True)
            except Exception:  # noqa: BLE001
                pass
        for v in self.volumes:
            try:
                v.remove(force=True)
            except Exception:  # noqa: BLE001
                pass
        subprocess.run(["rm", "-rf", str(self.control)], check=False)


def up_ok(name: str, hostname: str) -> None:
    t, proc = timed(inv("tailscale.up", "--container", name, "--hostname", hostname), new_key())
    if proc.returncode != 0:
        raise SystemExit(f"up in {name} failed: {proc.stderr}")


def main() -> None:
    parser = argparse.ArgumentParser(description="devc-tasks benchmarks: every figure of issue 10 in one run.")
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (median); default 5")
    parser.add_argument("--counts", default="1,5,20", help="devcontainer counts for status --all; default 1,5,20")
    parser.add_argument("--quick", action="store_true", help="one run each, counts 1 and 2 (CI: proves the bench works)")
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    counts = [1, 2] if args.quick else [int(n) for n in args.counts.split(",")]

    import docker

    sys.path.insert(0, str(REPO))
    from tests.support.images import ensure_images

    client = docker.from_env()
    image, _ = ensure_images(client)
    fleet = Fleet(client, image)
    rows: list[tuple[str, str, str]] = []  # (what, figure, note)

    def row(what: str, ms: float, base: float | None = None, note: str = "") -> None:
        ratio = f"{ms / base:.2f}x" if base else ""
        rows.append((what, f"{ms:.0f} ms", " ".join(x for x in (ratio, note) if x)))

    try:
        c = fleet.start()
        hostname = f"bench-{fleet.run_id}"
        done = fleet.running_at(hostname)
        t, proc = timed(inv("tailscale.up", "--container", c.name, "--hostname", hostname, "--json"), new_key())
        end = time.perf_counter()
        if proc.returncode != 0:
            raise SystemExit(f"first up failed: {proc.stderr}")
        running = done()
        login_latency = (end - running) * 1000 if running is not None else None

        docker_exec = median_ms(["docker", "exec", c.name, "tailscale", "status", "--json"], runs)
        floor = median_ms([sys.executable, str(FLOOR), c.name], runs)
        row("docker exec C tailscale status --json", docker_exec)
        row("floor script (python, import docker, 1 lookup, 1 exec_run)", floor, docker_exec, "of docker exec")
        status = median_ms(devc("tailscale.status", "--container", c.name, "--json"), runs)
        row("devc-tasks status --json", status, floor, f"of floor, {status / docker_exec:.2f}x of docker exec")
        noop = median_ms(devc("tailscale.up", "--container", c.name, "--hostname", hostname, "--json"), runs)
        row("devc-tasks up (no-op)", noop, floor, f"of floor, {noop / docker_exec:.2f}x of docker exec")
        time.sleep(1.1)
        since = time.time()
        timed(devc("tailscale.up", "--container", c.name, "--hostname", hostname))
        time.sleep(1.1)
        rows.append(("  execs for a no-op up", str(execs(client, c, since)), ""))
        since = time.time()
        timed(devc("tailscale.status", "--container", c.name))
        time.sleep(1.1)
        rows.append(("  execs for status", str(execs(client, c, since)), ""))
        bare = median_ms([sys.executable, "-c", "import invoke"], runs)
        row("python -c 'import invoke' (the floor of --help)", bare)
        row("devc-tasks --help", median_ms(devc("--help"), runs), bare, "of import invoke")
        row("inv --list", median_ms(inv("--list"), runs), bare, "of import invoke")
        row("first up (start tailscaled + login)", t * 1000)
        rows.append(("login latency (node Running -> up returns)", f"{login_latency:.0f} ms" if login_latency is not None else "n/a", ""))

        # status --all over N bench devcontainers, each a connected node
        fleet_nodes: list[Any] = []
        one: float | None = None
        for n in counts:
            new = [fleet.start(devcontainer=True) for _ in range(n - len(fleet_nodes))]
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(lambda x: up_ok(x.name, f"bench-all-{x.name[-6:]}"), new))
            fleet_nodes += new
            _, proc = timed(devc("tailscale.status", "--all", "--json"))
            listed = len(json.loads(proc.stdout)["containers"]) if proc.returncode == 0 else "?"
            ms = median_ms(devc("tailscale.status", "--all", "--json"), runs)
            one = one or ms
            row(f"status --all over {n} bench devcontainer(s)", ms, one if n != counts[0] else None, f"of {counts[0]}; {listed} rows listed")
    finally:
        fleet.remove()
    width = max(len(k) for k, _, _ in rows)
    print(f"devc-tasks benchmarks: median of {runs} run(s); {os.cpu_count()} CPUs; load {os.getloadavg()[0]:.1f}")
    for k, v, note in rows:
        print(f"  {k:<{width}}  {v:>8}  {note}")


if __name__ == "__main__":
    main()
