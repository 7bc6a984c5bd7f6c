"""Test images, built locally (no registry is reachable) and at most once per machine.

The base is a Debian bookworm root filesystem from debootstrap, imported with
``docker import``; it doubles as the "tailscale not installed" variant. The
stand-in image adds ``tests/standin`` where the real binaries go. Both tags
carry a hash of their inputs, so an unchanged recipe reuses what is there and
a changed stand-in gives a new tag.
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

    print(*ensure_images(docker.from_env()))
