"""Benchmarks: every figure of issue 10 side by side, in one run (never asserted in tests).

    python3 -m bench.bench [--runs N] [--counts 1,5,20] [--quick]

Needs the Docker engine, the docker CLI and the test image (built on first use).
Compares, in one run on one machine, each figure with the load average when it was
taken, its ratio and its goal:

- ``docker exec C tailscale status --json`` (the docker CLI);
- the floor script (``bench/floor.py``: interpreter start, ``import docker``, one
  container lookup, one ``exec_run``), the best any Python tool on the SDK can do;
- ``status --json``, a no-op ``up`` (and the execs each makes, from the Engine's
  event stream), ``devc-tasks --help`` and ``inv --list`` (against ``import invoke``);
- the login latency: from the node reaching Running to ``up`` returning. The
  stand-in's daemon marks the node online in the control registry (a folder shared
  with the host) in the same step that makes its backend Running; a host thread
  watches that file every 2 ms, so the figure is "registry says online" to "the
  ``up`` process has exited", median over ``--runs`` logins (logout between them);
- ``status --all`` over 1, 5 and 20 devcontainers it starts (and removes), each a
  connected node, scoped with ``--label`` to them (other test runs' devcontainers
  on the engine stay out), with the ratio to the first count.

Every figure runs a user's install: the wheel of this checkout installed with pip
into a fresh virtual environment (bytecode compiled, as pip and pipx install it),
its ``devc-tasks`` and ``inv`` scripts, and its interpreter for the floor script and
``import invoke``. Not the development environment, whose figures a user never sees:
there an editable install's finder, the test extras' paramiko (which ``import
docker`` pulls in whenever it is installed: about 150 ms here) and version managers'
shims (pyenv's: about 75 ms per command) add to every command. ``--here`` measures
the current interpreter and checkout instead.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FLOOR = Path(__file__).resolve().parent / "floor.py"

# Users' Pythons cache bytecode; this machine's environment turns that off, which
# would bill every run for compiling every module.
BASE_ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "VIRTUAL_ENV", "DEVC_TASKS_NO_CACHE", "TAILSCALE_AUTHKEY", "TAILSCALE_HOSTNAME")} | {"NO_COLOR": "1"}
LABEL = "devc-tasks-bench"


@dataclass(frozen=True)
class Install:
    """The Python and scripts the figures run: a user's install, or this checkout (``--here``)."""

    python: str
    devc: list[str]  # the devc-tasks console script
    inv: list[str]  # invoke's own script, over a project whose tasks.py imports the collection
    what: str

    @classmethod
    def here(cls) -> Install:
        return cls(
            sys.executable,
            [sys.executable, "-c", "from devc_tasks.entry import main; main()"],
            [sys.executable, "-m", "invoke", "--search-root", str(REPO)],
            f"this checkout, {sys.executable}",
        )

    @classmethod
    def fresh(cls, root: Path) -> Install:
        """pip installs this checkout (and its dependencies, nothing else) into a new venv."""
        venv, project = root / "venv", root / "project"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(REPO)], capture_output=True, text=True)
        if pip.returncode != 0:
            raise SystemExit(f"pip install of this checkout failed:\n{pip.stderr}")
        project.mkdir()
        (project / "tasks.py").write_text("from devc_tasks import ns  # noqa: F401\n")
        py = str(venv / "bin" / "python")
        return cls(py, [str(venv / "bin" / "devc-tasks")], [str(venv / "bin" / "inv"), "--search-root", str(project)], f"a fresh venv, pip install of this checkout ({py})")


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=REPO, env={**BASE_ENV, **(env or {})}, capture_output=True, text=True)
    return time.perf_counter() - start, proc


INSTALL: Install  # set by main(): what every figure runs


def inv(*args: str) -> list[str]:
    return [*INSTALL.inv, *args]


def devc(*args: str) -> list[str]:
    return [*INSTALL.devc, *args]


def median_ms(argv: list[str], runs: int, env: dict[str, str] | None = None, ok: tuple[int, ...] = (0,)) -> float:
    times = []
    for _ in range(runs):
        t, proc = timed(argv, env)
        if proc.returncode not in ok:
            raise SystemExit(f"{argv} failed ({proc.returncode}): {proc.stderr}")
        times.append(t)
    return statistics.median(times) * 1000


class Rounds:
    """Commands timed in rounds (each runs once per round, in turn): medians, and ratios
    taken round by round, then their median."""

    def __init__(self, runs: int, commands: dict[str, list[str]]) -> None:
        self.times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(runs):
            for name, argv in commands.items():
                t, proc = timed(argv)
                if proc.returncode != 0:
                    raise SystemExit(f"{argv} failed ({proc.returncode}): {proc.stderr}")
                self.times[name].append(t * 1000)

    def ms(self, name: str) -> float:
        return statistics.median(self.times[name])

    def ratio(self, a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(self.times[a], self.times[b], strict=True))

    def ratios(self, a: str, *against: str) -> str:
        return ", ".join(f"{self.ratio(a, b):.2f}x {b}" for b in against)


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


def load() -> float:
    return os.getloadavg()[0]


class Table:
    """Rows of (what, figure, load average when measured, ratio, goal)."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str, str]] = []

    def add(self, what: str, figure: str, ratio: str = "", goal: str = "", at: float | None = None) -> None:
        self.rows.append((what, figure, f"{load() if at is None else at:.1f}", ratio, goal))

    def ms(self, what: str, ms: float | None, ratio: str = "", goal: str = "") -> None:
        self.add(what, "n/a" if ms is None else f"{ms:.0f} ms", ratio, goal)

    def print(self, header: str) -> None:
        head = ("what", "figure", "load", "ratio", "goal")
        widths = [max(len(r[i]) for r in [head, *self.rows]) for i in range(5)]
        print(header)
        for r in [head, *self.rows]:
            print("  " + "  ".join(f"{c:<{w}}" if i in (0, 3, 4) else f"{c:>{w}}" for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip())


def login_latency(fleet: Fleet, c: Any, hostname: str, runs: int) -> tuple[float | None, float]:
    """Median over ``runs`` logins (logout, then `up` with a fresh key) of the time from the
    node reaching Running to `up` returning; and the median time of the whole `up`. A logout
    marks the node offline in the registry, so each watch sees only its own login. Run
    through the console script, as `just tailscale up` runs it."""
    latencies, totals = [], []
    for i in range(runs):
        if i:
            _, proc = timed(devc("tailscale.logout", "--container", c.name))
            if proc.returncode != 0:
                raise SystemExit(f"logout failed: {proc.stderr}")
        done = fleet.running_at(hostname)
        t, proc = timed(devc("tailscale.up", "--container", c.name, "--hostname", hostname, "--json"), new_key())
        end = time.perf_counter()
        if proc.returncode != 0:
            raise SystemExit(f"up failed: {proc.stderr}")
        running = done()
        totals.append(t * 1000)
        if running is not None:
            latencies.append((end - running) * 1000)
    return (statistics.median(latencies) if latencies else None), statistics.median(totals)


def main() -> None:
    parser = argparse.ArgumentParser(description="devc-tasks benchmarks: every figure of issue 10 in one run.")
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (median); default 5")
    parser.add_argument("--counts", default="1,5,20", help="devcontainer counts for status --all; default 1,5,20")
    parser.add_argument("--quick", action="store_true", help="one run each, counts 1 and 2 (CI: proves the bench works)")
    parser.add_argument("--here", action="store_true", help="measure this interpreter and checkout, not a fresh user's install")
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    counts = [1, 2] if args.quick else [int(n) for n in args.counts.split(",")]
    start_load = load()

    import docker

    sys.path.insert(0, str(REPO))
    from tests.support.images import ensure_images

    global INSTALL
    client = docker.from_env()
    image, _ = ensure_images(client)
    scratch = Path(tempfile.mkdtemp(prefix="devc-bench-install-"))
    INSTALL = Install.here() if args.here else Install.fresh(scratch)
    fleet = Fleet(client, image)
    table = Table()

    try:
        c = fleet.start()
        hostname = f"bench-{fleet.run_id}"
        latency, first_up = login_latency(fleet, c, hostname, runs)

        # in rounds: each round runs every command once, so a ratio is taken within a round
        # (the machine's speed drifts less within one round than over the whole run)
        rounds = Rounds(runs, {
            "docker exec": ["docker", "exec", c.name, "tailscale", "status", "--json"],
            "floor": [INSTALL.python, str(FLOOR), c.name],
            "floor+invoke": [INSTALL.python, str(FLOOR), "--invoke", c.name],
            "status": devc("tailscale.status", "--container", c.name, "--json"),
            "up": devc("tailscale.up", "--container", c.name, "--hostname", hostname, "--json"),
        })
        table.ms("docker exec C tailscale status --json", rounds.ms("docker exec"), "1")
        table.ms("floor script (python, import docker, 1 lookup, 1 exec_run)", rounds.ms("floor"), rounds.ratios("floor", "docker exec"))
        table.ms("floor script + import invoke (any Invoke program)", rounds.ms("floor+invoke"), rounds.ratios("floor+invoke", "floor"))
        table.ms("devc-tasks status --json", rounds.ms("status"), rounds.ratios("status", "floor", "floor+invoke", "docker exec"),
                 "<= 1.2x floor, <= 3x docker exec")
        table.ms("devc-tasks up (no-op)", rounds.ms("up"), rounds.ratios("up", "floor", "floor+invoke", "docker exec"), "<= 1.3x floor")
        time.sleep(1.1)
        since = time.time()
        timed(devc("tailscale.up", "--container", c.name, "--hostname", hostname))
        time.sleep(1.1)
        table.add("  execs for a no-op up", str(execs(client, c, since)), goal="1")
        since = time.time()
        timed(devc("tailscale.status", "--container", c.name))
        time.sleep(1.1)
        table.add("  execs for status", str(execs(client, c, since)), goal="1")
        bare = median_ms([INSTALL.python, "-c", "import invoke"], runs)
        table.ms("python -c 'import invoke' (the floor of --help)", bare)
        cold = statistics.median(
            timed(devc("--help"), {"XDG_CACHE_HOME": tempfile.mkdtemp(dir=scratch)})[0] * 1000 for _ in range(runs)
        )
        table.ms("devc-tasks --help, first time (the program answers)", cold, f"{cold / bare:.2f}x import invoke")
        answers = {"XDG_CACHE_HOME": str(scratch / "answers")}
        timed(devc("--help"), answers)
        helps = median_ms(devc("--help"), runs, answers)
        table.ms("devc-tasks --help, again (its recorded answer)", helps, f"{helps / bare:.2f}x import invoke", "<= 120 ms")
        timed(devc("tailscale.up", "--help"), answers)
        task_help = median_ms(devc("tailscale.up", "--help"), runs, answers)
        table.ms("devc-tasks tailscale.up --help, again", task_help, f"{task_help / bare:.2f}x import invoke", "<= 120 ms")
        listing = median_ms(inv("--list"), runs)
        table.ms("inv --list (Invoke's own program: imports Invoke)", listing, f"{listing / bare:.2f}x import invoke", "<= 120 ms")
        table.ms(f"first up, then login after logout (median of {runs})", first_up)
        table.ms("login latency (node Running -> up returns)", latency, goal="<= 100 ms")

        # status --all over N bench devcontainers, each a connected node; --label keeps
        # other devcontainers on the engine (other test runs) out of the figure
        scope = ("--label", f"{LABEL}={fleet.run_id}")
        fleet_nodes: list[Any] = []
        base: dict[str, float] = {}  # each series' figure over the first count
        for n in counts:
            new = [fleet.start(devcontainer=True) for _ in range(n - len(fleet_nodes))]
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(lambda x: up_ok(x.name, f"bench-all-{x.name[-6:]}"), new))
            fleet_nodes += new
            names = [x.name for x in fleet_nodes]
            _, proc = timed(devc("tailscale.status", "--all", *scope, "--json"))
            listed = len(json.loads(proc.stdout)["containers"]) if proc.returncode == 0 else "?"
            rounds = Rounds(runs, {
                "all": devc("tailscale.status", "--all", *scope, "--json"),
                "floor": [INSTALL.python, str(FLOOR), *names],
                "cli": ["sh", "-c", 'for c; do docker exec "$c" tailscale status --json >/dev/null & done; wait', "sh", *names],
            })
            figures = {k: rounds.ms(k) for k in rounds.times}
            for k, v in figures.items():
                base.setdefault(k, v)
            first, last = n == counts[0], n == counts[-1]
            vs = "" if first else f"{figures['all'] / base['all']:.2f}x {counts[0]}, "
            table.ms(f"status --all over {n} devcontainer(s) ({listed} rows)", figures["all"],
                     f"{vs}{rounds.ratio('all', 'floor'):.2f}x floor over {n}", "<= 2x 1" if last and not first else "")
            table.ms(f"  floor script over {n} ({min(8, n)} at once)", figures["floor"], "" if first else f"{figures['floor'] / base['floor']:.2f}x {counts[0]}")
            table.ms(f"  docker exec over {n} (all at once)", figures["cli"], "" if first else f"{figures['cli'] / base['cli']:.2f}x {counts[0]}")
    finally:
        fleet.remove()
        subprocess.run(["rm", "-rf", str(scratch)], check=False)
    table.print(
        f"devc-tasks benchmarks: {INSTALL.what}; median of {runs} run(s); {os.cpu_count()} CPUs; "
        f"load average {start_load:.1f} at the start, {load():.1f} at the end (the load column: when each figure was taken)"
    )


if __name__ == "__main__":
    main()
