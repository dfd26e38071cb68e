"""A real terminal for ``top``: a tmux server of its own, keys sent and the screen read back."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable

from support.required import missing

from stack.procs import wait_until


class Terminal:
    """``command`` running in a detached tmux window of ``width`` x ``height``."""

    def __init__(self, command: list[str], width: int = 120, height: int = 40,
                 env: dict[str, str] | None = None):
        if shutil.which("tmux") is None:
            missing("tmux is missing: scripts/setup --tests installs it")
        self.socket = f"wf-top-{uuid.uuid4().hex[:8]}"
        self.width, self.height = width, height
        environment = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
        line = f"env {environment} {shlex.join(command)}; sleep 30"  # TERM: tmux's own
        self.tmux("new-session", "-d", "-x", str(width), "-y", str(height), "-s", "top", line)

    def tmux(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10,
                              env={**os.environ, "TMUX": ""})
        return done.stdout

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "top", *keys)

    def screen(self) -> list[str]:
        return self.tmux("capture-pane", "-p", "-t", "top").splitlines()

    def escapes(self) -> str:
        """The screen with its colours and attributes as escape sequences."""
        return self.tmux("capture-pane", "-p", "-e", "-t", "top")

    def text(self) -> str:
        return "\n".join(self.screen())

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 20) -> str:
        seen = [""]

        def check() -> bool:
            seen[0] = self.text()
            return predicate(seen[0])

        assert wait_until(check, timeout, step=0.2), seen[0]
        return seen[0]

    def resize(self, width: int, height: int) -> None:
        self.tmux("resize-window", "-t", "top", "-x", str(width), "-y", str(height))
        time.sleep(0.3)

    def alive(self) -> bool:
        return "python" in self.tmux("list-panes", "-t", "top", "-F", "#{pane_current_command}")

    def close(self) -> None:
        self.tmux("kill-server")
