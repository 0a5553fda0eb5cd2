"""The HTTP edge against strangers: oversized, unsigned and malformed requests are refused before Bolt reads
them, cheaply and with one short log line; slow clients do not keep Slack's requests or /healthz waiting."""

from __future__ import annotations

import io
import json
import select
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from urllib.parse import urlencode

import httpx
import pytest

from slackbot.demo import OfflineBot

MARKER = "PAYLOAD-TEXT-7f3a"  # what the senders put in their bodies: it must never reach the log
FORM = "application/x-www-form-urlencoded"
MAX_BODY_BYTES = 1024 * 1024  # the bar: Slack's own payloads stay far below 1 MiB


def _connect(bot: OfflineBot) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", bot.server.port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _head(extra: str) -> bytes:
    return f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {FORM}\r\n{extra}\r\n".encode()


def _status(sock: socket.socket) -> int:
    """The status code of the answer, waiting at most the socket's timeout for it."""
    line = sock.makefile("rb").readline()
    assert line.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")), line
    return int(line.split()[1])


def _answered(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0)[0])


def _request_lines(stream: io.StringIO) -> list[dict[str, object]]:
    """The lines about requests: those of the bot's background work (the catalog's refresh, the tracker) apart."""
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [line for line in lines if not str(line["logger"]).startswith(_BACKGROUND)]


_BACKGROUND = ("slackbot.openpipe", "slackbot.catalog", "slackbot.jobs", "slackbot.delivery", "slackbot.runtime")


def _assert_quiet(stream: io.StringIO, requests: int) -> None:
    """At most one short line per refused request, and nothing of what was sent."""
    text = stream.getvalue()
    assert MARKER not in text
    lines = _request_lines(stream)
    assert len(lines) <= requests, lines
    assert all(len(json.dumps(line)) < 300 for line in lines), lines
    assert not any("exc" in line for line in lines), lines


def test_a_body_over_the_limit_is_refused_by_its_length_before_it_is_sent(
    bot: OfflineBot, logs: Callable[..., io.StringIO]
) -> None:
    stream = logs("DEBUG")
    with closing(_connect(bot)) as sock:
        # A 100 MB body is announced; only its first 64 kB are sent, and the answer comes without the rest.
        sock.sendall(_head(f"Content-Length: {100 * 1024 * 1024}\r\n") + MARKER.encode() * 4000)
        assert _status(sock) == 413
    with closing(_connect(bot)) as sock:
        # Just over the limit is refused too; the limit itself is allowed (then the signature decides).
        sock.sendall(_head(f"Content-Length: {MAX_BODY_BYTES + 1}\r\n"))
        assert _status(sock) == 413
    padded = json.dumps({"type": "unknown_to_the_bot", "pad": ""})
    limit = bot.driver.signed_post(padded.replace('""', '"' + "x" * (MAX_BODY_BYTES - len(padded)) + '"'), FORM)
    assert limit.status_code == 404  # signed, exactly at the limit: read, parsed, and no listener wants it
    _assert_quiet(stream, requests=3)


def test_headers_over_32_kib_are_refused(bot: OfflineBot, logs: Callable[..., io.StringIO]) -> None:
    stream = logs("DEBUG")
    with closing(_connect(bot)) as sock:
        sock.sendall(_head(f"X-Filler: {MARKER * 2500}\r\nContent-Length: 0\r\n"))
        assert _status(sock) == 431
    _assert_quiet(stream, requests=1)


def test_a_chunked_body_is_cut_off_at_the_limit(bot: OfflineBot, logs: Callable[..., io.StringIO]) -> None:
    stream = logs("DEBUG")
    chunk = (MARKER * 4096)[: 64 * 1024].encode()
    sent = 0
    with closing(_connect(bot)) as sock:
        sock.sendall(_head("Transfer-Encoding: chunked\r\n"))
        try:
            while not _answered(sock) and sent < 8 * MAX_BODY_BYTES:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
                time.sleep(0.001)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed while this client was still sending
        assert _status(sock) == 413
    assert sent <= MAX_BODY_BYTES + 16 * len(chunk)  # refused as the cap was passed, not after the whole body
    _assert_quiet(stream, requests=1)


@pytest.mark.parametrize(
    "body",
    [
        urlencode({"payload": json.dumps({"type": "block_actions", "note": MARKER * 5000})}),
        urlencode({"payload": "{bad" + MARKER}),
        urlencode({"payload": "[]", "note": MARKER}),
        json.dumps({"type": "event_callback", "note": MARKER}),
    ],
    ids=["payload", "bad-json", "list", "json"],
)
@pytest.mark.parametrize("forgery", ["no-signature", "bad-signature", "stale"])
def test_an_unsigned_request_is_refused_unread_with_one_line(
    bot: OfflineBot, logs: Callable[..., io.StringIO], body: str, forgery: str
) -> None:
    stream = logs("DEBUG")  # not even DEBUG lines (ours or Bolt's) may carry the body
    if forgery == "no-signature":
        answer = bot.driver.signed_post(body, FORM, omit_headers=True)
    elif forgery == "bad-signature":
        answer = bot.driver.signed_post(body, FORM, signature="v0=" + "0" * 64)
    else:
        answer = bot.driver.signed_post(body, FORM, timestamp=int(time.time()) - 600)
    assert answer.status_code == 401
    assert MARKER not in answer.text
    _assert_quiet(stream, requests=1)
    assert len(_request_lines(stream)) == 1  # refused requests are still seen in the log


@pytest.mark.parametrize("payload", ["{bad", "[]", "1", "null", '"text"', ""])
def test_a_signed_malformed_payload_gets_400_without_a_traceback(
    bot: OfflineBot, logs: Callable[..., io.StringIO], payload: str
) -> None:
    stream = logs("DEBUG")
    answer = bot.driver.post_form({"payload": payload})
    assert answer.status_code == 400, answer.text
    assert "Traceback" not in answer.text and "Error" not in answer.text
    assert "Traceback" not in stream.getvalue()
    edge = [line for line in _request_lines(stream) if line["logger"] == "slackbot.web"]
    assert [line["reason"] for line in edge] == ["malformed payload"]
    # The same bad bytes as JSON, and bytes that are not UTF-8, are refused the same way.
    assert bot.driver.signed_post(payload or "[", "application/json").status_code == 400
    # Bytes that are not UTF-8 cannot even be checked (slack_sdk's verifier decodes them): refused unread.
    sent = {"Content-Type": FORM, "X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=0"}
    assert httpx.post(bot.server.url, content=b"payload=\xff\xfe", headers=sent).status_code == 401
    # …and the endpoint serves the next good request as usual.
    assert bot.driver.slash_command("/finetune").status_code == 200
    assert bot.driver.wait_for_view()["title"]["text"]


@contextmanager
def _slow_clients(bot: OfflineBot, count: int) -> Iterator[list[socket.socket]]:
    """`count` connections that each sent the start of a request and then just sit there (a slowloris drip
    whose next line is not due yet)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = _connect(bot)
            sock.sendall(b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Drip-1: a\r\n")
            socks.append(sock)
        yield socks
    finally:
        for sock in socks:
            sock.close()


def test_slow_clients_do_not_hold_up_healthz_or_slack(bot: OfflineBot) -> None:
    bot.runtime.start()  # the scheduler is part of health
    with _slow_clients(bot, 200) as drips:
        base = bot.server.url.removesuffix("/slack/events")
        started = time.monotonic()
        health = httpx.get(f"{base}/healthz", timeout=3)
        assert health.status_code == 200, health.text
        assert bot.driver.slash_command("/finetune").status_code == 200
        assert bot.driver.wait_for_view(timeout=3)["title"]["text"]
        assert time.monotonic() - started < 3  # Slack's own deadline, with the slow clients still connected
        # The slow clients are still there, unanswered: they were waited for, not dropped to make room.
        assert not any(_answered(sock) for sock in drips)
