"""Test images, built locally (no registry is reachable) and at most once per machine.

The base is a Debian bookworm root filesystem from debootstrap, imported with
``docker import``; it doubles as the "tailscale not installed" variant. The
stand-in image adds ``tests/standin`` where the real binaries go. Both tags
carry a hash of their inputs, so an unchanged recipe reuses what is there and
a changed stand-in gives a new tag.

The BusyBox image is the stand-in image with an Alpine-like userland on top:
``/bin/sh`` is BusyBox ash and every BusyBox applet (timeout, head, cut, find,
sleep, ...) replaces the Debian program of the same name. Debian's
busybox-static (installed on the host by .ci/provision.sh, copied in from
there) has no ``flock`` applet, so ``tests/support/busybox/flock`` stands in for
it, accepting exactly BusyBox's options.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import subprocess
import tarfile
from pathlib import Path

REPO = "devc-tasks-test"
SUITE = "bookworm"
PACKAGES = ("python3", "procps", "bash", "util-linux", "iproute2")
RECIPE_VERSION = "1"
CACHE = Path(os.environ.get("DEVC_TEST_CACHE", "/var/cache/devc-tasks-test"))
STANDIN_DIR = Path(__file__).resolve().parent.parent / "standin"
# where each stand-in file goes in the image
STANDIN_FILES = {
    "tailscale": "usr/local/bin/tailscale",
    "tailscaled": "usr/local/sbin/tailscaled",
    "_standin_common.py": "usr/local/lib/tailscale-standin/_standin_common.py",
}
BUSYBOX = Path("/bin/busybox")
BUSYBOX_DIR = Path(__file__).resolve().parent / "busybox"
# applets left out: Debian's package tools, and what would take over the machine's boot
BUSYBOX_SKIP = ("busybox", "dpkg", "dpkg-deb", "rpm", "rpm2cpio", "init", "linuxrc")
# run in the new image with BusyBox itself: each applet replaces the program of the
# same name (in /usr/bin and /usr/sbin; /bin and /sbin link there), or is added to
# /usr/bin; bash and dash go, as on Alpine
_BUSYBOX_INSTALL = r"""
set -e
B=/usr/bin/busybox
for a in $($B --list); do
  case " %(skip)s " in *" $a "*) continue ;; esac
  placed=
  for d in /usr/bin /usr/sbin; do
    if [ -e "$d/$a" ] || [ -L "$d/$a" ]; then $B rm -f "$d/$a"; $B ln -s $B "$d/$a"; placed=1; fi
  done
  [ -n "$placed" ] || $B ln -s $B "/usr/bin/$a"
done
$B rm -f /usr/bin/bash /usr/bin/dash /usr/bin/rbash
$B rm -f /usr/bin/flock; $B cp /tmp/devc-busybox/flock /usr/bin/flock; $B chmod 0755 /usr/bin/flock
$B rm -rf /tmp/devc-busybox
"""
IMAGE_CHANGES = [
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    'CMD ["sleep", "infinity"]',
]


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "big"))
        h.update(p)
    return h.hexdigest()[:12]


def base_tag() -> str:
    recipe = f"{RECIPE_VERSION}|{SUITE}|minbase|{','.join(PACKAGES)}|{IMAGE_CHANGES}"
    return f"{REPO}:base-{_digest(recipe.encode())}"


def _standin_payload() -> dict[str, bytes]:
    return {dest: (STANDIN_DIR / src).read_bytes() for src, dest in STANDIN_FILES.items() if (STANDIN_DIR / src).exists()}


def standin_tag() -> str:
    payload = _standin_payload()
    parts = [base_tag().encode()] + [k.encode() + b"\0" + v for k, v in sorted(payload.items())]
    return f"{REPO}:standin-{_digest(*parts)}"


def busybox_tag() -> str:
    if not BUSYBOX.exists():
        raise RuntimeError(f"{BUSYBOX} is missing: install Debian's busybox-static (.ci/provision.sh does)")
    parts = [standin_tag().encode(), BUSYBOX.read_bytes(), (BUSYBOX_DIR / "flock").read_bytes(), _BUSYBOX_INSTALL.encode(), " ".join(BUSYBOX_SKIP).encode()]
    return f"{REPO}:busybox-{_digest(*parts)}"


def _has_image(client, tag: str) -> bool:
    import docker.errors

    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def _build_base(client, tag: str) -> None:
    rootfs = CACHE / f"rootfs-{tag.split(':', 1)[1]}"
    done = rootfs / ".devc-complete"
    if not done.exists():
        subprocess.run(["rm", "-rf", str(rootfs)], check=True)
        rootfs.mkdir(parents=True)
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(rootfs)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        # apt caches are dead weight in a test image
        subprocess.run(["sh", "-c", f"rm -rf {rootfs}/var/cache/apt/archives/*.deb {rootfs}/var/lib/apt/lists/*"], check=True)
        done.touch()
    cmd = ["docker", "import"]
    for change in IMAGE_CHANGES:
        cmd += ["--change", change]
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "--exclude=./.devc-complete", "-c", "."], stdout=subprocess.PIPE)
    subprocess.run(cmd + ["-", tag], stdin=tar.stdout, check=True, stdout=subprocess.DEVNULL)
    tar.wait()


def _build_standin(client, tag: str, base: str) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for dest, data in sorted(_standin_payload().items()):
            info = tarfile.TarInfo(dest)
            info.size = len(data)
            info.mode = 0o644 if dest.endswith(".py") else 0o755
            tf.addfile(info, io.BytesIO(data))
    c = client.containers.create(base, command=["true"], network_mode="none")
    try:
        c.put_archive("/", buf.getvalue())
        c.commit(repository=tag.split(":")[0], tag=tag.split(":")[1], changes=IMAGE_CHANGES)
    finally:
        c.remove(force=True)


def _build_busybox(client, tag: str, standin: str) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for dest, data, mode in (
            ("usr/bin/busybox", BUSYBOX.read_bytes(), 0o755),
            ("tmp/devc-busybox/flock", (BUSYBOX_DIR / "flock").read_bytes(), 0o755),
        ):
            info = tarfile.TarInfo(dest)
            info.size, info.mode = len(data), mode
            tf.addfile(info, io.BytesIO(data))
    script = _BUSYBOX_INSTALL % {"skip": " ".join(BUSYBOX_SKIP)}
    c = client.containers.create(standin, command=["/usr/bin/busybox", "sh", "-c", script], network_mode="none")
    try:
        c.put_archive("/", buf.getvalue())
        c.start()
        code = c.wait(timeout=120)["StatusCode"]
        if code != 0:
            raise RuntimeError(f"installing BusyBox into {tag} failed (exit {code}): {c.logs().decode(errors='replace')}")
        c.commit(repository=tag.split(":")[0], tag=tag.split(":")[1], changes=IMAGE_CHANGES)
    finally:
        c.remove(force=True)


def ensure_busybox_image(client) -> str:
    """The stand-in image with a BusyBox userland, built when missing."""
    standin, _ = ensure_images(client)
    tag = busybox_tag()
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _has_image(client, tag):
            _build_busybox(client, tag, standin)
    return tag


def ensure_images(client) -> tuple[str, str]:
    """Return (standin image, no-tailscale image), building what is missing."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        base = base_tag()
        if not _has_image(client, base):
            _build_base(client, base)
        standin = standin_tag()
        if not _has_image(client, standin):
            _build_standin(client, standin, base)
    return standin, base


if __name__ == "__main__":
    import docker

    client = docker.from_env()
    print(*ensure_images(client), ensure_busybox_image(client))
