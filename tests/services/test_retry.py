""" "Edit and retry" as a service: a real store (SQLite, and PostgreSQL when reachable), a permission rule."""

from __future__ import annotations

from slackbot.backends.openpipe.fields import OPENPIPE_FORM
from slackbot.forms.refusal import TOP
from slackbot.jobs.records import JobRecord
from slackbot.jobs.store import JobStore
from slackbot.permissions import Decision
from slackbot.services.retry import GONE, RetryForm, retry_form
from tests.jobs.helpers import T0, spec

TYPED = {"slug": "my-model", "sft_epochs": "3", "dpo_on": True, "dataset": "ds-1", "junk": ["not", "a", "value"]}


def refused(store: JobStore, *, issues: list[str], team: str = "T1") -> JobRecord:
    job = store.create_job(
        team_id=team,
        channel_id="C1",
        thread_ts="1700000000.000100",
        requester_id="U1",
        backend="openpipe",
        project="proj-1",
        spec=spec("my-model"),
        form_state=TYPED,
        now=T0,
    )
    assert store.reject(job.id, "Input validation failed", issues, T0)
    return job


def anyone(user: str, channel: str) -> Decision:
    return Decision(True, "")


def only_in_c9(user: str, channel: str) -> Decision:
    return Decision(channel == "C9", "Fine-tunes can only be started in <#C9>.")


def ask(store: JobStore, ref: str | None, *, team: str = "T1", user: str = "U2", several: bool = False) -> object:
    return retry_form(store, anyone, OPENPIPE_FORM, team, user, ref, several_backends=several)


def test_a_refused_job_reopens_filled_in_with_the_refusal_under_its_fields(store: JobStore) -> None:
    job = refused(store, issues=["body.trainingConfig.sft_hyperparameters.num_epochs: Expected number"])
    found = ask(store, str(job.id))
    assert isinstance(found, RetryForm)
    meta = found.metadata
    assert (meta.team_id, meta.user_id, meta.channel_id, meta.thread_ts) == ("T1", "U2", "C1", "1700000000.000100")
    assert (meta.origin, meta.retry_of, meta.backend) == ("retry", job.id, None)  # one backend: none named
    # What was typed comes back; anything that is not a form value (a damaged row) does not.
    assert found.state == {"slug": "my-model", "sft_epochs": "3", "dpo_on": True, "dataset": "ds-1"}
    assert found.errors is not None
    assert found.errors["sft_epochs"] == "body.trainingConfig.sft_hyperparameters.num_epochs: Expected number"
    assert found.errors[TOP] == "OpenPipe refused the last attempt: Input validation failed (and see below)"


def test_with_several_backends_the_form_names_the_jobs_backend(store: JobStore) -> None:
    job = refused(store, issues=[])
    found = ask(store, str(job.id), several=True)
    assert isinstance(found, RetryForm) and found.metadata.backend == "openpipe"
    assert found.errors == {TOP: "OpenPipe refused the last attempt: Input validation failed"}


def test_a_job_without_an_error_reopens_without_errors(store: JobStore) -> None:
    job = store.create_job(
        team_id="T1", channel_id="C1", requester_id="U1", backend="openpipe", project="p", spec=spec("x"), now=T0
    )
    found = ask(store, str(job.id))
    assert isinstance(found, RetryForm) and found.errors is None and found.state == {}


def test_missing_foreign_or_unreadable_jobs_all_read_as_gone(store: JobStore) -> None:
    job = refused(store, issues=[])
    assert ask(store, str(job.id + 1000)) == GONE  # no such job
    assert ask(store, str(job.id), team="T2") == GONE  # another workspace's job is invisible
    assert ask(store, str(job.id), user="") == GONE
    for ref in (None, "", "12a", "-1", "1.0"):
        assert ask(store, ref) == GONE


def test_a_user_who_may_not_start_here_gets_the_reason_and_no_form(store: JobStore) -> None:
    job = refused(store, issues=[])
    said = retry_form(store, only_in_c9, OPENPIPE_FORM, "T1", "U2", str(job.id), several_backends=False)
    assert said == "Fine-tunes can only be started in <#C9>."
