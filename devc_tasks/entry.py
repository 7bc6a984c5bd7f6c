"""The `devc-tasks` console script's first step: what only prints comes from a cache.

`devc-tasks --help`, `--list`, `--version` and a task's `--help` print text that
depends only on the installed code, the interpreter (its version; its flags: `-OO`
drops the docstrings that are the help), the arguments, the terminal's width and
Invoke's user and system configuration. Importing Invoke to print it again costs
more than everything else (150-200 ms on a 2-core machine; a whole answer from the
cache takes about 45 ms there), so the full program records each such answer under
a key made of exactly those inputs, and the next identical call prints it without
importing Invoke. Anything else -- every task, `--complete` (completions follow
the project's configuration), an answer that wrote to stderr or did not exit 0 --
runs the full program unrecorded. A changed file (ours or Invoke's) changes the
key, so a stale answer is never printed; an unusable cache folder only costs the
speed. `DEVC_TASKS_NO_CACHE=1` turns it off.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["main", "answer_key", "cache_dir"]

_CONFIG_FILES = [f"{base}.{ext}" for base in ("/etc/invoke", "~/.invoke") for ext in ("yaml", "yml", "json", "py")]
_KEEP = 64  # answers kept; the oldest go first
# finders that never find invoke: Python's own, and setuptools' distutils shim (every venv)
_PLAIN_FINDERS = {"_frozen_importlib", "_frozen_importlib_external", "_distutils_hack"}
_ASKS = {"-h", "--help", "-l", "--list", "-V", "--version"}  # the flags an answer needs


def cache_dir(environ: dict[str, str] | os._Environ[str] = os.environ) -> Path:
    """$XDG_CACHE_HOME's folder, else ~/.cache's; a relative $XDG_CACHE_HOME is invalid (the XDG
    spec): read from the current folder, it would take answers from any repository one stands in."""
    base = environ.get("XDG_CACHE_HOME", "")
    return Path(base if os.path.isabs(base) else os.path.expanduser("~/.cache")) / "devc-tasks" / "answers"


def _ours(st: os.stat_result) -> bool:
    """Only this user could have written it: what someone else wrote (a cache folder on a
    shared machine) may say anything, escape sequences included, and is not printed."""
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _private(folder: Path) -> bool:
    """The folder is ours, no link (through one, the pruning would delete another folder's files)."""
    st = os.lstat(folder)
    return stat.S_ISDIR(st.st_mode) and _ours(st)


def _ours_to_make(folder: Path) -> bool:
    """The nearest folder there is on the way to ``folder`` is this user's: `sudo -E
    devc-tasks --help` (root with a user's HOME) would create ~/.cache owned by root, and
    the user's own tools could no longer write to it."""
    for there in (folder, *folder.parents):
        try:
            return os.stat(there).st_uid == os.geteuid()
        except FileNotFoundError:
            continue
    return False


def _tree(package: Path) -> list[tuple[str, tuple[int, int] | None]]:
    """Every file of a package by path, change time and size: any edit or reinstall changes
    it (a link to nowhere, such as an editor's lock file, counts as there without a stat)."""
    found = []
    for folder, dirs, files in os.walk(package):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            path = os.path.join(folder, name)
            found.append((path, _stat(path)))
    return found


def _invoke_dir() -> Path | None:
    """The folder `import invoke` will load. With only plain finders and folders on
    sys.path, the first folder that holds it (a stat or two); otherwise (an editable
    install's finder, a zip on the path) Python's own lookup, which costs a few ms more."""
    plain = all(getattr(f, "__module__", "") in _PLAIN_FINDERS for f in sys.meta_path)
    for entry in sys.path if plain else ():
        if os.path.isfile(entry or "."):  # a zip: its invoke would be found there, not below
            break
        candidate = Path(entry or ".") / "invoke"
        if (candidate / "__init__.py").is_file():
            return candidate
    else:
        if plain:
            return None
    import importlib.util

    spec = importlib.util.find_spec("invoke")
    origin = spec.origin if spec is not None else None
    return Path(origin).parent if origin and os.path.isfile(origin) else None


def _stat(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(os.path.expanduser(path))
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def answer_key(argv: list[str]) -> str | None:
    """The key of the answer to ``argv``, or None when there is none to look up: no flag
    that asks for one, no stdout, no cache, a runtime config file (`-f`: its content would be an
    input), a word that may be a key."""
    if sys.stdout is None or not any(a in _ASKS or a.startswith(("--help=", "--list=")) for a in argv):
        return None  # a task run, or no stdout (`>&-`: print does nothing): no answer to look up
    from devc_tasks.core.redaction import redact_known_forms as redact

    if os.environ.get("DEVC_TASKS_NO_CACHE") or any(a in ("-f", "--config", "--complete") or a.startswith(("-f", "--config=")) for a in argv):
        return None  # --complete: completions follow the project's configuration
    if any(redact(a) != a for a in argv):
        return None
    invoke = _invoke_dir()
    if invoke is None:
        return None
    try:
        width = os.get_terminal_size(sys.stdout.fileno()).columns if sys.stdout.isatty() else None  # Invoke wraps to it
    except (OSError, ValueError):
        width = None
    import hashlib

    inputs = (
        argv, sys.version, sys.flags, width,  # sys.flags: -OO strips the docstrings, which are the help
        sorted((k, v) for k, v in os.environ.items() if k.startswith("INVOKE_")),
        [(f, _stat(f)) for f in _CONFIG_FILES],
        _tree(Path(__file__).parent), _tree(invoke),
    )
    return hashlib.sha256(repr(inputs).encode()).hexdigest()


def _lookup(key: str) -> str | None:
    """The recorded answer; none when it is empty (a crash after the rename can leave the
    file without its bytes), unreadable, or not only ours."""
    folder = cache_dir()
    try:
        if not _private(folder):
            return None
        with open(os.open(folder / key, os.O_RDONLY | os.O_NOFOLLOW), encoding="utf-8") as f:
            st = os.fstat(f.fileno())
            text = f.read() if stat.S_ISREG(st.st_mode) and _ours(st) else ""
    except (OSError, UnicodeDecodeError):
        return None
    return text or None


def _is_answer(name: str) -> bool:
    """A name this module writes: an answer's key, or one being written."""
    return name.startswith(".new-") or (len(name) == 64 and all(c in "0123456789abcdef" for c in name))


def _record(key: str) -> Callable[[str], None]:
    def store(text: str) -> None:
        import tempfile

        folder = cache_dir()
        try:
            if not _ours_to_make(folder):
                return
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not _private(folder):
                return
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".new-")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(text)
                os.replace(tmp, folder / key)
            finally:
                Path(tmp).unlink(missing_ok=True)  # a full disk leaves no half-written file behind
            kept = sorted((p for p in folder.iterdir() if _is_answer(p.name)), key=lambda p: p.stat().st_mtime_ns, reverse=True)
            for old in kept[_KEEP:]:
                old.unlink(missing_ok=True)
        except OSError:
            pass  # a read-only or full disk costs the speed, nothing else

    return store


def main() -> None:
    from devc_tasks.shell.pipes import fill_closed_streams, reader_gone

    fill_closed_streams()
    try:
        _answer(sys.argv[1:])
    except BrokenPipeError:  # `devc-tasks --list | head -1`: end quietly (a task's own boundary does the same)
        sys.exit(reader_gone())


def _answer(argv: list[str]) -> None:
    if argv == ["--just-module"]:  # the just module shipped beside this file: `mod tailscale '<path>'`
        print(Path(__file__).with_name("tailscale.just"))
        return
    key = answer_key(argv)
    if key is not None:
        text = _lookup(key)
        if text is not None:
            sys.stdout.write(text)
            sys.stdout.flush()
            return
    from devc_tasks.program import main as run

    run(record=_record(key) if key is not None else None)
