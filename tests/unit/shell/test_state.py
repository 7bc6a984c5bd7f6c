"""The pure parts of the state volume: which mount holds it, warnings, names, archive checks."""

from __future__ import annotations

import gzip
import io
import tarfile
from datetime import UTC, datetime, timedelta, timezone

import pytest

from devc_tasks.core.archive import backup_label, default_backup_name, parse_size, validate_archive
from devc_tasks.core.errors import UnsafeArchive, UsageError
from devc_tasks.core.paths import STATE_DIR
from devc_tasks.core.persistence import StateMount, inspect_state_mount, is_anonymous_volume, persistence_problem, persistence_warning
from tests.support.archives import foreign_tar

pytestmark = pytest.mark.unit

HEX = "0123456789abcdef" * 4
# a state file with an identity, in tailscaled's layout (ipn/store: base64 values)
STATE = (
    b'{\n  "_current-profile": "YTFiMg==",\n  "_machinekey": "cHJpdmtleTphYmM=",\n'
    b'  "_profiles": "eyJhMWIyIjogeyJJRCI6ICJhMWIyIiwgIktleSI6ICJwcm9maWxlLWExYjIifX0=",\n  "profile-a1b2": "e30="\n}'
)
FRESH = b"{}"  # what a fresh tailscaled writes: no identity


# --- which mount holds the state directory -----------------------------------


def volume(name, dest=STATE_DIR, rw=True):
    return {"Type": "volume", "Name": name, "Source": f"/var/lib/docker/volumes/{name}/_data", "Destination": dest, "Driver": "local", "RW": rw}


def bind(source, dest=STATE_DIR, rw=True):
    return {"Type": "bind", "Source": source, "Destination": dest, "RW": rw}


VOLUMES = {
    "proj_tailscale-state": {"Name": "proj_tailscale-state", "Driver": "local", "CreatedAt": "2024-05-01T10:00:00Z", "Labels": {"com.docker.compose.volume": "tailscale-state"}},
    HEX: {"Name": HEX, "Driver": "local", "CreatedAt": "2024-05-02T10:00:00Z", "Labels": None},
    "labelled-anon": {"Name": "labelled-anon", "Driver": "local", "CreatedAt": "2024-05-03T10:00:00Z", "Labels": {"com.docker.volume.anonymous": ""}},
}


@pytest.mark.parametrize(
    "attrs, kind, name, source, destination, read_only",
    [
        ({"Mounts": [volume("proj_tailscale-state")]}, "volume", "proj_tailscale-state", "/var/lib/docker/volumes/proj_tailscale-state/_data", STATE_DIR, False),
        ({"Mounts": [volume(HEX)]}, "anonymous", HEX, "/var/lib/docker/volumes/" + HEX + "/_data", STATE_DIR, False),
        ({"Mounts": [volume("labelled-anon")]}, "anonymous", "labelled-anon", "/var/lib/docker/volumes/labelled-anon/_data", STATE_DIR, False),
        ({"Mounts": [bind("/home/me/ts")]}, "bind", None, "/home/me/ts", STATE_DIR, False),
        ({"Mounts": [bind("/srv/lib", dest="/var/lib")]}, "bind", None, "/srv/lib", "/var/lib", False),
        ({"Mounts": [bind("/srv/lib", dest="/var/lib/"), volume("proj_tailscale-state", dest="/var/lib/tailscale/")]}, "volume", "proj_tailscale-state", "/var/lib/docker/volumes/proj_tailscale-state/_data", STATE_DIR, False),
        ({"Mounts": [volume("proj_tailscale-state", dest="/var/lib/tailscale/certs")]}, "none", None, None, None, False),
        ({"Mounts": [volume("proj_tailscale-state", dest="/var/lib/tailscale2")]}, "none", None, None, None, False),
        ({"Mounts": [bind("/", dest="/")]}, "none", None, None, None, False),
        ({"Mounts": []}, "none", None, None, None, False),
        ({"Mounts": None}, "none", None, None, None, False),
        ({}, "none", None, None, None, False),
        ({"Mounts": [], "HostConfig": {"Tmpfs": {STATE_DIR: "size=1m"}}}, "tmpfs", None, None, STATE_DIR, False),
        ({"Mounts": [{"Type": "tmpfs", "Destination": STATE_DIR, "RW": True}]}, "tmpfs", None, None, STATE_DIR, False),
        ({"Mounts": [bind("/home/me/ts", rw=False)]}, "bind", None, "/home/me/ts", STATE_DIR, True),
        ({"Mounts": [volume("gone-volume")]}, "volume", "gone-volume", "/var/lib/docker/volumes/gone-volume/_data", STATE_DIR, False),
    ],
    ids=[
        "named", "anonymous-hex", "anonymous-label", "bind", "bind-on-parent", "deepest-wins",
        "deeper-mount-only", "sibling-prefix", "root-ignored", "no-mounts", "mounts-null", "no-key",
        "tmpfs-hostconfig", "tmpfs-mount", "read-only", "volume-gone",
    ],
)
def test_inspect_state_mount(attrs, kind, name, source, destination, read_only):
    m = inspect_state_mount(attrs, VOLUMES.get)
    assert (m.kind, m.name, m.source, m.destination, m.read_only) == (kind, name, source, destination, read_only)


def test_inspect_named_volume_details():
    m = inspect_state_mount({"Mounts": [volume("proj_tailscale-state")]}, VOLUMES.get)
    assert m.driver == "local" and m.created == "2024-05-01T10:00:00Z" and m.persistent
    assert m.to_dict()["persistent"] is True
    assert "proj_tailscale-state" in m.describe()


def test_inspect_asks_only_for_volumes():
    asked = []
    mounts = [bind("/x", dest="/var/lib"), volume("v"), volume("w", dest="/opt")]
    inspect_state_mount({"Mounts": mounts}, lambda n: asked.append(n) or None)
    assert asked == ["v"]


@pytest.mark.parametrize(
    "name, vol, anonymous",
    [
        (HEX, None, True),
        (HEX, {"Labels": None}, True),
        ("proj_tailscale-state", {"Labels": {}}, False),
        ("proj_tailscale-state", None, False),
        ("x", {"Labels": {"com.docker.volume.anonymous": ""}}, True),
        (HEX.upper(), None, False),
        (HEX[:-1], None, False),
        (None, None, True),
    ],
    ids=["hex", "hex-no-labels", "named", "named-gone", "label", "upper-hex", "63-hex", "no-name"],
)
def test_is_anonymous_volume(name, vol, anonymous):
    assert is_anonymous_volume(name, vol) is anonymous


# --- persistence warnings ------------------------------------------------------


@pytest.mark.parametrize(
    "mount, words",
    [
        (StateMount(kind="none"), ["nothing is mounted", "recreated", "tailscale-state:/var/lib/tailscale", "${devcontainerId}", "state.backup"]),
        (StateMount(kind="anonymous", name=HEX, destination=STATE_DIR), ["anonymous volume (0123456789ab)", "rebuild", "volumes:"]),
        (StateMount(kind="tmpfs", destination=STATE_DIR), ["tmpfs", "stops"]),
        (StateMount(kind="bind", source="/x", destination=STATE_DIR, read_only=True), ["read-only", "cannot save", "read-write"]),
        (StateMount(kind="volume", name="v", destination=STATE_DIR, read_only=True), ["read-only"]),
        (StateMount(kind="npipe", source="x", destination=STATE_DIR), ["npipe"]),
    ],
    ids=["none", "anonymous", "tmpfs", "bind-ro", "volume-ro", "other-type"],
)
def test_persistence_warning(mount, words):
    text = persistence_warning(mount)
    assert text is not None
    for w in words:
        assert w in text
    message, fix = persistence_problem(mount)
    assert message in text and fix in text


@pytest.mark.parametrize(
    "mount",
    [StateMount(kind="volume", name="proj_tailscale-state", destination=STATE_DIR), StateMount(kind="bind", source="/x", destination="/var/lib")],
    ids=["named", "bind-parent"],
)
def test_no_warning_when_persistent(mount):
    assert persistence_warning(mount) is None and persistence_problem(mount) is None


# --- backup names and sizes ------------------------------------------------------


@pytest.mark.parametrize(
    "name, labels, expected",
    [
        ("proj-app-1", {"com.docker.compose.project": "proj"}, "proj"),
        ("festive_hopper", {"devcontainer.local_folder": "/home/me/web-app"}, "web-app"),
        ("festive_hopper", {"devcontainer.local_folder": "C:\\src\\api\\"}, "api"),
        ("/plain", {}, "plain"),
        ("plain", None, "plain"),
    ],
    ids=["compose", "workspace", "windows-folder", "container", "no-labels"],
)
def test_backup_label(name, labels, expected):
    assert backup_label(name, labels) == expected


@pytest.mark.parametrize(
    "label, now, expected",
    [
        ("proj", datetime(2024, 5, 1, 9, 8, 7, tzinfo=UTC), "tailscale-state-proj-20240501T090807Z.tar"),
        ("proj", datetime(2024, 5, 1, 11, 8, 7, tzinfo=timezone(timedelta(hours=2))), "tailscale-state-proj-20240501T090807Z.tar"),
        ("proj", datetime(2024, 5, 1, 9, 8, 7), "tailscale-state-proj-20240501T090807Z.tar"),
        ("my proj/../x", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "tailscale-state-my-proj-..-x-20240102T030405Z.tar"),
        ("..", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "tailscale-state-container-20240102T030405Z.tar"),
    ],
    ids=["utc", "other-zone", "naive", "unsafe-chars", "only-dots"],
)
def test_default_backup_name(label, now, expected):
    name = default_backup_name(label, now)
    assert name == expected
    assert "/" not in name


@pytest.mark.parametrize(
    "text, expected",
    [("65536", 65536), ("512K", 512 * 1024), ("64M", 64 * 1024**2), ("64mib", 64 * 1024**2), ("1G", 1024**3), (" 10 ", 10), (7, 7)],
)
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "x", "-5", "0", "1.5M", "10 TB"])
def test_parse_size_rejects(text):
    with pytest.raises(UsageError, match="--max-size"):
        parse_size(text)


# --- archive validation ------------------------------------------------------------


def tar(*entries, compress=False):
    """Entries: (name, type, payload/linkname). Types: f d l h c b p."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, extra in entries:
            info = tarfile.TarInfo(name)
            info.mode = 0o600 if kind == "f" else 0o700
            data = None
            if kind == "f":
                data = extra if isinstance(extra, bytes) else b"x"
                info.size = len(data)
            else:
                info.type = {"d": tarfile.DIRTYPE, "l": tarfile.SYMTYPE, "h": tarfile.LNKTYPE, "c": tarfile.CHRTYPE, "b": tarfile.BLKTYPE, "p": tarfile.FIFOTYPE}[kind]
                if kind in "lh":
                    info.linkname = extra
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = buf.getvalue()
    return gzip.compress(raw) if compress else raw


GOOD_TOP = [("tailscale", "d", None), ("tailscale/tailscaled.state", "f", STATE), ("tailscale/certs", "d", None), ("tailscale/certs/a.crt", "f", b"crt")]


@pytest.mark.parametrize(
    "data, layout, paths",
    [
        (tar(*GOOD_TOP), "top-dir", ["certs", "certs/a.crt", "tailscaled.state"]),
        (tar(("tailscale/tailscaled.state", "f", STATE)), "top-dir", ["tailscaled.state"]),
        (tar(("tailscaled.state", "f", STATE), ("files", "d", None)), "relative", ["files", "tailscaled.state"]),
        (tar((".", "d", None), ("./tailscaled.state", "f", STATE)), "relative", ["tailscaled.state"]),
        (tar(("tailscaled.state", "f", STATE), ("tailscale", "d", None)), "relative", ["tailscale", "tailscaled.state"]),
        (tar(("tailscale//./tailscaled.state", "f", STATE)), "top-dir", ["tailscaled.state"]),
    ],
    ids=["backup", "top-dir-no-dir-entry", "relative", "dot-slash", "relative-with-tailscale-subdir", "odd-slashes"],
)
def test_accepts(data, layout, paths):
    checked = validate_archive(data)
    assert checked.layout == layout
    assert [m.path for m in checked.members] == paths
    assert checked.has_identity


@pytest.mark.parametrize(
    "entries, max_size, member, words",
    [
        ([("/etc/passwd", "f", b"x"), ("tailscaled.state", "f", STATE)], None, "/etc/passwd", "absolute path"),
        ([("tailscale/../../etc/cron.d/x", "f", b"x")], None, "tailscale/../../etc/cron.d/x", "`..`"),
        ([("..", "d", None)], None, "..", "`..`"),
        ([("tailscale/tailscaled.state", "l", "/etc/shadow")], None, "tailscale/tailscaled.state", "symbolic link"),
        ([("tailscale/tailscaled.state", "f", STATE), ("tailscale/x", "h", "tailscale/tailscaled.state")], None, "tailscale/x", "hard link"),
        ([("tailscale/tun", "c", None)], None, "tailscale/tun", "device file"),
        ([("tailscale/disk", "b", None)], None, "tailscale/disk", "device file"),
        ([("tailscale/pipe", "p", None)], None, "tailscale/pipe", "FIFO"),
        ([("tailscale/tailscaled.state", "f", STATE), ("tailscale/big", "f", b"y" * 2000)], 1000, "tailscale/big", "size limit of 1000 bytes"),
        ([("tailscale/tailscaled.state", "f", STATE), ("tailscale/tailscaled.state", "f", STATE)], None, "tailscale/tailscaled.state", "twice"),
        ([("tailscale/tailscaled.state", "f", STATE), ("tailscale/tailscaled.state/x", "f", b"x")], None, "tailscaled.state/x", "under the file"),
        ([("tailscale/a\nb", "f", b"x")], None, "tailscale/a\nb", "control characters"),
    ],
    ids=["absolute", "dotdot", "dotdot-dir", "symlink", "hardlink", "char-device", "block-device", "fifo", "oversize", "duplicate", "under-a-file", "newline-name"],
)
def test_refuses(entries, max_size, member, words):
    kwargs = {"max_size": max_size} if max_size else {}
    with pytest.raises(UnsafeArchive) as e:
        validate_archive(tar(*entries), **kwargs)
    assert repr(member) in e.value.message
    assert words in e.value.message
    assert "nothing was changed" in e.value.message
    assert e.value.exit_code == 31


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "not a readable tar"),
        (b"hello, this is not a tar archive at all" * 20, "not a readable tar"),
        (tar(*GOOD_TOP)[:700], "truncated"),
        (tar(*GOOD_TOP)[:1100], "not a readable tar"),
        (tar(*GOOD_TOP)[:2048], "truncated"),
        (tar(("tailscale", "d", None)), "no non-empty tailscale/tailscaled.state"),
        (tar(("tailscale/tailscaled.state", "f", b"")), "no non-empty"),
        (tar(("other/tailscaled.state", "f", STATE)), "no non-empty tailscaled.state"),
        (tar(("tailscale/tailscaled.state", "f", FRESH)), "no logged-in profile"),
        (tar(("tailscale/tailscaled.state", "f", b'{"_current-profile": "YTFiMg==", "_profiles": "e30="}')), "no logged-in profile"),
        (tar(("tailscale/tailscaled.state", "f", b"{not json")), "not valid JSON"),
    ],
    ids=["empty-file", "not-tar", "cut-in-header", "cut-in-data", "cut-at-header", "no-state-file", "empty-state-file", "wrong-top-dir", "fresh-daemon", "after-logout", "invalid-json"],
)
def test_refuses_unusable(data, words):
    with pytest.raises(UnsafeArchive, match="refusing the archive") as e:
        validate_archive(data)
    assert words in e.value.message


def test_too_many_members():
    entries = [("tailscale/tailscaled.state", "f", STATE)] + [(f"tailscale/f{i}", "f", b"x") for i in range(5)]
    with pytest.raises(UnsafeArchive, match="more than 3 members"):
        validate_archive(tar(*entries), max_members=3)


def test_oversize_is_refused_before_its_data_is_read():
    # a header that claims 10 GiB with no data behind it: refused on the header alone
    info = tarfile.TarInfo("tailscale/huge")
    info.size = 10 * 1024**3
    head = info.tobuf(format=tarfile.PAX_FORMAT)
    with pytest.raises(UnsafeArchive, match="size limit"):
        validate_archive(head + b"\0" * 1024)


def test_clean_tar_round_trip_drops_special_bits():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        d = tarfile.TarInfo("tailscale")
        d.type, d.mode = tarfile.DIRTYPE, 0o700
        tf.addfile(d)
        f = tarfile.TarInfo("tailscale/tailscaled.state")
        f.size, f.mode, f.uid, f.gid, f.uname = len(STATE), 0o4755, 0, 0, "root"
        tf.addfile(f, io.BytesIO(STATE))
    checked = validate_archive(buf.getvalue())
    assert checked.top_mode == 0o700
    assert checked.members[0].mode == 0o600
    again = validate_archive(checked.tar())
    assert again.layout == "relative" and again.members == checked.members
    assert again.contents == checked.contents == {"tailscaled.state": STATE}
    prefixed = validate_archive(checked.tar(prefix="tailscale"))
    assert prefixed.layout == "top-dir" and prefixed.top_mode == 0o700 and prefixed.members == checked.members
    with tarfile.open(fileobj=io.BytesIO(checked.tar())) as tf:
        assert [(i.name, i.type) for i in tf] == [("tailscaled.state", tarfile.REGTYPE)]


# --- small helpers of the Engine part ------------------------------------------------


@pytest.mark.parametrize("size", [1, 7, 512, 100_000], ids=["1", "7", "block", "whole"])
def test_chunk_reader_streams_a_tar(size):
    from devc_tasks.shell.state.transport import _ChunkReader

    data = tar(*GOOD_TOP)
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    with tarfile.open(fileobj=_ChunkReader(chunks), mode="r|") as tf:
        assert [i.name for i in tf] == [name for name, _, _ in GOOD_TOP]


def test_backup_target_rules(tmp_path):
    from devc_tasks.shell.state.backup import backup_path, check_backup_target
    from devc_tasks.shell.state.transport import StateContainer

    sc = StateContainer(client=None, id="x" * 64, name="web-1", attrs={"Config": {"Labels": {"com.docker.compose.project": "web"}}}, executor=None)
    now = datetime(2024, 5, 1, 9, 8, 7, tzinfo=UTC)
    assert backup_path(sc, None, now, cwd=tmp_path) == tmp_path / "tailscale-state-web-20240501T090807Z.tar"
    assert backup_path(sc, str(tmp_path), now) == tmp_path / "tailscale-state-web-20240501T090807Z.tar"
    assert backup_path(sc, "b.tar", now, cwd=tmp_path) == tmp_path / "b.tar"
    check_backup_target(tmp_path / "b.tar", force=False)
    (tmp_path / "b.tar").write_bytes(b"old")
    with pytest.raises(UsageError, match="already exists") as e:
        check_backup_target(tmp_path / "b.tar", force=False)
    assert "--force" in e.value.fix
    check_backup_target(tmp_path / "b.tar", force=True)
    with pytest.raises(UsageError, match="is not a folder"):
        check_backup_target(tmp_path / "missing" / "b.tar", force=True)


# --- review fixes ------------------------------------------------------------------


def test_volume_fix_puts_the_backup_advice_on_its_own_line():
    _, fix = persistence_problem(StateMount(kind="none"))
    assert "\nBack up first" in fix


@pytest.mark.parametrize(
    "compress, kind",
    [(gzip.compress, "gzip"), (__import__("bz2").compress, "bzip2"), (__import__("lzma").compress, "xz")],
    ids=["gzip", "bzip2", "xz"],
)
def test_compressed_archives_are_refused(compress, kind):
    with pytest.raises(UnsafeArchive, match=f"{kind}-compressed") as e:
        validate_archive(compress(tar(*GOOD_TOP)))
    assert "plain tar" in e.value.message and "nothing was changed" in e.value.message


def test_a_gzip_bomb_is_refused_before_it_expands():
    # 128 MiB of zeros in a PAX header compress to ~130 KB; "r:*" would inflate all of it
    info = tarfile.TarInfo("tailscale/tailscaled.state")
    head = info.tobuf(format=tarfile.USTAR_FORMAT)
    pax = tarfile.TarInfo("././@PaxHeader")
    pax.type, pax.size = tarfile.XHDTYPE, 128 * 1024**2
    import zlib

    z = zlib.compressobj(1, zlib.DEFLATED, 31)
    bomb = z.compress(pax.tobuf(format=tarfile.USTAR_FORMAT))
    block = b"\0" * (1024 * 1024)
    for _ in range(128):
        bomb += z.compress(block)
    bomb += z.compress(head) + z.flush()
    import tracemalloc

    tracemalloc.start()
    try:
        with pytest.raises(UnsafeArchive, match="compressed"):
            validate_archive(bomb)
        assert tracemalloc.get_traced_memory()[1] < 8 * 1024**2
    finally:
        tracemalloc.stop()


def test_headers_count_against_the_limit():
    # a GNU long name of 100 KB on a directory: no file data, but more than the archive may hold
    long_dir = "tailscale/" + "d" * 100_000
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for name, kind, payload in [("tailscale/tailscaled.state", "f", STATE), (long_dir, "d", None)]:
            info = tarfile.TarInfo(name)
            if kind == "d":
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            else:
                info.size = len(payload)
                tf.addfile(info, io.BytesIO(payload))
    data = buf.getvalue()
    assert len(data) > 100_000
    with pytest.raises(UnsafeArchive, match="more than") as e:
        validate_archive(data, max_size=1000, max_members=3)
    assert "nothing was changed" in e.value.message


def test_negative_sizes_are_refused():
    info = tarfile.TarInfo("tailscale/x")
    info.pax_headers = {"size": "-5000"}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        tf.addfile(info)
    with pytest.raises(UnsafeArchive, match="negative size"):
        validate_archive(buf.getvalue())


def test_restore_writes_root_owned_private_files():
    data = foreign_tar([("tailscale", 0o777, None), ("tailscale/certs", 0o755, None), ("tailscale/tailscaled.state", 0o644, STATE), ("tailscale/certs/a.crt", 0o666, b"crt")])
    checked = validate_archive(data)
    assert checked.top_mode == 0o700
    for out in (checked.tar(), checked.tar(prefix="tailscale")):
        with tarfile.open(fileobj=io.BytesIO(out)) as tf:
            infos = tf.getmembers()
        assert infos
        for i in infos:
            assert (i.uid, i.gid, i.uname, i.gname) == (0, 0, "root", "root"), i.name
            assert i.mode == (0o700 if i.isdir() else 0o600), (i.name, oct(i.mode))


@pytest.mark.parametrize(
    "dir_mode, file_mode",
    [(0o000, 0o000), (0o555, 0o444), (0o644, 0o400), (0o777, 0o777), (0o7777, 0o6755), (0o100, 0o200)],
    ids=["none", "read-only", "dir-without-x", "everyone", "special-bits", "odd"],
)
def test_restored_modes_are_set_not_capped(dir_mode, file_mode):
    """0600 for files and 0700 for directories exactly, whatever the archive says: a 000
    file must not stay unreadable, nor a 0644 directory lose its x bit."""
    data = foreign_tar([("tailscale", dir_mode, None), ("tailscale/certs", dir_mode, None), ("tailscale/tailscaled.state", file_mode, STATE), ("tailscale/certs/a.crt", file_mode, b"crt")])
    checked = validate_archive(data)
    assert checked.top_mode == 0o700
    assert {(m.path, m.mode) for m in checked.members} == {("certs", 0o700), ("certs/a.crt", 0o600), ("tailscaled.state", 0o600)}
    for out in (checked.tar(), checked.tar(prefix="tailscale")):
        with tarfile.open(fileobj=io.BytesIO(out)) as tf:
            assert {i.mode for i in tf if i.isdir()} == {0o700} and {i.mode for i in tf if i.isfile()} == {0o600}


def _with_mtime(**how):
    buf = io.BytesIO()
    fmt = tarfile.GNU_FORMAT if "gnu" in how else tarfile.PAX_FORMAT
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        info = tarfile.TarInfo("tailscale/tailscaled.state")
        info.size = len(STATE)
        if "pax" in how:
            info.pax_headers = {"mtime": how["pax"]}
        if "gnu" in how:
            info.mtime = how["gnu"]
        tf.addfile(info, io.BytesIO(STATE))
    return buf.getvalue()


@pytest.mark.parametrize(
    "how",
    [dict(pax="inf"), dict(pax="-inf"), dict(pax="nan"), dict(pax="1e400"), dict(pax="-1"), dict(pax="8589934592"), dict(gnu=2**80)],
    ids=["inf", "minus-inf", "nan", "overflows-float", "before-1970", "past-ustar", "gnu-base-256-huge"],
)
def test_out_of_range_mtimes_are_refused(how):
    """Refused as an unsafe archive (exit 31), not an OverflowError when the clean tar is written."""
    with pytest.raises(UnsafeArchive, match="modification time out of range") as e:
        validate_archive(_with_mtime(**how)).tar()
    assert e.value.exit_code == 31 and "nothing was changed" in e.value.message


@pytest.mark.parametrize("how", [dict(pax="0"), dict(pax="1700000000.25"), dict(pax="8589934591")], ids=["epoch", "fraction", "last-ustar"])
def test_in_range_mtimes_are_kept(how):
    checked = validate_archive(_with_mtime(**how))
    assert validate_archive(checked.tar()).members == checked.members


def test_read_archive_refuses_a_fifo_without_blocking(tmp_path):
    import os
    import threading

    from devc_tasks.shell.state.backup import read_archive

    fifo = tmp_path / "backup.tar"
    os.mkfifo(fifo)
    outcome = []

    def read():
        try:
            read_archive(fifo)
        except Exception as e:  # noqa: BLE001
            outcome.append(e)

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(5)
    if t.is_alive():  # unblock the reader, then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        t.join(5)
        pytest.fail("read_archive blocked on a FIFO")
    assert isinstance(outcome[0], UsageError) and "not a regular file" in outcome[0].message


# --- the Engine part, with fakes ------------------------------------------------------


class FakeApi:
    def __init__(self, archives):
        self.archives = archives  # path -> (chunks, stat)

    def get_archive(self, cid, path):
        import docker.errors

        if path not in self.archives:
            raise docker.errors.NotFound("no such path")
        return self.archives[path]

    def inspect_container(self, cid):
        raise AssertionError("inspected again: the executor has the document")


class FakeClient:
    def __init__(self, archives=None):
        self.api = FakeApi(archives or {})


def fake_sc(archives=None, status="exited", executor=None):
    from devc_tasks.shell.state.transport import StateContainer

    return StateContainer(client=FakeClient(archives), id="c" * 64, name="web-1", attrs={"State": {"Status": status}}, executor=executor)


@pytest.mark.parametrize(
    "content, identity, broken",
    [(STATE, True, False), (FRESH, False, False), (b'{"_current-profile": "YTFiMg==", "_profiles": "e30="}', False, False), (b"{not json", False, True)],
    ids=["identity", "fresh-daemon", "after-logout", "invalid-json"],
)
def test_show_decides_the_identity_from_the_state_files_content(content, identity, broken):
    """A stopped container: no daemon to ask, so the file's content decides (not its size)."""
    from devc_tasks.core.paths import STATE_FILE
    from devc_tasks.shell.state.backup import show

    class Archives(dict):
        def __getitem__(self, path):
            return (iter([tar(("tailscaled.state", "f", content))]), {"name": "tailscaled.state", "size": len(content)})

    archives = Archives({STATE_FILE: None})
    report = show(fake_sc(archives))
    assert report.state_file_size == len(content)
    assert (report.has_identity, report.state_broken) == (identity, broken)


def test_open_state_uses_the_executors_inspect_document():
    from types import SimpleNamespace

    from devc_tasks.shell.state.transport import open_state

    attrs = {"State": {"Status": "running"}, "Config": {"Labels": {}}}
    executor = SimpleNamespace(inspect=lambda: attrs)
    target = SimpleNamespace(
        engine=SimpleNamespace(client=FakeClient()),
        found=SimpleNamespace(container=SimpleNamespace(id="c" * 64, name="web-1")),
        executor=executor,
    )
    sc = open_state(target)
    assert sc.attrs is attrs and sc.running and sc.executor is executor


def test_backup_of_an_unreadable_archive_still_succeeds(tmp_path):
    from devc_tasks.core.paths import STATE_DIR as DIR
    from devc_tasks.shell.state.backup import backup

    result = backup(fake_sc({DIR: (iter([b"not a tar at all" * 64]), {})}), tmp_path / "b.tar")
    assert result.path.read_bytes() == b"not a tar at all" * 64
    assert not result.restorable and result.files == 0 and not result.has_identity
    assert any("restore would refuse" in w for w in result.warnings)
    assert any("cannot be read back" in w for w in result.warnings)


def test_backup_never_holds_a_big_archive_in_memory(tmp_path, monkeypatch):
    import tracemalloc

    from devc_tasks.shell.state import backup as backup_mod

    monkeypatch.setattr(backup_mod, "DEFAULT_MAX_SIZE", 1024 * 1024)
    big = 24 * 1024 * 1024

    def chunks():
        head = tarfile.TarInfo("tailscale")
        head.type = tarfile.DIRTYPE
        yield head.tobuf()
        f = tarfile.TarInfo("tailscale/tailscaled.state")
        f.size = len(STATE)
        yield f.tobuf() + STATE + b"\0" * (512 - len(STATE))
        f = tarfile.TarInfo("tailscale/big")
        f.size = big
        yield f.tobuf()
        block = b"\0" * (1024 * 1024)
        for _ in range(big // len(block)):
            yield block
        yield b"\0" * 1024

    tracemalloc.start()
    try:
        result = backup_mod.backup(fake_sc({STATE_DIR: (chunks(), {})}), tmp_path / "big.tar")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.size > big and result.files == 2 and result.has_identity and not result.restorable
    assert any("--max-size" in w for w in result.warnings)
    assert peak < 8 * 1024 * 1024


class FakeNode:
    started: list = []

    def __init__(self, executor, on_step=None):
        pass

    def probe(self):
        from types import SimpleNamespace

        return SimpleNamespace(daemon_pid=42, status=None, tailscaled="/usr/sbin/tailscaled", tailscale="/usr/bin/tailscale", has_identity=True)

    def stop_daemon(self):
        pass

    def start_daemon(self, argv, *, cli, wait):
        FakeNode.started.append(argv)


class SwapFails:
    """A running container's executor whose stop-and-swap exec fails after stopping tailscaled,
    then answers the clean-up with ``after`` (an ExecResult, or an exception to raise)."""

    def __init__(self, swap=None, after=None):
        from devc_tasks.shell.executors import ExecResult

        self.calls = []
        self.swap = swap or ExecResult(1, "devc-stopped\n", "rm: cannot remove '/var/lib/tailscale/certs': Device or resource busy\n")
        self.after = after or ExecResult(0, "", "")

    def run(self, argv, *, stdin=None, timeout=30.0):
        from devc_tasks.shell.executors import ExecResult

        self.calls.append(list(argv))
        script = argv[2] if len(argv) > 2 and argv[:2] == ["sh", "-c"] else ""
        for marker, answer in (("phase=1", self.swap), ("devc-kept", self.after)):
            if marker in script:
                if isinstance(answer, Exception):
                    raise answer
                return answer
        return ExecResult(0, "", "")


def _lost():
    from devc_tasks.core.errors import EngineUnreachable

    return EngineUnreachable("lost the connection to the Docker engine during `sh`: reset")


def _result(code, out="", err=""):
    from devc_tasks.shell.executors import ExecResult

    return ExecResult(code, out, err)


KEPT_OLD = "/var/lib/tailscale/.devc-restore-x.old"


@pytest.mark.parametrize(
    "swap, after, words, restarted",
    [
        (None, None, ["Device or resource busy"], True),
        (_result(4, f"devc-stopped\ndevc-kept={KEPT_OLD}\n", "could not all be put back"), _result(0, f"devc-kept={KEPT_OLD}\n"),
         ["could not all be put back", f"kept in {KEPT_OLD}", "not deleted", "not started again"], False),
        (_result(137, "devc-stopped\n"), _result(0, f"devc-kept={KEPT_OLD}\n"), ["exit 137", f"kept in {KEPT_OLD}", "not started again"], False),
        (_lost(), _result(0, f"devc-kept={KEPT_OLD}\n"), ["lost the connection", f"kept in {KEPT_OLD}"], False),
        (_lost(), _lost(), ["lost the connection", "could not be asked", ".devc-restore-*.old", "not deleted"], False),
        (_result(1, "devc-stopped\n", "busy"), _result(75, "", "another command still holds"), ["could not be asked", "not deleted"], False),
    ],
    ids=["put-back-worked", "put-back-failed", "swap-killed-half-way", "exec-dropped", "container-unreachable-after", "clean-up-locked-out"],
)
def test_a_failed_restore_never_deletes_the_previous_state(monkeypatch, swap, after, words, restarted):
    """After a failed swap only the staged copy is removed; ``.old`` (the previous identity set
    aside) is removed only when the container says it is empty, else kept and named."""
    from devc_tasks.core.errors import StateVolumeError
    from devc_tasks.shell import node as tailscale_mod
    from devc_tasks.shell.state import restore as state_mod

    monkeypatch.setattr(tailscale_mod, "Node", FakeNode)
    monkeypatch.setattr(state_mod, "put_archive", lambda sc, path, data: None)
    FakeNode.started = []
    executor = SwapFails(swap, after)
    checked = validate_archive(tar(*GOOD_TOP))
    with pytest.raises(StateVolumeError if not restarted else Exception) as e:
        state_mod.restore(fake_sc(status="running", executor=executor), checked, stop_daemon=True)
    message = e.value.message
    for w in words:
        assert w in message, (w, message)
    if not restarted:
        assert e.value.exit_code == 30
    stage = next(a[-1] for a in executor.calls if a[:2] == ["sh", "-c"] and "mkdir" in a[2] and "phase=1" not in a[2])
    assert ".devc-restore-" in stage
    clean = [a for a in executor.calls if a[:2] == ["sh", "-c"] and "devc-kept" in a[2] and "phase=1" not in a[2]]
    assert len(clean) == 1 and clean[0][-1] == stage and "flock" in clean[0][2]
    assert not any(f"{stage}.old" in " ".join(a) for a in executor.calls), "nothing names .old to delete it"
    assert 'rm -rf "$T"' in clean[0][2] and 'rm -rf "$O"' not in clean[0][2] and 'rmdir "$O"' in clean[0][2]
    daemon = [("/usr/sbin/tailscaled", "--state=/var/lib/tailscale/tailscaled.state", "--socket=/var/run/tailscale/tailscaled.sock")]
    assert FakeNode.started == (daemon if restarted else [])


def test_a_restore_that_fails_before_the_swap_names_nothing_kept(monkeypatch):
    from devc_tasks.shell import node as tailscale_mod
    from devc_tasks.shell.state import restore as state_mod

    def put_fails(sc, path, data):
        raise _lost()

    monkeypatch.setattr(tailscale_mod, "Node", FakeNode)
    monkeypatch.setattr(state_mod, "put_archive", put_fails)
    FakeNode.started = []
    executor = SwapFails(after=_lost())
    with pytest.raises(Exception, match="lost the connection") as e:
        state_mod.restore(fake_sc(status="running", executor=executor), validate_archive(tar(*GOOD_TOP)), stop_daemon=True)
    assert "kept" not in e.value.message and e.value.exit_code == 10
    assert not [a for a in executor.calls if "phase=1" in " ".join(a)]


def test_restore_and_reset_stop_the_daemon_under_ups_lock(monkeypatch):
    from devc_tasks.core import scripts
    from devc_tasks.shell import node as tailscale_mod
    from devc_tasks.shell.state import reset as reset_mod
    from devc_tasks.shell.state import restore as state_mod

    monkeypatch.setattr(tailscale_mod, "Node", FakeNode)
    monkeypatch.setattr(state_mod, "put_archive", lambda sc, path, data: None)
    monkeypatch.setattr(state_mod, "_settle", lambda node, wait: None)
    FakeNode.started = []

    class Recorder:
        def __init__(self):
            self.scripts = []

        def run(self, argv, *, stdin=None, timeout=30.0):
            from devc_tasks.shell.executors import ExecResult

            script = argv[2] if argv[:2] == ["sh", "-c"] else " ".join(argv)
            self.scripts.append(script)
            out = "files\n" if "echo missing" in script else "devc-stopped\nremoved=3\n" if "removed=" in script else "devc-stopped\n" if "phase=1" in script else ""
            return ExecResult(0, out, "")

    rec = Recorder()
    result = state_mod.restore(fake_sc(status="running", executor=rec), validate_archive(tar(*GOOD_TOP)), stop_daemon=True)
    assert result.daemon_restarted and FakeNode.started
    swap = [s for s in rec.scripts if "phase=1" in s]
    assert len(swap) == 1 and swap[0].startswith(scripts.SH_LIB) and scripts.LOCK in swap[0] and "stop_tailscaled ||" in swap[0]
    assert swap[0].index("flock") < swap[0].index("stop_tailscaled ||") < swap[0].index("rmdir")

    rec = Recorder()
    result = reset_mod.reset(fake_sc(status="running", executor=rec), backup_to=None, logout=False)
    empty = [s for s in rec.scripts if "removed=" in s]
    assert len(empty) == 1 and scripts.LOCK in empty[0]
    assert empty[0].index("flock") < empty[0].index("stop_tailscaled ||") < empty[0].index("rm -rf")
    assert result.steps == ("stopped tailscaled", "emptied /var/lib/tailscale") and result.removed == 3
