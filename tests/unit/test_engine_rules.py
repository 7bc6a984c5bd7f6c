"""The pure rules of the engine edge: choosing among matches, local vs remote."""

import pytest

from devc_tasks.engine import ContainerInfo, choose_container, is_local_url, parse_env
from devc_tasks.errors import AmbiguousContainer, ContainerNotRunning

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

    from devc_tasks.engine import _frames

    def frame(stream, data):
        return bytes([stream, 0, 0, 0]) + len(data).to_bytes(4, "big") + data

    reader = io.BufferedReader(io.BytesIO(frame(1, b"devc-probe=1\n") + frame(2, b"warning\n") + frame(1, b"")))
    reader.peek(1)  # the bytes now sit in the reader's buffer, as after parsing the headers
    sock = SimpleNamespace(_response=SimpleNamespace(raw=SimpleNamespace(_fp=SimpleNamespace(fp=reader))))
    assert list(_frames(sock)) == [(1, b"devc-probe=1\n"), (2, b"warning\n"), (1, b"")]
