"""`LocalSlack`: a Slack Web API stand-in on loopback; `slack_sdk.WebClient(base_url=...)` works unchanged.

It enforces the rules that bite real apps (trigger_id expiry and single use, view hashes, view and message
limits, channel membership, the per-channel post rate) and records every call, so tests can check both what
the bot did and that it survived what Slack does to it. Failures can be injected per method.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Protocol, TypeVar

from slackbot.sandbox.clock import Clock, SystemClock
from slackbot.sandbox.serving import StandInServer
from slackbot.sandbox.slack_common import Args, Channel, Dropped, MonotonicClock, SlackError, decode_args
from slackbot.sandbox.slack_files import Files
from slackbot.sandbox.slack_http import handler_for
from slackbot.sandbox.slack_views import Modals
from slackbot.sandbox.slack_workspace import Workspace

FaultKind = Literal["error", "accept_then_drop"]


@dataclass(frozen=True)
class Call:
    method: str
    args: dict[str, Any]
    at: float
    response: dict[str, Any] | None
    status: int = 200
    dropped: bool = False  # carried out, but the connection was closed without an answer


@dataclass
class Stall:
    """Calls of one method held before Slack carries them out (a slow Slack, a slow network): `entered` is set when
    one arrives; it goes on once `release()` is called (or after `timeout` seconds, so a test cannot hang)."""

    times: int
    timeout: float = 30.0
    entered: threading.Event = field(default_factory=threading.Event)
    gate: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.gate.set()


@dataclass
class _Fault:
    error: str
    status: int
    retry_after: int | None
    times: int
    kind: FaultKind


class _Counted(Protocol):
    times: int


_T = TypeVar("_T", bound=_Counted)


def _take(queues: dict[str, list[_T]], method: str) -> _T | None:
    """The first of `method`'s queued stalls or faults, which counts one use and leaves when used up."""
    queue = queues.get(method)
    if not queue:
        return None
    first = queue[0]
    first.times -= 1
    if first.times <= 0:
        queue.pop(0)
    return first


class LocalSlack:
    """A one-workspace Slack Web API on loopback, ready-made with a few people and channels.

    Channels: C0GENERAL (#general, bot is a member), C0RANDOM (public, bot not a member: join it first),
    C0PRIVATE (private, bot not a member), C0ARCHIVE (archived). Users: U0ALICE, U0BOB and the bot
    (`bot_user_id`); usergroup S0MLTEAM = [U0ALICE]. Add more with add_channel / add_user / add_usergroup.
    """

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-local-test",  # noqa: S107  (a fake token for a fake workspace)
        team_id: str = "T0LOCAL",
        bot_user_id: str = "U0BOT",
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
        post_rate_per_channel: float | None = 1.0,
        burst: int = 1,
        stamp_clock: Clock | None = None,
        file_rate_per_minute: float | None = 20.0,
    ) -> None:
        self._token = bot_token
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = "B0BOT"
        self.app_id = "A0LOCAL"
        self.clock: Clock = clock or MonotonicClock()
        self._lock = threading.RLock()
        self._called = threading.Condition(self._lock)
        self._faults: dict[str, list[_Fault]] = {}
        self._stalls: dict[str, list[Stall]] = {}
        self.calls: list[Call] = []
        self.workspace = Workspace(
            team_id=team_id,
            bot_user_id=bot_user_id,
            bot_id=self.bot_id,
            app_id=self.app_id,
            clock=self.clock,
            post_rate=post_rate_per_channel,
            burst=burst,
            stamps=stamp_clock or SystemClock(),
        )
        self.modals = Modals(team_id=team_id, app_id=self.app_id, bot_id=self.bot_id, clock=self.clock)
        self._methods: dict[str, Callable[[Args], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "views.open": self.modals.open,
            "views.update": self.modals.update,
            "views.push": self.modals.push,
            "views.publish": self.modals.publish,
            "chat.postMessage": self.workspace.post_message,
            "chat.update": self.workspace.update_message,
            "chat.postEphemeral": self.workspace.post_ephemeral,
            "chat.getPermalink": self.workspace.permalink,
            "conversations.join": self.workspace.join,
            "conversations.info": lambda a: {"channel": self.workspace.channel(a).info()},
            "conversations.open": self.workspace.open_conversation,
            "conversations.replies": self.workspace.conversation_replies,
            "conversations.history": self.workspace.conversation_history,
            "users.info": self.workspace.user_info,
            "usergroups.users.list": self.workspace.usergroup_users,
        }
        self._method_tokens: dict[str, str] = {}  # methods that take another token than the bot's
        self._seed()
        self._server = StandInServer((host, port), handler_for(self))
        self._thread: threading.Thread | None = None
        bound_host, bound_port = self._server.server_address[:2]
        self.url = f"http://{bound_host!s}:{bound_port}/api/"
        # files.* are rated per workspace (file_rate_per_minute per method; None: unlimited).
        self.files = Files(self.workspace, self.clock, self.url.removesuffix("/api/"), file_rate_per_minute)
        self._methods.update(
            {
                "files.getUploadURLExternal": self.files.get_upload_url,
                "files.completeUploadExternal": self.files.complete,
                "files.info": self.files.info,
            }
        )

    @property
    def bot_token(self) -> str:
        """The token the workspace's bot calls with (a fake one for a fake workspace)."""
        return self._token

    def _seed(self) -> None:
        self.add_channel("C0GENERAL", "general")
        self.add_channel("C0RANDOM", "random", bot_is_member=False)
        self.add_channel("C0PRIVATE", "ml-private", is_private=True, bot_is_member=False)
        self.add_channel("C0ARCHIVE", "old-experiments", is_archived=True)
        self.workspace.users[self.bot_user_id] = {
            "id": self.bot_user_id,
            "team_id": self.team_id,
            "name": "finetune-bot",
            "real_name": "Fine-tune bot",
            "deleted": False,
            "is_bot": True,
            "profile": {"display_name": "finetune-bot", "real_name": "Fine-tune bot", "bot_id": self.bot_id},
        }
        self.add_user("U0ALICE", "alice")
        self.add_user("U0BOB", "bob")
        self.add_usergroup("S0MLTEAM", ["U0ALICE"])

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> LocalSlack:
        if self._thread is None:
            # A short poll interval keeps stop() quick: tests start and stop many servers.
            self._thread = threading.Thread(
                target=self._server.serve_forever, args=(0.05,), name="local-slack", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> LocalSlack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- setup and inspection --------------------------------------------------------------------------

    def add_channel(
        self,
        channel_id: str,
        name: str,
        *,
        is_private: bool = False,
        is_archived: bool = False,
        bot_is_member: bool = True,
        is_im: bool = False,
    ) -> None:
        with self._lock:
            self.workspace.add_channel(
                Channel(channel_id, name, is_private, is_archived, bot_is_member, is_im, name if is_im else None)
            )

    def add_user(self, user_id: str, name: str) -> None:
        with self._lock:
            self.workspace.add_user(user_id, name)

    def add_usergroup(self, group_id: str, user_ids: list[str]) -> None:
        with self._lock:
            self.workspace.usergroups[group_id] = list(user_ids)

    def add_message(self, channel_id: str, text: str, *, user_id: str = "U0ALICE", thread_ts: str | None = None) -> str:
        """A message written by a person (not the bot), e.g. to start a thread a shortcut is used on."""
        with self._lock:
            return self.workspace.add_human_message(channel_id, text, user_id=user_id, thread_ts=thread_ts)

    def issue_trigger_id(self, *, user_id: str | None = None, view_id: str | None = None) -> str:
        """A trigger_id as Slack would send with an interaction: valid once, for 3 s on the clock."""
        with self._lock:
            return self.modals.issue_trigger(user_id=user_id, view_id=view_id)

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    def messages(self, channel_id: str) -> list[dict[str, Any]]:
        """Every message stored in a channel, top-level and replies, oldest first, with edit history."""
        with self._lock:
            return copy.deepcopy(self.workspace.messages.get(channel_id, []))

    def thread(self, channel_id: str, ts: str) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self.workspace.replies(channel_id, ts))

    @property
    def views(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self.modals.views)

    def home(self, user_id: str) -> dict[str, Any] | None:
        """The user's App Home tab as last published, if any."""
        with self._lock:
            found = self.modals.homes.get(user_id)
            return copy.deepcopy(found) if found is not None else None

    def shaped_message(self, channel_id: str, ts: str) -> dict[str, Any]:
        """One stored message as the Web API (and interaction payloads) show it."""
        with self._lock:
            record = self.workspace.find(channel_id, ts)
            if record is None:
                raise KeyError(f"no message {ts} in {channel_id}")
            return self.workspace.shape(record, include_metadata=False)

    def type_into(self, view_id: str, values: dict[str, dict[str, Any]]) -> None:
        """Record what a user typed or picked in an open modal (`view.state.values` entries)."""
        with self._lock:
            self.modals.type_into(view_id, values)

    def typed_state(self, view_id: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self.modals.typed.get(view_id, {}))

    def close_view(self, view_id: str, *, whole_stack: bool = False) -> None:
        with self._lock:
            self.modals.close(view_id, whole_stack=whole_stack)

    def apply_submission_answer(self, view_id: str, answer: dict[str, Any]) -> None:
        """Do what Slack does with an app's answer to view_submission (raises SlackError if it is invalid)."""
        with self._lock:
            self.modals.answer_submission(view_id, answer)

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Block until `method` was called `count` times: listeners run after ack(), in Bolt's threads."""
        with self._called:
            self._called.wait_for(lambda: len(self.calls_to(method)) >= count, timeout=timeout)
            found = self.calls_to(method)
        if len(found) < count:
            raise TimeoutError(f"{method} called {len(found)} times, expected {count}")
        return found

    def fail(
        self,
        method: str,
        error: str | None = None,
        *,
        status: int = 200,
        retry_after: int | None = None,
        times: int = 1,
        kind: FaultKind = "error",
    ) -> None:
        """Make the next `times` calls of `method` fail.

        kind="error" answers `{"ok": false, "error": error}` with `status` (429 defaults the error to
        `ratelimited` and sends `Retry-After`); kind="accept_then_drop" carries the call out, then closes
        the connection without answering, so the client sees an error although the call took effect.
        """
        if error is None:
            error = "ratelimited" if status == 429 else "internal_error"
        if status == 429 and retry_after is None:
            retry_after = 1
        with self._lock:
            self._faults.setdefault(method, []).append(_Fault(error, status, retry_after, times, kind))

    def stall(self, method: str, *, times: int = 1, timeout: float = 30.0) -> Stall:
        """Hold the next `times` calls of `method` until the returned `Stall` is released; other calls go on."""
        held = Stall(times, timeout)
        with self._lock:
            self._stalls.setdefault(method, []).append(held)
        return held

    def register_method(
        self, method: str, handler: Callable[[Args], dict[str, Any]], *, token: str | None = None
    ) -> None:
        """Serve one more Web API method; `token` when it wants another token than the bot's (e.g. xapp-)."""
        with self._lock:
            self._methods[method] = handler
            if token is not None:
                self._method_tokens[method] = token

    # -- request handling ------------------------------------------------------------------------------

    def _auth_test(self, args: Args) -> dict[str, Any]:
        return {
            "url": "https://local.slack.com/",
            "team": "Local",
            "user": "finetune-bot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def handle(
        self, method: str, args: Args, authorization: str | None
    ) -> tuple[int, dict[str, str], dict[str, Any] | Dropped]:
        """Run one Web API call: (HTTP status, extra headers, JSON body or a `Dropped` marker)."""
        token = args.pop("token", None)
        if authorization and authorization.startswith("Bearer "):
            token = authorization.removeprefix("Bearer ").strip()
        with self._lock:
            held = _take(self._stalls, method)
        if held is not None:  # outside the lock: only this call waits
            held.entered.set()
            held.gate.wait(held.timeout)
        with self._lock:
            args = decode_args(args)
            status, headers, body = self._dispatch(method, args, token)
            recorded = body.result if isinstance(body, Dropped) else body
            dropped = isinstance(body, Dropped)
            call = Call(method, copy.deepcopy(args), self.clock.now(), copy.deepcopy(recorded), status, dropped)
            self.calls.append(call)
            self._called.notify_all()
            return status, headers, body

    def record_response_url(self, path: str, body: str) -> None:
        """A post to a `response_url` the driver handed out (Bolt's `respond()`)."""
        try:
            args: Any = json.loads(body) if body.strip() else {}
        except ValueError:
            args = {"raw": body}
        with self._lock:
            recorded = args if isinstance(args, dict) else {"raw": args}
            self.calls.append(Call("response_url", {"url_path": path, **recorded}, self.clock.now(), None))
            self._called.notify_all()

    def receive_upload(self, path: str, data: bytes) -> tuple[int, str]:
        """The bytes POSTed to an upload URL (recorded as a call named "upload")."""
        with self._lock:
            status, text = self.files.receive(path, data)
            self.calls.append(
                Call("upload", {"path": path, "bytes": len(data)}, self.clock.now(), {"text": text}, status)
            )
            self._called.notify_all()
            return status, text

    def _dispatch(
        self, method: str, args: Args, token: str | None
    ) -> tuple[int, dict[str, str], dict[str, Any] | Dropped]:
        handler = self._methods.get(method)
        if handler is None:
            return 200, {}, {"ok": False, "error": "unknown_method", "req_method": method}
        if not token:
            return 200, {}, {"ok": False, "error": "not_authed"}
        expected = self._method_tokens.get(method, self._token)
        if token != expected:
            wrong_kind = method in self._method_tokens and token == self._token
            return 200, {}, {"ok": False, "error": "not_allowed_token_type" if wrong_kind else "invalid_auth"}
        fault = _take(self._faults, method)
        if fault is not None and fault.kind == "error":
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            return fault.status, headers, {"ok": False, "error": fault.error}
        try:
            result = {"ok": True, **handler(args)}
        except SlackError as exc:
            return exc.status, exc.headers, exc.body()
        if fault is not None:
            return 200, {}, Dropped(result)
        return 200, {}, result
