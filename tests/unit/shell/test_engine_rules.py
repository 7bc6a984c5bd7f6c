"""The pure rules of the engine edge: choosing among matches, local vs remote."""

import pytest

from devc_tasks.core.container_choice import ContainerInfo, choose_container
from devc_tasks.core.endpoint import is_local_url
from devc_tasks.core.errors import AmbiguousContainer, ContainerNotRunning
from devc_tasks.shell.executors import parse_env

pytestmark = pytest.mark.unit


def c(name, status="running"):
    return ContainerInfo(id=name.ljust(64, "0"), name=name, status=status)


@pytest.mark.parametrize(
    "candidates, expected",
    [
        ([], None),
        ([c("a")], "a"),
        ([c("old", "exited"), c("new")], "new"),
    ],
    ids=["none", "one", "running-beats-stopped"],
)
def test_choose(candidates, expected):
    chosen = choose_container(candidates, "labels x")
    assert (chosen.name if chosen else None) == expected


@pytest.mark.parametrize(
    "candidates, error, words",
    [
        ([c("a"), c("b")], AmbiguousContainer, ["a (", "b (", "--container"]),
        ([c("a", "exited"), c("b", "exited")], AmbiguousContainer, ["a (", "b ("]),
        ([c("a", "exited")], ContainerNotRunning, ["is exited", "Start it"]),
    ],
    ids=["two-running", "two-stopped", "one-stopped"],
)
def test_choose_errors(candidates, error, words):
    with pytest.raises(error) as e:
        choose_container(candidates, "labels x")
    for w in words:
        assert w in str(e.value)


@pytest.mark.parametrize(
    "url, local",
    [("", True), ("unix:///var/run/docker.sock", True), ("npipe:////./pipe/docker_engine", True), ("tcp://127.0.0.1:2375", False), ("ssh://me@box", False)],
    ids=["default", "unix", "npipe", "tcp", "ssh"],
)
def test_is_local_url(url, local):
    assert is_local_url(url) is local


@pytest.mark.parametrize(
    "entries, expected",
    [(None, {}), ([], {}), (["A=1", "B=x=y", "C"], {"A": "1", "B": "x=y", "C": ""})],
    ids=["null", "empty", "values"],
)
def test_parse_env(entries, expected):
    assert parse_env(entries) == expected


def test_exec_frames_read_through_the_http_buffer():
    """Frames the HTTP parser already buffered with the upgrade headers are not lost (seen over TCP)."""
    import io
    from types import SimpleNamespace

    from devc_tasks.shell.executors import _frames

    def frame(stream, data):
        return bytes([stream, 0, 0, 0]) + len(data).to_bytes(4, "big") + data

    reader = io.BufferedReader(io.BytesIO(frame(1, b"devc-probe=1\n") + frame(2, b"warning\n") + frame(1, b"")))
    reader.peek(1)  # the bytes now sit in the reader's buffer, as after parsing the headers
    sock = SimpleNamespace(_response=SimpleNamespace(raw=SimpleNamespace(_fp=SimpleNamespace(fp=reader))))
    assert list(_frames(sock)) == [(1, b"devc-probe=1\n"), (2, b"warning\n"), (1, b"")]


# --- the lookup: one listing, the rules applied to it (issue 10) -------------------------

from types import SimpleNamespace  # noqa: E402

from devc_tasks.shell.discovery import executor_for, find_container  # noqa: E402
from devc_tasks.shell.engine import Engine  # noqa: E402

LF, CF = "devcontainer.local_folder", "devcontainer.config_file"


class CountingClient:
    """A fake SDK client that answers ``docker ps`` and ``docker inspect`` and counts the calls."""

    def __init__(self, listed, inspected=None):
        self.calls: list[str] = []
        self._listed, self._inspected = listed, inspected
        self.containers = SimpleNamespace(list=self._list, get=self._get)
        self.api = SimpleNamespace(inspect_container=self._inspect)

    def _list(self, **kwargs):
        self.calls.append("ps")
        wanted = kwargs["filters"]["label"]
        rows = [SimpleNamespace(id=i, attrs={"Id": i, "Names": [f"/{n}"], "State": "running", "Labels": lab}) for i, n, lab in self._listed]
        return [r for r in rows if all((w in r.attrs["Labels"]) if "=" not in w else r.attrs["Labels"].get(w.partition("=")[0]) == w.partition("=")[2] for w in wanted)]

    def _get(self, name):
        self.calls.append("inspect")
        return SimpleNamespace(id="f" * 64, attrs=self._inspected)

    def _inspect(self, cid):
        self.calls.append("inspect")
        return self._inspected


def test_container_lookup_inspects_once():
    """`--container`: the lookup's inspect serves the executor too (its env for the key and the name)."""
    attrs = {"Id": "f" * 64, "Name": "/web", "State": {"Status": "running"}, "Config": {"Labels": {}, "Env": ["TAILSCALE_HOSTNAME=web-node"]}}
    client = CountingClient([], inspected=attrs)
    engine = Engine(client=client, url="unix:///var/run/docker.sock", local=True)
    found = find_container(engine, container="web", workspace=None, config_path=None, compose_project=None, compose_service=None)
    assert executor_for(engine, found).env()["TAILSCALE_HOSTNAME"] == "web-node"
    assert client.calls == ["inspect"]
