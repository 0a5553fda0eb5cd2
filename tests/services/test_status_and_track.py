"""`/finetune list`, `status` and `track` as services: a real store, the in-memory backend, a visibility rule."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from slackbot.backends.base import ModelState, ServerError
from slackbot.backends.openpipe.statuses import openpipe_lifecycle
from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs.records import JobRecord
from slackbot.jobs.store import JobStore
from slackbot.services.status import LIST_SHOWN, job_status, list_jobs
from slackbot.services.track import Tracked, track
from tests.jobs.helpers import T0, FakeBackend, spec


@dataclass
class OnlyChannels:
    """A user sees the jobs of these channels (a stand-in for ChannelVisibility's public-channel rule)."""

    visible: set[str]
    asked: list[int] = field(default_factory=list)

    def job_visible(self, job: JobRecord, user_id: str, channel_id: str) -> bool:
        self.asked.append(job.id)
        return job.channel_id in self.visible


def create(store: JobStore, slug: str, channel: str = "C1", minutes: int = 0, team: str = "T1") -> JobRecord:
    return store.create_job(
        team_id=team,
        channel_id=channel,
        requester_id="U1",
        backend="fake",
        project="proj-1",
        spec=spec(slug),
        now=T0 + timedelta(minutes=minutes),
    )


def test_list_shows_only_visible_jobs_newest_first(store: JobStore) -> None:
    create(store, "old-public", "C1", 0)
    create(store, "secret", "C2", 1)
    create(store, "new-public", "C1", 2)
    create(store, "other-team", "C1", 3, team="T2")
    text = list_jobs(store, OnlyChannels({"C1"}), "T1", "U9", "C5")
    assert text.splitlines()[0] == "*Recent fine-tunes*"
    assert [line.split("`")[1] for line in text.splitlines()[1:]] == ["new-public", "old-public"]
    assert "secret" not in text and "other-team" not in text


def test_list_stops_at_the_shown_limit_and_says_when_empty(store: JobStore) -> None:
    for n in range(LIST_SHOWN + 3):
        create(store, f"job-{n}", minutes=n)
    visibility = OnlyChannels({"C1"})
    assert len(list_jobs(store, visibility, "T1", "U1", "C1").splitlines()) == 1 + LIST_SHOWN
    assert len(visibility.asked) == LIST_SHOWN  # stops reading as soon as the list is full
    assert list_jobs(store, OnlyChannels(set()), "T1", "U1", "C1").startswith("No fine-tunes yet that you can see")


def test_status_of_a_hidden_job_reads_like_no_job(store: JobStore) -> None:
    create(store, "secret", "C2")
    hidden = job_status(store, OnlyChannels({"C1"}), "T1", "U9", "C1", "secret")
    assert hidden == job_status(store, OnlyChannels({"C1"}), "T1", "U9", "C1", "no-such-job").replace(
        "no-such-job", "secret"
    )
    assert hidden.startswith("No fine-tune named `secret` that you can see")
    shown = job_status(store, OnlyChannels({"C2"}), "T1", "U9", "C1", "secret")
    assert shown.startswith("`secret` is *Submitting* (started by <@U1>; updates in <#C2>)")


def _model(slug: str) -> ModelState:
    return ModelState(
        id=f"id-{slug}",
        slug=slug,
        status="TRAINING",
        lifecycle=openpipe_lifecycle("TRAINING"),
        base_model="b",
        dataset_id="ds-1",
    )


def test_track_follows_a_model_made_elsewhere(store: JobStore) -> None:
    backend = FakeBackend()
    backend.models["made-in-ui"] = _model("made-in-ui")
    tracked = track(store, [backend], OnlyChannels({"C1"}), "T1", "U1", "C1", "made-in-ui", now=T0)
    assert tracked.say is None and tracked.job_id is not None
    job = store.get(tracked.job_id)
    assert job is not None and (job.slug, job.channel_id, job.status, job.project) == (
        "made-in-ui",
        "C1",
        "TRAINING",
        "proj-1",
    )
    again = track(store, [backend], OnlyChannels({"C1"}), "T1", "U2", "C3", "made-in-ui", now=T0)
    assert again == Tracked(say="`made-in-ui` is already followed in <#C1>.")
    hidden = track(store, [backend], OnlyChannels(set()), "T1", "U2", "C3", "made-in-ui", now=T0)
    assert hidden == Tracked(say="`made-in-ui` is already followed in a private channel or DM.")


class NamedFake(FakeBackend):
    """The in-memory backend under another backend's name (the message names the declared backend)."""

    def __init__(self, name: str, project: str = "proj-1") -> None:
        super().__init__(project)
        self._name = name

    @property
    def name(self) -> str:
        return self._name


def test_track_says_why_not(store: JobStore) -> None:
    backend = NamedFake("openpipe")
    missing = track(store, [backend], OnlyChannels({"C1"}), "T1", "U1", "C1", "nope", now=T0)
    assert missing == Tracked(say="There is no model `nope` in this OpenPipe project.")
    backend.models["flaky"] = _model("flaky")
    backend.fail_next["get"] = [ServerError("upstream <b>down</b>", status=503)]
    failed = track(store, [backend], OnlyChannels({"C1"}), "T1", "U1", "C1", "flaky", now=T0)
    assert failed.job_id is None and failed.say is not None
    assert failed.say.startswith("Could not look up `flaky`:\n> ") and "<b>" not in failed.say
    assert store.by_slug("T1", "flaky") is None


def test_a_refused_job_does_not_block_tracking_its_slug(store: JobStore) -> None:
    refused = create(store, "reused")
    assert store.reject(refused.id, "quota exceeded", [], now=T0)
    backend = FakeBackend()
    backend.models["reused"] = _model("reused")
    tracked = track(store, [backend], OnlyChannels({"C1"}), "T1", "U1", "C1", "reused", now=T0)
    assert tracked.say is None and tracked.job_id not in (None, refused.id)
    refused_row = store.get(refused.id)
    assert refused_row is not None and refused_row.lifecycle is Lifecycle.REJECTED


def test_track_with_several_backends_looks_in_each_or_in_the_one_named(store: JobStore) -> None:
    openpipe, toy = NamedFake("openpipe", "op-1"), NamedFake("toy", "toy-1")
    toy.models["only-in-toy"] = _model("only-in-toy")
    openpipe.models["in-both"], toy.models["in-both"] = _model("in-both"), _model("in-both")
    everyone = OnlyChannels({"C1"})
    # A bare slug: the first backend that has it.
    found = track(store, [openpipe, toy], everyone, "T1", "U1", "C1", "only-in-toy", now=T0)
    job = store.by_slug("T1", "only-in-toy")
    assert found.job_id is not None and job is not None and (job.backend, job.project) == ("toy", "toy-1")
    # `backend:slug` picks the backend, even when another lists the slug first.
    named = track(store, [openpipe, toy], everyone, "T1", "U1", "C1", "toy:in-both", now=T0)
    job = store.by_slug("T1", "in-both")
    assert named.job_id is not None and job is not None and job.backend == "toy"
    assert openpipe.calls == ["get:only-in-toy"]  # the named backend alone was asked for "in-both"
    missing = track(store, [openpipe, toy], everyone, "T1", "U1", "C1", "nowhere", now=T0)
    assert missing == Tracked(say="There is no model `nowhere` in this OpenPipe or toy project.")
    # A prefix that names no backend is part of the slug.
    odd = track(store, [openpipe, toy], everyone, "T1", "U1", "C1", "team:model", now=T0)
    assert odd == Tracked(say="There is no model `team:model` in this OpenPipe or toy project.")
