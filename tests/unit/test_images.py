"""Test images are tagged by a hash of their inputs: rebuilt when, and only when, those change."""

import shutil

import pytest

from tests.support import images

pytestmark = pytest.mark.unit


def test_tags_follow_the_inputs(tmp_path, monkeypatch):
    copy = tmp_path / "standin"
    shutil.copytree(images.STANDIN_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    base, standin = images.base_tag(), images.standin_tag()
    monkeypatch.setattr(images, "STANDIN_DIR", copy)
    assert (images.base_tag(), images.standin_tag()) == (base, standin)  # same bytes, same tags
    (copy / "tailscale").write_bytes((copy / "tailscale").read_bytes() + b"\n# changed\n")
    assert images.base_tag() == base
    assert images.standin_tag() != standin  # a changed stand-in is a new image
    monkeypatch.setattr(images, "PACKAGES", (*images.PACKAGES, "curl"))
    assert images.base_tag() != base  # a changed recipe is a new base
