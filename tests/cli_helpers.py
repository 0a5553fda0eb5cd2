"""Running `slackbot` as a real process, with only the settings a test gives it, and the network failures
a newcomer meets: a refused port, a host that does not resolve, a server that accepts and never answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from slackbot.settings import Settings

SETTING_NAMES = tuple(name.upper() for name in Settings.model_fields)
UNRESOLVABLE_URL = "http://nonexistent.invalid/api/"  # .invalid never resolves (RFC 6761)


def bot_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """This machine's environment without any slackbot setting, a database in tmp_path, then `settings`."""
    env = {k: v for k, v in os.environ.items() if k.upper() not in SETTING_NAMES}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'bot.db'}"
    env.update(settings)
    return env


def slackbot(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "slackbot", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def refused_url() -> str:
    """A loopback URL nothing listens on: connecting is refused at once."""
    return f"http://127.0.0.1:{free_port()}/api/"


@contextmanager
def silent_server() -> Iterator[str]:
    """A URL whose server takes the connection (the kernel's backlog) and never answers: a read timeout."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield f"http://127.0.0.1:{s.getsockname()[1]}/api/"


def assert_clean(output: str, *secrets: str) -> None:
    assert "Traceback" not in output, output
    for secret in secrets:
        assert secret not in output, f"a secret leaked: {output}"
