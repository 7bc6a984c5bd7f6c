"""Benchmarks: print figures for the hot paths (never asserted in tests).

    python3 -m bench.bench [--runs N]

Needs the Docker engine and the test image (built on first use). Measures
`inv --list`, importing the package, the first `up` (daemon start + login), a
no-op `up`, `status --json`, `down` + `up` without key, and counts the execs a
no-op `up` and a `status` make, from the Engine's event stream.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


# Users' Pythons cache bytecode; this machine's environment turns that off, which
# would bill every run for compiling every module.
BASE_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"NO_COLOR": "1"}


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=REPO, env={**BASE_ENV, **(env or {})}, capture_output=True, text=True)
    return time.perf_counter() - start, proc


def inv(*args: str) -> list[str]:
    return [sys.executable, "-m", "invoke", "--search-root", str(REPO), *args]


def median_ms(argv: list[str], runs: int, env: dict[str, str] | None = None) -> float:
    times = []
    for _ in range(runs):
        t, proc = timed(argv, env)
        if proc.returncode not in (0, 5):
            raise SystemExit(f"{argv} failed: {proc.stderr}")
        times.append(t)
    return statistics.median(times) * 1000


def execs(client, container, since: int) -> int:
    events = client.events(since=since, until=int(time.time()) + 1, decode=True, filters={"container": container.id})
    return sum(1 for e in events if e.get("Action", "").startswith("exec_create"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs

    import docker

    sys.path.insert(0, str(REPO))
    from tests.support.images import ensure_images

    client = docker.from_env()
    image, _ = ensure_images(client)
    control = tempfile.mkdtemp(prefix="devc-bench-", dir="/tmp")
    volume = client.volumes.create(name=f"devc-bench-{uuid.uuid4().hex[:6]}")
    c = client.containers.run(
        image, ["sleep", "infinity"], detach=True, init=True, network_mode="none",
        devices=["/dev/net/tun:/dev/net/tun"], cap_add=["NET_ADMIN", "NET_RAW"],
        volumes={control: {"bind": "/srv/tailscale-control", "mode": "rw"}, volume.name: {"bind": "/var/lib/tailscale", "mode": "rw"}},
        labels={"devc-tasks-bench": "1"},
    )
    key = {"TAILSCALE_AUTHKEY": f"tskey-auth-bench{uuid.uuid4().hex[:6]}CNTRL-{uuid.uuid4().hex}"}
    sel = ["--container", c.name, "--hostname", "bench"]
    rows: list[tuple[str, str]] = []
    try:
        rows.append(("inv --list", f"{median_ms(inv('--list'), runs):.0f} ms"))
        rows.append(("python -c 'import devc_tasks'", f"{median_ms([sys.executable, '-c', 'import devc_tasks'], runs):.0f} ms"))
        t, proc = timed(inv("tailscale.up", *sel, "--json"), key)
        assert proc.returncode == 0, proc.stderr
        rows.append(("first up (start tailscaled + login)", f"{t * 1000:.0f} ms"))
        rows.append(("no-op up", f"{median_ms(inv('tailscale.up', *sel, '--json'), runs, key):.0f} ms"))
        rows.append(("status --json", f"{median_ms(inv('tailscale.status', '--container', c.name, '--json'), runs):.0f} ms"))
        down_up = []
        for _ in range(runs):
            timed(inv("tailscale.down", "--container", c.name))
            t, proc = timed(inv("tailscale.up", *sel))
            assert proc.returncode == 0, proc.stderr
            down_up.append(t)
        rows.append(("up after down (no key)", f"{statistics.median(down_up) * 1000:.0f} ms"))
        time.sleep(1.1)
        since = int(time.time())
        timed(inv("tailscale.up", *sel))
        rows.append(("execs for a no-op up", str(execs(client, c, since))))
        time.sleep(1.1)
        since = int(time.time())
        timed(inv("tailscale.status", "--container", c.name))
        rows.append(("execs for status", str(execs(client, c, since))))
    finally:
        c.remove(force=True)
        volume.remove(force=True)
        subprocess.run(["rm", "-rf", control])
    width = max(len(k) for k, _ in rows)
    print(f"devc-tasks benchmarks (median of {runs} runs where repeated)")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")


if __name__ == "__main__":
    main()
