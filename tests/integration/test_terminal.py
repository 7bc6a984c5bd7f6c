"""What a person sees on a terminal: colour and a spinner, unless NO_COLOR asks for plain text."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.integration.test_up import new_key

pytestmark = pytest.mark.integration
COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-9]|9[0-7])m")  # a foreground colour
HIDE_CURSOR = "\x1b[?25l"  # rich hides the cursor while a spinner runs


def on_a_terminal(args: list[str], env: dict[str, str], answer: bytes | None = None, cwd=REPO) -> tuple[int, str]:
    main, sub = pty.openpty()
    full_env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TAILSCALE_AUTHKEY")}
    full_env.update({"TERM": "xterm-256color", "COLUMNS": "100", **env})
    proc = subprocess.Popen([sys.executable, "-m", "invoke", "--search-root", str(REPO), *args], stdin=sub, stdout=sub, stderr=sub, env=full_env, cwd=cwd)
    os.close(sub)
    chunks = []
    if answer is not None:  # wait for the question, then type the answer
        while b"[y/N]" not in b"".join(chunks):
            ready, _, _ = select.select([main], [], [], 60)
            if not ready:  # a regression must fail, not hang the suite
                proc.kill()
                raise AssertionError(f"no [y/N] question within 60 s: {b''.join(chunks)!r}")
            chunks.append(os.read(main, 65536))
        os.write(main, answer)
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    return proc.wait(timeout=120), b"".join(chunks).decode(errors="replace")


def test_terminal_gets_colour_and_a_spinner(containers):
    c = containers.start()
    code, text = on_a_terminal(["tailscale.up", "--container", c.name, "--hostname", "tty"], {"TAILSCALE_AUTHKEY": new_key()})
    assert code == 0, text
    assert COLOUR.search(text) and HIDE_CURSOR in text
    assert "tty" in text and "Running" in text


def test_no_color_means_plain_text_on_a_terminal(containers):
    c = containers.start()
    code, text = on_a_terminal(["tailscale.up", "--container", c.name, "--hostname", "plain"], {"TAILSCALE_AUTHKEY": new_key(), "NO_COLOR": "1"})
    assert code == 0, text
    assert not COLOUR.search(text) and HIDE_CURSOR not in text
    assert "Connecting" in text and "plain" in text and "Running" in text


@pytest.mark.parametrize("answer, code", [(b"n\n", 1), (b"y\n", 0)], ids=["no", "yes"])
def test_reset_asks_on_a_terminal(containers, tmp_path, answer, code):
    c = containers.start()
    code_up, _ = on_a_terminal(["tailscale.up", "--container", c.name, "--hostname", "asked"], {"TAILSCALE_AUTHKEY": new_key(), "NO_COLOR": "1"})
    assert code_up == 0
    before = c.exec_run(["ls", "/var/lib/tailscale"]).output.decode().split()
    got, text = on_a_terminal(["tailscale.state.reset", "--container", c.name], {"NO_COLOR": "1"}, answer=answer, cwd=tmp_path)
    assert got == code, text
    after = c.exec_run(["ls", "/var/lib/tailscale"]).output.decode().split()
    if code:
        assert "nothing was changed" in text and after == before
    else:
        assert "tailscaled.state" in before and "tailscaled.state" not in after
        assert list(tmp_path.glob("tailscale-state-*.tar"))  # the backup it took first
