"""A real terminal for `cinit watch`: a detached tmux session whose screen tests capture."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def tmux_problem() -> str | None:
    """Why the terminal tests cannot run here, or None."""
    if shutil.which("tmux") is None:
        return "tmux is not installed (apt-get install tmux; .ci/run does)"
    return None


class Terminal:
    """`command` running in a tmux session `width` x `height`, on its own tmux server
    (socket in `base`), so tests never touch a user's sessions. After the command ends
    the shell writes its status to a file and waits (bash, which survives a Ctrl-C its
    child handled, where dash would die with it)."""

    def __init__(
        self,
        base: Path,
        command: Sequence[str],
        env: Mapping[str, str],
        width: int = 160,
        height: int = 40,
    ) -> None:
        base.mkdir(parents=True, exist_ok=True)
        self.socket = str(base / "tmux.sock")
        self.status_file = base / "exit-status"
        line = " ".join(shlex.quote(word) for word in command)
        script = f"{line}; echo $? > {shlex.quote(str(self.status_file))}; sleep 600"
        environ = {**os.environ, **env}
        environ.pop("TMUX", None)
        subprocess.run(
            [
                "tmux",
                "-S",
                self.socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-x",
                str(width),
                "-y",
                str(height),
                "bash",
                "-c",
                script,
            ],
            check=True,
            env=environ,
            timeout=10,
        )

    def screen(self, colours: bool = False) -> str:
        """What the terminal shows now (with SGR colour sequences when `colours`)."""
        done = subprocess.run(
            ["tmux", "-S", self.socket, "capture-pane", "-p", *(["-e"] if colours else [])],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return done.stdout

    def wait_screen(self, *needles: str, timeout: float = 15.0) -> str:
        """The screen once it shows every one of `needles`; fails with the last screen."""
        deadline = time.monotonic() + timeout
        while True:
            shown = self.screen()
            if all(needle in shown for needle in needles):
                return shown
            if time.monotonic() > deadline:
                raise AssertionError(f"screen never showed {needles!r}; last screen:\n{shown}")
            time.sleep(0.1)

    def line_with(self, needle: str) -> str:
        """The first screen line containing `needle` ('' if none)."""
        return next((line for line in self.screen().splitlines() if needle in line), "")

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "-S", self.socket, "send-keys", *keys], check=True, timeout=10)

    def exit_status(self, timeout: float = 10.0) -> int:
        """The command's exit status, once it has ended."""
        deadline = time.monotonic() + timeout
        while not self.status_file.exists() or not self.status_file.read_text().strip():
            if time.monotonic() > deadline:
                raise AssertionError(f"command still running; screen:\n{self.screen()}")
            time.sleep(0.05)
        return int(self.status_file.read_text())

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True, timeout=10)
