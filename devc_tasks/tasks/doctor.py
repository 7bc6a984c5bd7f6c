"""The doctor task: every pre-flight check, one table row each, with its fix."""

from __future__ import annotations

from typing import Any

from invoke import task
from invoke.exceptions import Exit

from .common import _help, _output, _selectors, boundary

_MARKS = {"pass": "pass", "warn": "WARN", "fail": "FAIL", "skip": "skip"}



@task(
    auto_shortflags=False,
    help=_help(
        hostname="The node name you mean to use, as for up (default: what up would derive).",
        userspace="You run up --userspace: a missing TUN device or capability is a warning, not a failure.",
    )
)
def doctor(c, hostname=None, userspace=False, container=None, workspace=None, host=None, context=None, local=False, json=False):
    """Check everything Tailscale needs in the devcontainer; exit 40 when something blocks `up`."""
    out = _output(json)
    with boundary(out):
        from ..doctor import gather, ok, run_checks
        from ..errors import ChecksFailed

        facts = gather(_selectors(container, workspace, host, context, local), hostname=hostname, userspace=userspace)
        checks = run_checks(facts)
        passed = ok(checks)
        doc: dict[str, Any] = {"ok": passed, "checks": [ch.to_dict() for ch in checks]}
        rows = [(ch.title, _MARKS[ch.status], ch.seen, ch.fix or "") for ch in checks]
        title = "devc-tasks doctor: " + ("nothing blocks `up`" if passed else "something blocks `up`")
        out.emit(doc, out.table(title, ["Check", "Result", "Seen", "Fix"], rows))
    if not passed:
        failed = ", ".join(ch.title for ch in checks if ch.status == "fail")
        raise Exit(f"doctor: failed: {failed}", code=ChecksFailed.exit_code)


TASKS = (doctor,)
