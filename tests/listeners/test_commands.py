"""The `/finetune` handler on its own: a fake ack, respond, client and services, no Bolt and no server."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from slack_bolt import Ack, Respond
from slack_sdk import WebClient

from slackbot.backends.declaration import Capabilities
from slackbot.backends.openpipe import OPENPIPE
from slackbot.forms import ModalMetadata
from slackbot.listeners.commands.finetune import BUSY, CommandServices, finetune_command
from slackbot.permissions import Decision


@dataclass
class Recorder:
    calls: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)


@dataclass
class FakeClient:
    ephemerals: list[dict[str, Any]] = field(default_factory=list)

    def chat_postEphemeral(self, **kwargs: Any) -> None:
        self.ephemerals.append(kwargs)


@dataclass
class FakeServices:
    allowed: bool = True
    pool_free: bool = True
    form_opens: bool = True
    track_says: str | None = None
    broken: bool = False
    backends: list[tuple[str, Capabilities]] = field(default_factory=lambda: [("OpenPipe", OPENPIPE.capabilities)])
    calls: list[tuple[str, tuple[object, ...]]] = field(default_factory=list)
    later: list[tuple[Callable[..., object], tuple[object, ...]]] = field(default_factory=list)

    def permission(self, user: str, channel: str) -> Decision:
        self.calls.append(("permission", (user, channel)))
        return Decision(self.allowed, "" if self.allowed else "Fine-tunes can only be started in <#C9>.")

    def reserve_after_ack(self) -> bool:
        return self.pool_free

    def run_after_ack(self, fn: Callable[..., object], *args: object) -> None:
        self.later.append((fn, args))

    def open_form(self, client: WebClient, trigger_id: str, metadata: ModalMetadata) -> bool:
        self.calls.append(("open_form", (trigger_id, metadata)))
        return self.form_opens

    def list_jobs(self, team: str, user: str, channel: str) -> str:
        self.calls.append(("list_jobs", (team, user, channel)))
        if self.broken:
            raise RuntimeError("database is locked")
        return "*Recent fine-tunes*\n• `alpha`"

    def job_status(self, team: str, user: str, channel: str, slug: str) -> str:
        self.calls.append(("job_status", (team, user, channel, slug)))
        return f"`{slug}` is *TRAINING*"

    def track(self, team: str, user: str, channel: str, slug: str) -> str | None:
        self.calls.append(("track", (team, user, channel, slug)))
        return self.track_says

    def offers(self) -> list[tuple[str, Capabilities]]:
        return self.backends

    def run_later(self) -> None:
        """What the after-ack pool would do."""
        for fn, args in self.later:
            fn(*args)


@dataclass
class Run:
    ack: Recorder
    respond: Recorder
    client: FakeClient
    services: FakeServices


def run(text: str, services: FakeServices | None = None, **command: Any) -> Run:
    ack, respond, client = Recorder(), Recorder(), FakeClient()
    services = services or FakeServices()
    payload = {"text": text, "team_id": "T1", "user_id": "U1", "channel_id": "C1", "trigger_id": "tr-1", **command}
    checked: CommandServices = services  # the fake really is a CommandServices (mypy checks it here)
    finetune_command(cast(Ack, ack), payload, cast(WebClient, client), cast(Respond, respond), checked)
    return Run(ack, respond, client, services)


def test_help_is_the_ack_itself() -> None:
    r = run("help")
    assert len(r.ack.calls) == 1 and "blocks" in r.ack.calls[0] and "/finetune" in r.ack.calls[0]["text"]
    assert r.services.calls == [] and r.services.later == []


def test_list_acks_at_once_then_answers_only_the_user() -> None:
    r = run("list")
    assert r.ack.calls == [{"text": ""}]
    assert r.respond.calls == []  # nothing before the after-ack pool runs it
    r.services.run_later()
    assert r.services.calls == [("list_jobs", ("T1", "U1", "C1"))]
    assert r.respond.calls == [
        {"text": "*Recent fine-tunes*\n• `alpha`", "response_type": "ephemeral", "replace_original": False}
    ]


def test_status_passes_the_slug_to_the_service() -> None:
    r = run("STATUS support-bot")
    r.services.run_later()
    assert r.services.calls == [("job_status", ("T1", "U1", "C1", "support-bot"))]
    assert r.respond.calls[0]["text"] == "`support-bot` is *TRAINING*"


def test_a_failing_service_is_one_apology_not_a_traceback() -> None:
    r = run("list", FakeServices(broken=True))
    r.services.run_later()
    assert r.respond.calls[0]["text"] == "Something went wrong while answering; please try again."


@pytest.mark.parametrize("sub", ["status", "track"])
def test_not_a_slug_is_refused_in_the_ack_without_calling_a_service(sub: str) -> None:
    r = run(f"{sub} <@U2>!")
    assert "is not a model slug" in r.ack.calls[0]["text"]
    assert r.services.calls == [] and r.services.later == []


def test_a_full_pool_is_said_in_the_ack_and_nothing_is_queued() -> None:
    r = run("list", FakeServices(pool_free=False))
    assert r.ack.calls == [{"text": BUSY}]
    assert r.services.later == [] and r.services.calls == []


def test_track_needs_permission_first() -> None:
    r = run("track support-bot", FakeServices(allowed=False))
    assert r.ack.calls == [{"text": "Fine-tunes can only be started in <#C9>."}]
    assert r.services.calls == [("permission", ("U1", "C1"))] and r.services.later == []


def test_track_says_what_the_service_says_by_ephemeral() -> None:
    r = run("track support-bot", FakeServices(track_says="`support-bot` is already followed in <#C2>."))
    assert r.ack.calls == [{"text": "Looking up `support-bot`…"}]
    r.services.run_later()
    assert ("track", ("T1", "U1", "C1", "support-bot")) in r.services.calls
    assert r.client.ephemerals == [
        {"channel": "C1", "user": "U1", "text": "`support-bot` is already followed in <#C2>."}
    ]
    followed = run("track support-bot")  # followed: the card says it, no ephemeral
    followed.services.run_later()
    assert followed.client.ephemerals == []


def test_bare_command_opens_the_form() -> None:
    r = run("")
    assert r.ack.calls == [{}]
    ((name, (trigger, metadata)),) = r.services.calls[1:]
    assert name == "open_form" and trigger == "tr-1"
    assert isinstance(metadata, ModalMetadata) and (metadata.team_id, metadata.channel_id) == ("T1", "C1")
    assert r.client.ephemerals == []


def test_a_form_that_cannot_open_is_said() -> None:
    r = run("", FakeServices(form_opens=False))
    assert "did not let me open the form" in r.client.ephemerals[0]["text"]
    refused = run("", FakeServices(allowed=False))
    assert refused.ack.calls == [{"text": "Fine-tunes can only be started in <#C9>."}]
    assert [c[0] for c in refused.services.calls] == ["permission"]


def test_usage_and_missing_ids() -> None:
    assert "status" in run("frobnicate now").ack.calls[0]["text"]
    r = run("list", team_id=None)
    assert r.ack.calls == [{"text": "Slack sent this command without a team, user or channel; please try again."}]
    assert r.services.calls == []


def _help_text(services: FakeServices) -> str:
    r = run("help", services)
    return str(r.ack.calls[0]["blocks"])


def test_help_lists_only_what_the_backends_on_can_do() -> None:
    shown = _help_text(FakeServices())
    assert "What the service can do" in shown and "OpenPipe: delete a fine-tuned model" in shown
    assert "chat completions" in shown and "upload datasets" in shown
    for never in ("cancel", "price", "loss curve", "when a fine-tune will finish", "event log"):
        assert never not in shown
    assert "&lt;service&gt;:&lt;slug&gt;" not in shown  # one backend: the track line is as before
    # A backend that cannot delete gets no delete mention; a backend that can do nothing, no section at all.
    toy = Capabilities(cancel=True, metrics=True)
    shown = _help_text(FakeServices(backends=[("Toy", toy)]))
    assert "Toy: cancel a running fine-tune, show a fine-tune's metrics and loss curve" in shown
    assert "delete" not in shown and "OpenPipe" not in shown
    assert "What the service can do" not in _help_text(FakeServices(backends=[("Toy", Capabilities())]))
    both = _help_text(FakeServices(backends=[("OpenPipe", OPENPIPE.capabilities), ("Toy", toy)]))
    assert "OpenPipe: delete" in both and "Toy: cancel" in both and "&lt;service&gt;:&lt;slug&gt;" in both


def test_track_accepts_a_service_prefix_and_still_refuses_a_bad_slug() -> None:
    r = run("track toy:support-bot")
    r.services.run_later()
    assert ("track", ("T1", "U1", "C1", "toy:support-bot")) in r.services.calls
    bad = run("track toy:not/a/slug")
    assert bad.services.calls == [] and "not" in bad.ack.calls[0]["text"]
    assert run("status toy:support-bot").services.calls == []  # status takes a bare slug
