"""All output: rich for people (stderr for progress, stdout for results), JSON for scripts.

Nothing else in the package prints. rich is imported on first use so that
``inv --list`` stays light. With ``--json`` stdout carries exactly one JSON
document; progress and warnings still go to stderr.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

from devc_tasks.core.status import Status

__all__ = ["KINDS", "SCHEMA_VERSION", "Output", "Events", "node_doc", "spinner_once_resolved"]


def node_doc(status: Status | None) -> dict[str, Any]:
    """The node fields every report shares, from one status."""
    if status is None:
        return {"backend_state": None, "daemon_running": False}
    me = status.self
    return {
        "daemon_running": True,
        "backend_state": status.backend_state,
        "connecting": status.connecting,
        "hostname": me.host_name,
        "dns_name": me.magic_dns_name or None,
        "ips": list(status.tailscale_ips or me.tailscale_ips),
        "online": me.online,
        "node_id": me.id or None,
        "peers": status.peers,
        "health": list(status.health),
        "version": status.version,
        "tun": status.tun,
        "tailnet": status.tailnet,
    }


# The JSON contract's version (devc_tasks/schemas/*.json): an added field or kind keeps it;
# a field removed, renamed or given another type or meaning raises it.
SCHEMA_VERSION = "1"

# Every kind of document a task prints with --json (its "document" field); each has
# devc_tasks/schemas/<kind>.json.
KINDS = (
    "up", "up.dry-run", "restart", "down", "down.all", "logout", "status", "status.all", "hostname",
    "doctor", "doctor.all", "state.show", "state.backup", "state.restore", "state.reset",
    "compose.check", "compose.snippet", "compose.write", "prune", "error",
)


def _versioned(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    """Every JSON document says what it is (``document``, which names its schema file; not
    ``kind``, which compose documents already use for the configuration's kind), which contract
    it follows (``schema_version``) and which devc-tasks wrote it (``"version"`` in status is
    tailscale's)."""
    from devc_tasks import __version__

    assert kind in KINDS, kind
    return {"document": kind, "schema_version": SCHEMA_VERSION, **doc, "devc_tasks_version": __version__}


class Renderers:
    """Builders of what ``Output.emit`` prints for a human: each returns a function of a
    rich console. Our text is data, never markup."""

    def panel(self, title: str, rows: Sequence[tuple[str, str]], *, style: str = "green") -> Callable[[Any], None]:
        def render(console: Any) -> None:
            from rich.panel import Panel
            from rich.table import Table
            from rich.text import Text

            table = Table.grid(padding=(0, 2))
            table.add_column(style="bold")
            table.add_column()
            for k, v in rows:
                table.add_row(Text(k), Text(v))  # our text is data, never markup
            console.print(Panel(table, title=Text(title), title_align="left", border_style=style, expand=False))

        return render

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> Callable[[Any], None]:
        def render(console: Any) -> None:
            from rich.table import Table
            from rich.text import Text

            t = Table(title=Text(title), title_justify="left")
            for c in columns:
                t.add_column(c, overflow="fold")
            for r in rows:
                t.add_row(*(Text(cell) for cell in r))  # data, never markup
            console.print(t)

        return render

    def lines(self, text: str) -> Callable[[Any], None]:
        def render(console: Any) -> None:
            console.print(text, markup=False, highlight=False)

        return render


class Events:
    """``--events``: progress as one JSON object per line on stderr, for scripts that show
    their own. Each has ``event``, ``step``, ``elapsed_ms`` (since the task started) and
    ``container``; warnings and the final error add ``message`` (the error its ``kind``,
    ``exit_code`` and ``fix``). Redacted, like every output; thread-safe (``--all``)."""

    events = False

    def __init__(self) -> None:
        import threading
        import time

        self._t0 = time.monotonic()
        self._event_lock = threading.Lock()

    def event(self, doc: dict[str, Any]) -> None:
        import time

        from devc_tasks.core.secrets import redact

        line = {k: redact(v) if isinstance(v, str) else v for k, v in doc.items()}
        line["elapsed_ms"] = int((time.monotonic() - self._t0) * 1000)
        with self._event_lock:
            sys.stderr.write(json.dumps(line) + "\n")
            sys.stderr.flush()

    def on_event(self, ev: Any) -> None:
        """The API's ``on_event``: a JSON line with --events, else the usual progress line."""
        if self.events:
            self.event(ev.to_dict())
        elif ev.event == "warning":
            self.warn(ev.message or "")  # type: ignore[attr-defined]
        elif ev.event not in ("resolve", "probe", "done"):  # people see the steps and the result
            self.step(ev.step or "")  # type: ignore[attr-defined]

    def error_event(self, error: dict[str, Any]) -> None:
        if self.events:
            self.event({"event": "error", "step": None, "container": None, **error})


@contextmanager
def spinner_once_resolved(out: Any, text: Callable[[Any], str]) -> Iterator[Callable[[Any], None]]:
    """The ``on_event`` for a long operation: every event goes to ``out``, and a spinner
    (``text(event)``) runs from the moment the container is known until the block ends."""
    with ExitStack() as spinner:

        def on_event(ev: Any) -> None:
            out.on_event(ev)
            if ev.event == "resolve":
                spinner.enter_context(out.waiting(text(ev)))

        yield on_event


def _console(stderr: bool) -> Any:
    """A rich console, imported when something is first shown: a `--json` run that prints
    only its document never pays for it. A closed pipe ends the run through the task's
    boundary (141), where rich would exit 1 on its own."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError

    return _Console(stderr=stderr, no_color=bool(os.environ.get("NO_COLOR")), highlight=False, soft_wrap=True)


class Output(Renderers, Events):
    def __init__(self, *, json_mode: bool = False, events: bool = False) -> None:
        Events.__init__(self)
        self.json_mode = json_mode
        self.events = events
        self._err: Any = None
        self._out: Any = None

    @property
    def err(self) -> Any:
        if self._err is None:
            self._err = _console(stderr=True)
        return self._err

    @property
    def out(self) -> Any:
        if self._out is None:
            self._out = _console(stderr=False)
        return self._out

    # -- progress -------------------------------------------------------------

    def _plain_err(self, line: str) -> bool:
        """Write one progress line without rich when stderr is no terminal (rich would
        print the same text); False when rich must render it (a terminal, FORCE_COLOR)."""
        if self._err is not None or os.environ.get("FORCE_COLOR") or sys.stderr.isatty():
            return False
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
        return True

    def step(self, text: str) -> None:
        if self.events:
            from devc_tasks.core.events import event_kind

            self.event({"event": event_kind(text), "step": text, "container": None})
            return
        if self._plain_err(f"• {text}"):
            return
        self.err.print("[dim]•[/dim] ", end="", markup=True)
        self.err.print(text, markup=False)

    @contextmanager
    def waiting(self, text: str) -> Iterator[None]:
        """A spinner on a terminal; one plain line otherwise, and with NO_COLOR (plain text);
        nothing with --events (the events say it)."""
        if self.events:
            yield
        elif self._plain_err(text):
            yield
        elif self.err.is_terminal and not self.err.is_dumb_terminal and not self.err.no_color:
            with self.err.status(text):
                yield
        else:
            self.err.print(text, markup=False)
            yield

    def confirm(self, question: str) -> bool:
        """Ask on the terminal; only y/yes agrees. The question is text, not markup
        (``[y/N]`` would otherwise vanish as a tag)."""
        from rich.text import Text

        try:
            answer = self.err.input(Text(f"{question} [y/N] "))
        except EOFError:
            answer = ""
        return answer.strip().lower() in ("y", "yes")

    def warn(self, text: str) -> None:
        """Redacted: a warning may quote a path or value the user gave, which may be a key."""
        from devc_tasks.core.secrets import redact

        text = redact(text)
        if self.events:
            self.event({"event": "warning", "step": None, "container": None, "message": text})
            return
        if self._plain_err(f"warning: {text}"):
            return
        self.err.print("[yellow]warning:[/yellow] ", end="", markup=True)
        self.err.print(text, markup=False)

    # -- results --------------------------------------------------------------

    def emit(self, doc: dict[str, Any], human: Callable[[Any], None], *, kind: str) -> None:
        """The result: with --json one document of ``kind`` (see KINDS), else ``human``."""
        if self.json_mode:
            if isinstance(doc.get("warnings"), list):  # redacted as `warn` shows them
                from devc_tasks.core.secrets import redact

                doc = {**doc, "warnings": [redact(w) if isinstance(w, str) else w for w in doc["warnings"]]}
            sys.stdout.write(json.dumps(_versioned(doc, kind), indent=2, sort_keys=False) + "\n")
            sys.stdout.flush()
        else:
            human(self.out)

    def error_doc(self, error: dict[str, Any]) -> None:
        if self.json_mode:
            sys.stdout.write(json.dumps(_versioned({"ok": False, "error": error}, "error"), indent=2) + "\n")
            sys.stdout.flush()

    def name_and_details(self, name: str, details: str, rows: Sequence[tuple[str, str]]) -> Callable[[Any], None]:
        """The bare name on stdout, always (scripts capture it: ``name=$(just tailscale hostname)``);
        where it came from on stderr: a panel on a terminal, plain lines otherwise."""

        def render(console: Any) -> None:
            console.print(name, markup=False, highlight=False)
            if self.err.is_terminal:
                self.panel("hostname", rows)(self.err)
            else:
                self.err.print(details, markup=False, highlight=False)

        return render
