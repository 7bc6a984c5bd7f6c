"""The state file's content decides the identity: hostile content is "broken", never a crash."""

import base64

import pytest

from devc_tasks.core.identity import state_identity, state_identity_of_bytes
from devc_tasks.core.probe import parse_probe

pytestmark = pytest.mark.unit

DEEP = "[" * 100_000  # tailscaled's JSON decoder refuses it (max depth 10000): invalid JSON
CUR = base64.b64encode(b"a1b2").decode()


@pytest.mark.parametrize(
    ("skeleton", "current", "profiles", "want"),
    [
        (DEEP, None, None, "broken"),
        ('{"a": ' * 100_000, None, None, "broken"),
        ('{"_current-profile": "", "_profiles": "", "profile-a1b2": ""}', "a1b2", DEEP, "broken"),
        ('{"_current-profile": "", "_profiles": "", "profile-a1b2": ""}', "a1b2", '{"a1b2": {}}', "identity"),
    ],
    ids=["deep-array", "deep-object", "deep-profiles", "identity"],
)
def test_deeply_nested_state_is_broken_not_a_crash(skeleton, current, profiles, want):
    assert state_identity(skeleton, current, profiles) == want


@pytest.mark.parametrize(
    ("content", "want"),
    [
        (DEEP.encode(), "broken"),
        (('{"_current-profile": "%s", "_profiles": "%s", "profile-a1b2": ""}' % (CUR, base64.b64encode(DEEP.encode()).decode())).encode(), "broken"),
    ],
    ids=["deep-file", "deep-profiles-value"],
)
def test_a_deeply_nested_backup_is_broken_not_a_crash(content, want):
    assert state_identity_of_bytes(content) == want


def test_the_probe_of_a_deeply_nested_state_file_reports_it_broken():
    text = "\n".join(["devc-probe=1", "tun=1", "tailscale=/usr/bin/tailscale", "state=1", "--- state", DEEP, "", "--- end", ""])
    assert parse_probe(text).state_broken
