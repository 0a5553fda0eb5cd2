"""Files for the local Slack: `files.info` and the `url_private_download` a bot reads a shared file from.

Like Slack, the download needs the bot token (`Authorization: Bearer xoxb-…`, scope files:read); without it Slack
answers its sign-in page as HTML with a 200, which a client must not take for the file. The store serves from
its own loopback port and joins the local Slack with `register_method`, so the Web API stand-in is untouched.
"""

from __future__ import annotations

import hmac
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from slackbot.sandbox.serving import StandInServer
from slackbot.sandbox.slack_api import LocalSlack
from slackbot.sandbox.slack_common import SlackError

_SIGN_IN = b"<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in to continue</body></html>"
_CHUNK = 1 << 20


@dataclass
class _File:
    id: str
    name: str
    data: bytes
    user: str
    filetype: str
    created: int


class SlackFiles:
    """Files shared in the local workspace. `downloads` records (file id, whether the bot token came along)."""

    def __init__(self, slack: LocalSlack, *, host: str = "127.0.0.1") -> None:
        self._slack = slack
        self._token = slack.bot_token  # a download must carry the workspace's bot token
        self._lock = threading.Lock()
        self._files: dict[str, _File] = {}
        self.downloads: list[tuple[str, bool]] = []
        self._server = StandInServer((host, 0), _handler_for(self))
        self._thread: threading.Thread | None = None
        self.url = f"http://{host}:{self._server.server_address[1]}"
        slack.register_method("files.info", self._info)

    def start(self) -> SlackFiles:
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SlackFiles:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add(self, name: str, data: bytes, *, user: str = "U0ALICE", filetype: str = "jsonl") -> dict[str, Any]:
        """Share a file; its object as `files.info` and a message's `files` list carry it."""
        with self._lock:
            file_id = f"F{len(self._files) + 1:08d}"
            self._files[file_id] = _File(file_id, name, data, user, filetype, int(self._slack.clock.now()))
        return self.file_object(file_id)

    def file_object(self, file_id: str) -> dict[str, Any]:
        with self._lock:
            f = self._files[file_id]
        base = f"{self.url}/files-pri/{self._slack.team_id}-{f.id}"
        return {
            "id": f.id,
            "created": f.created,
            "name": f.name,
            "title": f.name,
            "mimetype": "application/octet-stream",
            "filetype": f.filetype,
            "user": f.user,
            "size": len(f.data),
            "mode": "hosted",
            "is_external": False,
            "url_private": f"{base}/{quote(f.name)}",
            "url_private_download": f"{base}/download/{quote(f.name)}",
        }

    def _info(self, args: dict[str, Any]) -> dict[str, Any]:
        file_id = str(args.get("file") or "")
        with self._lock:
            known = file_id in self._files
        if not known:
            raise SlackError("file_not_found")
        return {"file": self.file_object(file_id)}

    def _content(self, path: str, authorization: str | None) -> tuple[bytes | None, bool]:
        """The file at a download path and whether the bot token came with the request."""
        parts = unquote(urlsplit(path).path).split("/")
        file_id = parts[2].split("-", 1)[-1] if len(parts) > 2 and parts[1] == "files-pri" else ""
        authorized = hmac.compare_digest((authorization or "").encode(), f"Bearer {self._token}".encode())
        with self._lock:
            found = self._files.get(file_id)
            if found is not None:
                self.downloads.append((file_id, authorized))
        return (found.data if found is not None else None), authorized


def _handler_for(store: SlackFiles) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            data, authorized = store._content(self.path, self.headers.get("Authorization"))
            if not authorized:
                self._send(200, "text/html; charset=utf-8", _SIGN_IN)
            elif data is None:
                self._send(404, "text/plain", b"Not found")
            else:
                self._send(200, "application/octet-stream", data)

        def _send(self, status: int, kind: str, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            for start in range(0, len(data), _CHUNK):
                self.wfile.write(data[start : start + _CHUNK])

    return Handler
