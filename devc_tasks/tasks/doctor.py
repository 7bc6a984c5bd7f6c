"""The doctor task: every pre-flight check, one table row each, with its fix."""

from __future__ import annotations

from typing import Any

from invoke import task
from invoke.exceptions import Exit

from devc_tasks.tasks.common import _help, _output, boundary
from devc_tasks.tasks.fleet import LABEL_HELP

_MARKS = {"pass": "pass", "warn": "WARN", "fail": "FAIL", "skip": "skip"}



@task(
    auto_shortflags=False,
    help=_help(
        hostname="The node name you mean to use, as for up (default: what up would derive).",
        userspace="You run up --userspace: a missing TUN device or capability is a warning, not a failure.",
        all="Every devcontainer on the engine, concurrently, one row each (its failed checks); one that fails or hangs is an error row.",
        timeout="With --all: seconds each container may take before its row is an error (default 20).",
        label=LABEL_HELP,
    )
)
def doctor(c, hostname=None, userspace=False, all=False, timeout=None, label=None, container=None, workspace=None, host=None, context=None, local=False, json=False):
    """Check everything Tailscale needs in the devcontainer; exit 40 when something blocks `up`."""
    out = _output(json)
    with boundary(out):
        if all:
            from devc_tasks.tasks.common import _seconds
            from devc_tasks.tasks.node_all import ALL_TIMEOUT

            passed = _doctor_all(out, host, context, hostname=hostname, userspace=userspace, timeout=_seconds(timeout or ALL_TIMEOUT, "--timeout"), label=label)
            if not passed:
                from devc_tasks.core.errors import ChecksFailed

                raise Exit("doctor --all: something blocks `up` in at least one devcontainer", code=ChecksFailed.exit_code)
            return
        from devc_tasks import api
        from devc_tasks.core.errors import ChecksFailed

        report = api.doctor(container=container, workspace=workspace, host=host, context=context, local=local, hostname=hostname, userspace=userspace)
        checks, passed = report.checks, report.ok
        doc: dict[str, Any] = {"ok": passed, "checks": [ch.to_dict() for ch in checks]}
        rows = [(ch.title, _MARKS[ch.status], ch.seen, ch.fix or "") for ch in checks]
        title = "devc-tasks doctor: " + ("nothing blocks `up`" if passed else "something blocks `up`")
        out.emit(doc, out.table(title, ["Check", "Result", "Seen", "Fix"], rows), kind="doctor")
    if not passed:
        failed = ", ".join(ch.title for ch in checks if ch.status == "fail")
        raise Exit(f"doctor: failed: {failed}", code=ChecksFailed.exit_code)


def _doctor_all(out: Any, host: str | None, context: str | None, *, hostname: str | None, userspace: bool, timeout: float, label: str | None = None) -> bool:
    """The checks in every devcontainer at once, one row each; True when nothing blocks `up` anywhere."""
    from devc_tasks.core.doctor_checks import run_checks
    from devc_tasks.core.doctor_facts import ok
    from devc_tasks.shell.doctor_gather import gather
    from devc_tasks.shell.target import Selectors
    from devc_tasks.tasks.fleet import list_devcontainers, run_each
    from devc_tasks.tasks.node_all import all_doc

    _, infos = list_devcontainers(host, context, label)

    def one(info: Any) -> Any:
        facts = gather(Selectors(container=info.id, host=host, context=context), hostname=hostname, userspace=userspace)
        return run_checks(facts)

    docs: list[dict[str, Any]] = []
    rows: list[tuple[str, ...]] = []
    for row in run_each(infos, one, timeout=timeout, what="the checks"):
        if row.error is not None:
            docs.append(all_doc(row.item, ok=False, error=row.error.message, error_kind=row.error.kind))
            rows.append((row.item.name, "ERROR", row.error.message))
            continue
        checks: Any = row.value
        passed = ok(checks)
        failed = [ch for ch in checks if ch.status == "fail"]
        warned = [ch for ch in checks if ch.status == "warn"]
        docs.append(all_doc(row.item, ok=passed, checks=[ch.to_dict() for ch in checks]))
        seen = "; ".join([f"FAIL {ch.title}" for ch in failed] + [f"WARN {ch.title}" for ch in warned]) or "nothing blocks `up`"
        rows.append((row.item.name, "pass" if passed else "FAIL", seen))
    all_ok = all(d["ok"] for d in docs)
    title = "devc-tasks doctor --all: " + ("nothing blocks `up`" if all_ok else "something blocks `up`")
    out.emit({"ok": all_ok, "containers": docs}, out.table(title, ["Container", "Result", "Failed / warned checks"], rows), kind="doctor.all")
    return all_ok


TASKS = (doctor,)
