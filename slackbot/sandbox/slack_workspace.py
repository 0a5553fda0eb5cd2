"""The message side of the local Slack: channels, people, posts, threads and the per-channel post rate.

Everything here runs under the server's lock; methods raise `SlackError` exactly where Slack answers
`{"ok": false}`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from slackbot.sandbox.clock import Clock, SystemClock
from slackbot.sandbox.slack_common import (
    Args,
    Channel,
    SlackError,
    bool_arg,
    int_arg,
    required_arg,
    text_arg,
)

MAX_MESSAGE_BLOCKS = 50
MAX_TEXT_CHARS = 40_000


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class Workspace:
    team_id: str
    bot_user_id: str
    bot_id: str
    app_id: str
    clock: Clock
    post_rate: float | None
    burst: int
    # What message timestamps are read from (epoch seconds): the wall clock, as Slack's servers; a test can
    # give its manual clock, to have a thread whose replies are hours older than what the bot posts next.
    stamps: Clock = field(default_factory=SystemClock)
    channels: dict[str, Channel] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    usergroups: dict[str, list[str]] = field(default_factory=dict)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _last_ts_us: int = 0
    _ims: int = 0

    # -- setup ---------------------------------------------------------------------------------------

    def add_channel(self, channel: Channel) -> None:
        self.channels[channel.id] = channel
        self.messages.setdefault(channel.id, [])

    def add_user(self, user_id: str, name: str) -> None:
        self.users[user_id] = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "real_name": name,
            "deleted": False,
            "is_bot": False,
            "tz": "Europe/London",
            "profile": {"display_name": name, "real_name": name},
        }

    # -- lookups --------------------------------------------------------------------------------------

    def channel(self, args: Args, *, visible_only: bool = True) -> Channel:
        ref = text_arg(args, "channel")
        if ref is None:
            raise SlackError("channel_not_found")
        if ref.startswith("U") and ref in self.users:
            # Posting to a user ID lands in the app's DM with that user.
            return self.open_im(ref)
        found = self.channels.get(ref) or next(
            (c for c in self.channels.values() if not c.is_im and c.name == ref.lstrip("#")), None
        )
        # A private channel the bot is not in is invisible to it: Slack says "not found", not "not in".
        if found is None or (visible_only and found.is_private and not found.bot_is_member):
            raise SlackError("channel_not_found")
        return found

    def open_im(self, user_id: str) -> Channel:
        for existing in self.channels.values():
            if existing.is_im and existing.im_user == user_id:
                return existing
        self._ims += 1
        im = Channel(id=f"D0IM{self._ims:05d}", name=user_id, is_im=True, im_user=user_id)
        self.add_channel(im)
        return im

    def find(self, channel_id: str, ts: str) -> dict[str, Any] | None:
        return next((m for m in self.messages.get(channel_id, []) if m["ts"] == ts), None)

    def replies(self, channel_id: str, thread_ts: str) -> list[dict[str, Any]]:
        return [m for m in self.messages.get(channel_id, []) if m["thread_ts"] == thread_ts and m["ts"] != thread_ts]

    # -- posting -------------------------------------------------------------------------------------

    def next_ts(self) -> str:
        # Unique and strictly increasing even when two posts land in the same microsecond.
        self._last_ts_us = max(self._last_ts_us + 1, int(self.stamps.now() * 1_000_000))
        return f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"

    def _check_writable(self, channel: Channel) -> None:
        if channel.is_archived:
            raise SlackError("is_archived")
        if not channel.bot_is_member:
            raise SlackError("not_in_channel")

    def _check_content(self, args: Args) -> tuple[str, list[dict[str, Any]]]:
        text = text_arg(args, "text") or ""
        blocks = args.get("blocks") or []
        attachments = args.get("attachments")
        if not isinstance(blocks, list) or not all(isinstance(b, dict) and "type" in b for b in blocks):
            raise SlackError("invalid_blocks_format" if isinstance(blocks, str) else "invalid_blocks")
        if not text and not blocks and not attachments:
            raise SlackError("no_text")
        if len(text) > MAX_TEXT_CHARS:
            raise SlackError("msg_too_long")
        if len(blocks) > MAX_MESSAGE_BLOCKS:
            raise SlackError(
                "invalid_blocks",
                messages=[f"[ERROR] no more than {MAX_MESSAGE_BLOCKS} items allowed [json-pointer:/blocks]"],
            )
        ids = [b["block_id"] for b in blocks if b.get("block_id")]
        if len(ids) != len(set(ids)):
            raise SlackError("invalid_blocks", messages=["[ERROR] duplicate block_id [json-pointer:/blocks]"])
        return text, blocks

    def take_post_token(self, channel_id: str) -> None:
        """One message into the channel at its post rate; `SlackError` 429 with Retry-After when over it."""
        self._take_post_token(channel_id)

    def new_record(
        self, channel_id: str, text: str, blocks: list[dict[str, Any]], user: str, thread_ts: str | None
    ) -> dict[str, Any]:
        """A message record (not stored yet), e.g. a file share's."""
        return self._record(channel_id, text, blocks, user, thread_ts)

    def _take_post_token(self, channel_id: str) -> None:
        if self.post_rate is None:
            return
        now = self.clock.now()
        bucket = self._buckets.setdefault(channel_id, _Bucket(tokens=float(self.burst), at=now))
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.post_rate)
        bucket.at = now
        if bucket.tokens < 1.0:
            wait = max(1, math.ceil((1.0 - bucket.tokens) / self.post_rate))
            raise SlackError("ratelimited", status=429, headers={"Retry-After": str(wait)})
        bucket.tokens -= 1.0

    def metadata(self, args: Args) -> dict[str, Any] | None:
        value = args.get("metadata")
        if value is None or value == "":
            return None
        if not isinstance(value, dict) or not isinstance(value.get("event_type"), str):
            raise SlackError("invalid_metadata_format")
        payload = value.get("event_payload", {})
        if not isinstance(payload, dict):
            raise SlackError("invalid_metadata_format")
        return {"event_type": value["event_type"], "event_payload": payload}

    def post_message(self, args: Args) -> dict[str, Any]:
        channel = self.channel(args)
        self._check_writable(channel)
        text, blocks = self._check_content(args)
        metadata = self.metadata(args)
        thread_ts = text_arg(args, "thread_ts")
        if thread_ts is not None:
            parent = self.find(channel.id, thread_ts)
            if parent is None:
                raise SlackError("invalid_thread_ts")
            # Replying to a reply joins the same thread, as in Slack.
            thread_ts = parent["thread_ts"] or parent["ts"]
        self._take_post_token(channel.id)
        record = self._record(channel.id, text, blocks, self.bot_user_id, thread_ts)
        record.update(
            attachments=copy.deepcopy(args.get("attachments")),
            reply_broadcast=bool_arg(args, "reply_broadcast") and thread_ts is not None,
            unfurl_links=bool_arg(args, "unfurl_links") if "unfurl_links" in args else None,
            unfurl_media=bool_arg(args, "unfurl_media") if "unfurl_media" in args else None,
            mrkdwn=bool_arg(args, "mrkdwn", default=True),
            metadata=metadata,
        )
        self.messages[channel.id].append(record)
        return {
            "channel": channel.id,
            "ts": record["ts"],
            "message": self.shape(record, include_metadata=True),
        }

    def add_human_message(self, channel_id: str, text: str, *, user_id: str, thread_ts: str | None) -> str:
        record = self._record(channel_id, text, [], user_id, thread_ts)
        self.messages[channel_id].append(record)
        return str(record["ts"])

    def _record(
        self, channel_id: str, text: str, blocks: list[dict[str, Any]], user: str, thread_ts: str | None
    ) -> dict[str, Any]:
        return {
            "channel": channel_id,
            "ts": self.next_ts(),
            "thread_ts": thread_ts,
            "text": text,
            "blocks": copy.deepcopy(blocks),
            "attachments": None,
            "user": user,
            "reply_broadcast": False,
            "unfurl_links": None,
            "unfurl_media": None,
            "mrkdwn": True,
            "metadata": None,
            "edited": None,
            "edits": [],
        }

    def update_message(self, args: Args) -> dict[str, Any]:
        channel = self.channel(args)
        if channel.is_archived:
            raise SlackError("is_archived")
        ts = required_arg(args, "ts")
        record = self.find(channel.id, ts)
        if record is None:
            raise SlackError("message_not_found")
        if record["user"] != self.bot_user_id:
            raise SlackError("cant_update_message")
        text, blocks = self._check_content(args) if ("text" in args or "blocks" in args) else ("", [])
        metadata = self.metadata(args)
        record["edits"].append({"text": record["text"], "blocks": record["blocks"], "metadata": record["metadata"]})
        if "text" in args:
            record["text"] = text
        if "blocks" in args:
            record["blocks"] = copy.deepcopy(blocks)
        if metadata is not None:
            record["metadata"] = metadata
        record["edited"] = {"user": self.bot_user_id, "ts": self.next_ts()}
        return {
            "channel": channel.id,
            "ts": ts,
            "text": record["text"],
            "message": self.shape(record, include_metadata=True),
        }

    def post_ephemeral(self, args: Args) -> dict[str, Any]:
        channel = self.channel(args)
        self._check_writable(channel)
        user = required_arg(args, "user")
        if user not in self.users:
            raise SlackError("user_not_found")
        self._check_content(args)
        # Ephemeral messages are not stored in the channel: nobody can read them back, as in Slack.
        return {"message_ts": self.next_ts()}

    def permalink(self, args: Args) -> dict[str, Any]:
        channel = self.channel(args)
        ts = required_arg(args, "message_ts")
        record = self.find(channel.id, ts)
        if record is None:
            raise SlackError("message_not_found")
        link = f"https://local.slack.com/archives/{channel.id}/p{ts.replace('.', '')}"
        if record["thread_ts"] and record["thread_ts"] != ts:
            link += f"?thread_ts={record['thread_ts']}&cid={channel.id}"
        return {"channel": channel.id, "permalink": link}

    # -- reading -------------------------------------------------------------------------------------

    def shape(self, record: dict[str, Any], *, include_metadata: bool) -> dict[str, Any]:
        """A stored message the way the Web API returns it."""
        message: dict[str, Any] = {
            "type": "message",
            "user": record["user"],
            "text": record["text"],
            "ts": record["ts"],
            "team": self.team_id,
        }
        if record["user"] == self.bot_user_id:
            message.update(bot_id=self.bot_id, app_id=self.app_id)
        if record["blocks"]:
            message["blocks"] = copy.deepcopy(record["blocks"])
        if record["attachments"]:
            message["attachments"] = copy.deepcopy(record["attachments"])
        if record["edited"]:
            message["edited"] = dict(record["edited"])
        if record.get("files"):
            message["files"] = copy.deepcopy(record["files"])
            message["upload"] = True
        if include_metadata and record["metadata"]:
            message["metadata"] = copy.deepcopy(record["metadata"])
        thread_ts = record["thread_ts"]
        if thread_ts and thread_ts != record["ts"]:
            message["thread_ts"] = thread_ts
            parent = self.find(record["channel"], thread_ts)
            message["parent_user_id"] = parent["user"] if parent else None
            if record["reply_broadcast"]:
                message["subtype"] = "thread_broadcast"
        else:
            replies = self.replies(record["channel"], record["ts"])
            if replies:
                message.update(
                    thread_ts=record["ts"],
                    reply_count=len(replies),
                    reply_users=sorted({r["user"] for r in replies}),
                    reply_users_count=len({r["user"] for r in replies}),
                    latest_reply=replies[-1]["ts"],
                )
        return message

    def conversation_replies(self, args: Args) -> dict[str, Any]:
        channel = self.channel(args)
        ts = required_arg(args, "ts")
        parent = self.find(channel.id, ts)
        if parent is None:
            raise SlackError("thread_not_found")
        root = parent["thread_ts"] or parent["ts"]
        thread = [self.find(channel.id, root) or parent, *self.replies(channel.id, root)]
        return self._page(thread, args)

    def conversation_history(self, args: Args) -> dict[str, Any]:
        channel = self.channel(args)
        visible = [m for m in self.messages[channel.id] if m["thread_ts"] in (None, m["ts"]) or m["reply_broadcast"]]
        # History is newest first.
        return self._page(list(reversed(visible)), args)

    def _page(self, records: list[dict[str, Any]], args: Args) -> dict[str, Any]:
        include = bool_arg(args, "include_all_metadata")
        limit = max(1, min(int_arg(args, "limit", 100), 1000))
        cursor = text_arg(args, "cursor") or "0"
        if not cursor.isdigit():
            raise SlackError("invalid_cursor")
        start = int(cursor)
        records = [m for m in records if self._in_window(m["ts"], args)]
        page = records[start : start + limit]
        more = start + limit < len(records)
        return {
            "messages": [self.shape(m, include_metadata=include) for m in page],
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    @staticmethod
    def _in_window(ts: str, args: Args) -> bool:
        """Slack's `oldest` / `latest` window (each end excluded unless `inclusive`). Compared as decimals: a float
        cannot tell two timestamps a microsecond apart from each other reliably at today's epoch."""
        inclusive = bool_arg(args, "inclusive")
        oldest, latest = _ts_bound(args, "oldest"), _ts_bound(args, "latest")
        moment = Decimal(ts)
        if oldest is not None and (moment < oldest or (moment == oldest and not inclusive)):
            return False
        return not (latest is not None and (moment > latest or (moment == latest and not inclusive)))

    # -- conversations / people ------------------------------------------------------------------------

    def join(self, args: Args) -> dict[str, Any]:
        channel = self.channel(args, visible_only=False)
        if channel.is_im or channel.is_private:
            raise SlackError("method_not_supported_for_channel_type")
        if channel.is_archived:
            raise SlackError("is_archived")
        already = channel.bot_is_member
        channel.bot_is_member = True
        answer: dict[str, Any] = {"channel": channel.info()}
        if already:
            answer["warning"] = "already_in_channel"
            answer["response_metadata"] = {"warnings": ["already_in_channel"]}
        return answer

    def open_conversation(self, args: Args) -> dict[str, Any]:
        users = [u.strip() for u in (text_arg(args, "users") or "").split(",") if u.strip()]
        if not users:
            raise SlackError("users_list_not_supplied")
        if len(users) > 1:
            # Group DMs are not needed by the bot; refuse loudly rather than fake them.
            raise SlackError("not_supported_in_local_slack")
        if users[0] not in self.users:
            raise SlackError("user_not_found")
        existed = any(c.is_im and c.im_user == users[0] for c in self.channels.values())
        im = self.open_im(users[0])
        answer: dict[str, Any] = {"channel": {"id": im.id}}
        if existed:
            answer.update(no_op=True, already_open=True)
        return answer

    def user_info(self, args: Args) -> dict[str, Any]:
        user = self.users.get(text_arg(args, "user") or "")
        if user is None:
            raise SlackError("user_not_found")
        return {"user": copy.deepcopy(user)}

    def usergroup_users(self, args: Args) -> dict[str, Any]:
        group = self.usergroups.get(text_arg(args, "usergroup") or "")
        if group is None:
            raise SlackError("no_such_subteam")
        return {"users": list(group)}


def _ts_bound(args: Args, name: str) -> Decimal | None:
    value = text_arg(args, name)
    if value is None:
        return None
    try:
        bound = Decimal(value)
    except InvalidOperation:
        raise SlackError(f"invalid_ts_{name}") from None
    if not bound.is_finite():
        raise SlackError(f"invalid_ts_{name}")
    return bound
