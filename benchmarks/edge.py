"""What an unsigned oversized POST costs the bot: `slackbot run --http` in its own process (default settings),
one 100 MB unsigned POST to /slack/events, then four at once while a signed `/finetune` is timed.

Measured from outside: the time until the bot answers (or the connection ends), the process's peak RSS
(VmHWM in /proc) above what it used idle, and the bytes its log grew by.
`python -m benchmarks --only edge` (`--quick`: 20 MB bodies).
"""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.ack import AppProcess, _bot
from benchmarks.common import Section, ms
from slackbot.demo import BOT_TOKEN, OPENPIPE_KEY, SIGNING_SECRET
from slackbot.sandbox.driver import SlackDriver
from slackbot.sandbox.openpipe_api import LocalOpenPipe
from slackbot.sandbox.slack_api import LocalSlack

CHUNK = 1024 * 1024


def _memory_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def _unsigned_post(port: int, size: int) -> tuple[str, float]:
    """Send `size` bytes of form body with no signature; the status line (or how it ended) and the seconds."""
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        sock.sendall(
            b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: %d\r\n\r\ntext=" % (size + 5)
        )
        chunk = b"a" * CHUNK
        try:
            for _ in range(size // CHUNK):
                sock.sendall(chunk)
            line = sock.makefile("rb").readline()
        except (BrokenPipeError, ConnectionResetError):
            # The bot answered early and closed: its answer is in the socket's buffer if it was not reset.
            try:
                line = sock.makefile("rb").readline()
            except OSError:
                line = b""
        status = line.split()[1].decode() if line.startswith(b"HTTP/") else "closed"
    return status, time.perf_counter() - started


def _scenario(bot: AppProcess, log: Path, slack: LocalSlack, size: int, senders: int) -> list[str]:
    pid = bot.pid
    idle_kb, log_before = _memory_kb(pid, "VmHWM"), log.stat().st_size
    results: list[tuple[str, float]] = []
    threads = [threading.Thread(target=lambda: results.append(_unsigned_post(bot.port, size))) for _ in range(senders)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    acks: list[float] = []
    if senders > 1:
        # Signed /finetune requests, one after another, for as long as the big bodies are being sent and handled.
        with SlackDriver(bot.url, SIGNING_SECRET, slack, timeout=60) as driver:
            while not acks or any(thread.is_alive() for thread in threads):
                t0 = time.perf_counter()
                answer = driver.slash_command("/finetune")
                acks.append(time.perf_counter() - t0 if answer.status_code == 200 else float("inf"))
                time.sleep(0.2)
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    time.sleep(0.5)  # the last log lines are flushed
    statuses = sorted({status for status, _ in results})
    slowest = max(seconds for _, seconds in results)
    grown = (_memory_kb(pid, "VmHWM") - idle_kb) / 1024
    logged = log.stat().st_size - log_before
    return [
        f"{senders} x {size // CHUNK} MB",
        "/".join(statuses),
        f"{ms(slowest)} (all done in {ms(wall)})",
        f"{grown:.1f} MB",
        f"{logged:,} B",
        f"{len(acks)}, slowest {ms(max(acks))}" if acks else "—",
    ]


def run(quick: bool) -> Section:
    size = (20 if quick else 100) * CHUNK
    section = Section(
        "Unsigned oversized POSTs to /slack/events",
        ["bodies", "answer", "time to answer", "peak RSS above idle", "log written", "signed /finetune meanwhile"],
    )
    with (
        tempfile.TemporaryDirectory(prefix="bench-edge-") as tmp,
        LocalOpenPipe(OPENPIPE_KEY) as openpipe,
        LocalSlack(bot_token=BOT_TOKEN) as slack,
    ):
        bot = _bot(Path(tmp), slack, openpipe)
        try:
            log = Path(tmp) / "bot.log"
            section.rows.append(_scenario(bot, log, slack, size, senders=1))
            section.rows.append(_scenario(bot, log, slack, size, senders=4))
        finally:
            bot.stop()
    section.notes.append(
        "peak RSS is the bot process's VmHWM; the second row's peak is above the first row's, not above idle"
    )
    return section
