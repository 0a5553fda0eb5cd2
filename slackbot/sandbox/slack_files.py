"""The file side of the local Slack: the upload flow `files_upload_v2` drives, and the files.* rate limit.

1. `files.getUploadURLExternal` (filename, length) answers an `upload_url` on this server and a `file_id`;
2. the bytes are POSTed to that URL (`receive`);
3. `files.completeUploadExternal` (files=[{id, title}], channel_id, thread_ts, initial_comment) shares them: a
   message by the bot in the channel, or in the thread, carrying the file objects (shaped as Slack's `objs_file`).

The files.* methods are rated per workspace (`rate_per_minute` each, a token bucket with `burst`): over it, HTTP
429 with `Retry-After`, as Slack does. Everything runs under the server's lock.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Any

from slackbot.sandbox.clock import Clock
from slackbot.sandbox.slack_common import Args, SlackError, int_arg, invalid_arguments, required_arg, text_arg
from slackbot.sandbox.slack_workspace import Workspace

MAX_FILE_BYTES = 1024 * 1024 * 1024  # Slack's own bound on one upload
MAX_ALT_TEXT = 1000
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class StoredFile:
    id: str
    filename: str
    length: int
    alt_txt: str | None
    created: int
    data: bytes | None = None  # None until the bytes are uploaded
    title: str | None = None
    channels: list[str] = field(default_factory=list)
    shared_ts: str | None = None
    thread_ts: str | None = None


@dataclass
class Files:
    workspace: Workspace
    clock: Clock
    base_url: str  # http://host:port, for the upload URLs
    rate_per_minute: float | None = 20.0
    burst: int = 3
    files: dict[str, StoredFile] = field(default_factory=dict)
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _count: int = 0

    # -- rate limit ----------------------------------------------------------------------------------------

    def take(self, method: str) -> None:
        """One call of a files.* method; `SlackError` 429 with Retry-After if the method's budget is spent."""
        if self.rate_per_minute is None:
            return
        per_second = self.rate_per_minute / 60.0
        now = self.clock.now()
        bucket = self._buckets.setdefault(method, _Bucket(tokens=float(self.burst), at=now))
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * per_second)
        bucket.at = now
        if bucket.tokens < 1.0:
            wait = max(1, math.ceil((1.0 - bucket.tokens) / per_second))
            raise SlackError("ratelimited", status=429, headers={"Retry-After": str(wait)})
        bucket.tokens -= 1.0

    # -- the three steps -----------------------------------------------------------------------------------

    def get_upload_url(self, args: Args) -> dict[str, Any]:
        self.take("files.getUploadURLExternal")
        filename = required_arg(args, "filename")
        length = int_arg(args, "length", 0)
        if length <= 0:
            raise SlackError("missing_argument")  # Slack's answer to a length of 0
        if length > MAX_FILE_BYTES:
            raise SlackError("file_upload_size_restricted")
        alt = text_arg(args, "alt_txt")
        if alt is not None and len(alt) > MAX_ALT_TEXT:
            raise SlackError("alt_txt_too_large")
        self._count += 1
        file_id = f"F0LOCAL{self._count:05d}"
        self.files[file_id] = StoredFile(file_id, filename, length, alt, int(self.workspace.stamps.now()))
        return {"upload_url": f"{self.base_url}/upload/v1/{file_id}", "file_id": file_id}

    def receive(self, path: str, data: bytes) -> tuple[int, str]:
        """The POST of the bytes to an upload URL: (HTTP status, body). Slack answers "OK - <length>"."""
        file_id = path.rstrip("/").rsplit("/", 1)[-1]
        stored = self.files.get(file_id)
        if stored is None or stored.shared_ts is not None:
            return 404, "upload URL not found"
        if len(data) != stored.length:
            return 400, f"expected {stored.length} bytes, got {len(data)}"
        stored.data = data
        return 200, f"OK - {len(data)}"

    def complete(self, args: Args) -> dict[str, Any]:
        self.take("files.completeUploadExternal")
        wanted = args.get("files")
        if not isinstance(wanted, list) or not wanted or not all(isinstance(f, dict) and "id" in f for f in wanted):
            raise invalid_arguments("files must be a non-empty array of {id, title}", "/files")
        found: list[tuple[StoredFile, str | None]] = []
        for item in wanted:
            stored = self.files.get(str(item["id"]))
            if stored is None or stored.data is None:
                raise SlackError("file_not_found")
            if stored.shared_ts is not None:
                raise SlackError("file_already_completed")
            found.append((stored, None if item.get("title") is None else str(item["title"])))
        channel_id = text_arg(args, "channel_id")
        if channel_id is None and text_arg(args, "channels") is None:
            # Completed without a channel the file stays private to the uploader: nothing is shown anywhere.
            for stored, title in found:
                stored.title = title or stored.filename
            return {"files": [self.shape(stored) for stored, _ in found]}
        channel = self.workspace.channel({"channel": channel_id or text_arg(args, "channels")})
        if channel.is_archived:
            raise SlackError("is_archived")
        if not channel.bot_is_member:
            raise SlackError("not_in_channel")
        thread_ts = text_arg(args, "thread_ts")
        if thread_ts is not None:
            parent = self.workspace.find(channel.id, thread_ts)
            if parent is None:
                raise SlackError("invalid_thread_ts")
            thread_ts = parent["thread_ts"] or parent["ts"]
        self.workspace.take_post_token(channel.id)  # the share is a message in the channel, paced like one
        comment = text_arg(args, "initial_comment") or ""
        record = self.workspace.new_record(channel.id, comment, [], self.workspace.bot_user_id, thread_ts)
        for stored, title in found:
            stored.title = title or stored.filename
            stored.channels.append(channel.id)
            stored.shared_ts = record["ts"]
            stored.thread_ts = thread_ts
        record["files"] = [self.shape(stored) for stored, _ in found]
        self.workspace.messages[channel.id].append(record)
        return {"files": [self.shape(stored) for stored, _ in found]}

    def info(self, args: Args) -> dict[str, Any]:
        stored = self.files.get(required_arg(args, "file"))
        if stored is None or stored.data is None:
            raise SlackError("file_not_found")
        return {"file": self.shape(stored), "comments": [], "response_metadata": {"next_cursor": ""}}

    # -- shapes --------------------------------------------------------------------------------------------

    def shape(self, stored: StoredFile) -> dict[str, Any]:
        """The file as Slack's file object (`objs_file` of the Web API spec)."""
        url = f"{self.base_url}/files-pri/{self.workspace.team_id}-{stored.id}/{stored.filename}"
        public = [c for c in stored.channels if not self._channel_private(c)]
        shaped: dict[str, Any] = {
            "id": stored.id,
            "created": stored.created,
            "timestamp": stored.created,
            "name": stored.filename,
            "title": stored.title or stored.filename,
            "mimetype": "image/png" if self._is_png(stored) else "application/octet-stream",
            "filetype": "png" if self._is_png(stored) else "binary",
            "pretty_type": "PNG" if self._is_png(stored) else "Binary",
            "user": self.workspace.bot_user_id,
            "editable": False,
            "size": len(stored.data or b""),
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": bool(public),
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": url,
            "url_private_download": url + "?download=1",
            "permalink": f"https://local.slack.com/files/{self.workspace.bot_user_id}/{stored.id}/{stored.filename}",
            "channels": public,
            "groups": [c for c in stored.channels if self._channel_private(c)],
            "ims": [],
            "comments_count": 0,
            "has_rich_preview": False,
        }
        size = self.png_size(stored.data) if stored.data is not None else None
        if size is not None:
            shaped["original_w"], shaped["original_h"] = size
        return shaped

    def _channel_private(self, channel_id: str) -> bool:
        channel = self.workspace.channels.get(channel_id)
        return channel is not None and (channel.is_private or channel.is_im)

    def _is_png(self, stored: StoredFile) -> bool:
        return stored.data is not None and stored.data.startswith(_PNG_SIGNATURE)

    @staticmethod
    def png_size(data: bytes) -> tuple[int, int] | None:
        """(width, height) from a PNG's IHDR chunk; None if `data` is no PNG."""
        if len(data) < 24 or not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
            return None
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
