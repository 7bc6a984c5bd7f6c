"""Shared fixtures: a real Docker engine, the test images, throwaway containers.

Integration tests need a real engine. Outside CI, without one, they skip with
one clear reason; in CI (CI=true) or with DEVC_REQUIRE_ENGINE=1 a missing
engine fails them instead, so a broken provisioning can never pass as green.
Everything a test creates carries the label ``devc-tasks-test=<run id>`` and a
unique name, and is removed at teardown even when the test fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
RUN_ID = uuid.uuid4().hex[:8]
TEST_LABEL = "devc-tasks-test"


def _engine_required() -> bool:
    """CI (CI=true) or DEVC_REQUIRE_ENGINE=1: the engine and tools must be there; a skip would hide their absence."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes") or os.environ.get("DEVC_REQUIRE_ENGINE") == "1"


NO_ENGINE = "no Docker engine reachable; start one (see README) to run integration and e2e tests"
_engine_seen: dict[str, str | None] = {}


def _engine_problem() -> str | None:
    """None when the engine of this environment (DOCKER_HOST, the context) answers, else why not; asked once per session."""
    if "problem" not in _engine_seen:
        try:
            import docker

            client = docker.from_env()
            try:
                client.ping()
            finally:
                client.close()
            _engine_seen["problem"] = None
        except Exception as e:  # noqa: BLE001 - any failure means "no engine"
            _engine_seen["problem"] = f"{type(e).__name__}: {e}"
    return _engine_seen["problem"]


def _need_engine() -> None:
    """Skip (one reason for all) or, in CI, fail when no engine answers."""
    problem = _engine_problem()
    if problem is None:
        return
    if _engine_required():
        pytest.fail(f"a Docker engine is required here (CI) but none answers: {problem}")
    pytest.skip(NO_ENGINE)


# Tests that share a costly session fixture run on one xdist worker (``--dist loadgroup``,
# pyproject addopts): each worker is its own session, so without a group every worker would
# start its own sshd/TLS dockerd/Podman service, or build and pipx-install its own wheel.
# Keyed by fixture name, so a new test that asks for one joins its group by itself.
XDIST_GROUPS = {
    "ssh_engine": "engine-ssh",
    "tls_engine": "engine-tls",
    "podman_engine": "engine-podman",
    "dist": "wheel",
}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for fixture, group in XDIST_GROUPS.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.xdist_group(group))
                break


# "engine cycle" times (tests/integration/test_engines.py) travel in the test reports, so the main
# process prints them whichever worker ran the cycle
_CYCLE_TIMES: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for key, value in report.user_properties:
        if key == "engine cycle":
            name, seconds = value
            _CYCLE_TIMES[name] = seconds


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _CYCLE_TIMES:
        terminalreporter.write_line("")
        for name, seconds in sorted(_CYCLE_TIMES.items()):
            terminalreporter.write_line(f"engine cycle {name}: {seconds:.1f} s")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Every integration and e2e test needs the engine, whether or not it asks for
    ``docker_client`` (tests that only run `inv` against the engine, too); pure tests
    in those files carry the ``unit`` mark and run anyway."""
    if (item.get_closest_marker("integration") or item.get_closest_marker("e2e")) and not item.get_closest_marker("unit"):
        _need_engine()


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    import docker

    _need_engine()
    client = docker.from_env()
    yield client
    # sweep whatever this run left behind, even after a crashed test
    for c in client.containers.list(all=True, filters={"label": f"{TEST_LABEL}={RUN_ID}"}):
        c.remove(force=True, v=True)
    for n in client.networks.list(filters={"label": f"{TEST_LABEL}={RUN_ID}"}):
        try:
            n.remove()
        except Exception:  # noqa: BLE001
            pass
    for v in client.volumes.list(filters={"label": f"{TEST_LABEL}={RUN_ID}"}):
        try:
            v.remove(force=True)
        except Exception:  # noqa: BLE001
            pass
    client.close()


@pytest.fixture(scope="session")
def images(docker_client: Any) -> tuple[str, str]:
    """(stand-in image, image without tailscale), built at most once per machine."""
    from tests.support.images import ensure_images

    return ensure_images(docker_client)


@pytest.fixture(scope="session")
def busybox_image(docker_client: Any, images: tuple[str, str]) -> str:
    """The stand-in image with a BusyBox userland (ash, BusyBox timeout/head/cut, BusyBox-style flock)."""
    from tests.support.images import ensure_busybox_image

    return ensure_busybox_image(docker_client)


@pytest.fixture
def control_dir() -> Iterator[Path]:
    """A fresh simulated control server (the stand-in's registry) for one test."""
    d = Path(tempfile.mkdtemp(prefix=f"devc-ctl-{RUN_ID}-", dir="/tmp"))
    os.chmod(d, 0o777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def unique(prefix: str = "devc-test") -> str:
    return f"{prefix}-{RUN_ID}-{uuid.uuid4().hex[:6]}"


class Containers:
    """Creates labelled test containers and volumes and removes them at teardown."""

    def __init__(self, client: Any, images: tuple[str, str], control: Path) -> None:
        self.client = client
        self.standin, self.bare = images
        self.control = control
        self.created: list[Any] = []
        self.volumes: list[str] = []

    def volume(self, name: str | None = None) -> str:
        name = name or unique("devc-vol")
        self.client.volumes.create(name=name, labels={TEST_LABEL: RUN_ID})
        self.volumes.append(name)
        return name

    def start(
        self,
        *,
        tun: bool = True,
        caps: bool = True,
        state: str | None | bool = True,
        tailscale: bool = True,
        env: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
        name: str | None = None,
        hostname: str | None = None,
        binds: dict[str, str] | None = None,
        image: str | None = None,
        init: bool = True,
    ) -> Any:
        """A running container; ``state`` True makes a fresh named volume, a str reuses one;
        ``binds`` maps host paths to read-only mounts; ``image`` overrides the stand-in image;
        ``init`` False leaves PID 1 to `sleep`, which reaps no orphan (as in an image run without --init)."""
        volumes: dict[str, dict[str, str]] = {str(self.control): {"bind": "/srv/tailscale-control", "mode": "rw"}}
        if state is True:
            state = self.volume()
        if state:
            volumes[str(state)] = {"bind": "/var/lib/tailscale", "mode": "rw"}
        for host_path, target in (binds or {}).items():
            volumes[host_path] = {"bind": target, "mode": "ro"}
        c = self.client.containers.run(
            image or (self.standin if tailscale else self.bare),
            command=["sleep", "infinity"],
            name=name or unique(),
            hostname=hostname,
            detach=True,
            network_mode="none",
            devices=["/dev/net/tun:/dev/net/tun"] if tun else None,
            cap_add=["NET_ADMIN", "NET_RAW"] if caps else None,
            volumes=volumes,
            environment=env or {},
            labels={TEST_LABEL: RUN_ID, **(labels or {})},
            init=init,
        )
        self.created.append(c)
        return c

    def cleanup(self) -> None:
        for c in self.created:
            try:
                c.remove(force=True, v=True)
            except Exception:  # noqa: BLE001
                pass
        for v in self.volumes:
            try:
                self.client.volumes.get(v).remove(force=True)
            except Exception:  # noqa: BLE001
                pass


@pytest.fixture
def containers(docker_client: Any, images: tuple[str, str], control_dir: Path) -> Iterator[Containers]:
    made = Containers(docker_client, images, control_dir)
    yield made
    made.cleanup()


class TaskRun:
    """One run of a task. A ``--json`` run's stdout is checked against its schema as soon as
    the run is made (tests/support/contract.py), whether or not the test looks at it."""

    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.code = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.json_mode = "--json" in (proc.args if isinstance(proc.args, list) else [])
        self._doc: Any = None
        if self.json_mode:
            from tests.support.contract import document

            try:
                self._doc = document(self.stdout)
            except json.JSONDecodeError as e:
                raise AssertionError(f"a --json run printed no JSON document on stdout ({e}): {self!r}") from None

    @property
    def doc(self) -> Any:
        return self._doc if self.json_mode else json.loads(self.stdout)

    def __repr__(self) -> str:
        return f"TaskRun(code={self.code}, stdout={self.stdout!r}, stderr={self.stderr!r})"


def run_inv(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, stdin: str | None = None, timeout: float = 180) -> TaskRun:
    """Run `inv <args>` as a user would (this repo's tasks.py), capturing everything."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("TAILSCALE_AUTHKEY", "TAILSCALE_HOSTNAME")}
    full_env["NO_COLOR"] = "1"
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "--search-root", str(REPO), *args],
        cwd=str(cwd or REPO),
        env=full_env,
        input=stdin or "",
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return TaskRun(proc)


@pytest.fixture
def inv():
    return run_inv


def logins(control: Path) -> list[dict[str, Any]]:
    path = control / "logins.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def tailscale_api(control_dir: Path) -> Iterator[Any]:
    """The Tailscale API stand-in on 127.0.0.1, sharing ``control_dir`` with the tailscale stand-in."""
    sys.path.insert(0, str(REPO / "tests" / "standin"))
    from tests.standin.tailscale_api import serve

    running = serve(str(control_dir))
    yield running
    running.stop()
