"""view_submission: validate, answer field errors inside Slack's 3 s, then start the job after the modal closes."""

from __future__ import annotations

import logging
import time
from concurrent.futures import wait
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from slackbot import ids
from slackbot.backends.base import BackendError, Dataset
from slackbot.backends.registry import form_for
from slackbot.blocks.modal import dataset_name_from_label
from slackbot.catalog import NotReady
from slackbot.forms import (
    AnyOf,
    FormContext,
    FormDeclaration,
    FormErrors,
    FormState,
    MetadataError,
    ModalMetadata,
    default_option,
    field_block_id,
    form_state_from_view,
    parse_form,
    state_option,
)
from slackbot.jobs.records import JobRecord
from slackbot.jobs.submit import SubmitRequest
from slackbot.listeners.context import dig, ephemeral, form_of, team_of, user_of
from slackbot.text import mrkdwn

if TYPE_CHECKING:
    from slackbot.runtime import Runtime

log = logging.getLogger("slackbot.listeners")

# Lookups that make validation more precise (dataset still there? slug taken?) share this budget; whatever has
# not answered by then is left to the service, which refuses bad requests itself (and the user gets "Edit and
# retry"). Keeps the ack well inside Slack's 3 s.
LOOKUP_BUDGET_SECONDS = 1.0
# A catalog answer this recent is trusted at submission: re-asking OpenPipe would make every submission wait on
# it, and anything that changed since is refused by the service itself, with "Edit and retry".
TRUST_SECONDS = 30.0


def register(app: App, runtime: Runtime) -> None:
    @app.view(ids.VIEW_FINETUNE)
    def submit(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        team, user = team_of(body), user_of(body)
        try:
            metadata = ModalMetadata.decode(view.get("private_metadata"))
        except MetadataError:
            ack(response_action="errors", errors={ids.BLOCK_DATASET: _DAMAGED})
            return
        if team != metadata.team_id or not user:
            ack(response_action="errors", errors={ids.BLOCK_DATASET: _DAMAGED})
            return
        state_values = view.get("state", {}).get("values") if isinstance(view.get("state"), dict) else None
        # Only what is on screen is submitted: `metadata.kept` (values of hidden inputs) is deliberately not read.
        state = form_state_from_view(state_values, view.get("blocks"))
        form = form_of(runtime, metadata)
        option = state_option(form, state) or default_option(form)
        # Errors about the whole request go on the first field: the option's when the backend has one.
        first = form.option or "dataset"
        decision = runtime.permissions.check(user, metadata.channel_id)
        if not decision.allowed:
            ack(response_action="errors", errors={field_block_id(form, first, option): decision.reason})
            return

        ctx, dataset = _context(runtime, team, state, form, option)
        result = parse_form(state, ctx)
        if isinstance(result, FormErrors):
            ack(response_action="errors", errors=dict(result))
            return
        request = SubmitRequest(
            team_id=team,
            user_id=user,
            channel_id=metadata.channel_id,
            thread_ts=metadata.thread_ts,
            spec=result,
            dataset_name=dataset.name if dataset else None,
            dataset_entries=dataset.entry_count if dataset and dataset.entry_count else None,
            form_state=state,
            submission_key=dig(view, "id"),
        )
        # Room to start it after the ack, or the form says so now: with the modal still open nothing typed is lost
        # and the user knows at once; a job accepted but queued behind an unbounded backlog would start (or be
        # told "not started") long after, and a refusal posted in the channel would make them type it all again.
        if not runtime.reserve_after_ack():
            log.warning("after-ack pool full; submission refused in the form", extra={"team": team})
            ack(response_action="errors", errors={field_block_id(form, "slug", option): _BUSY})
            return
        # The job row is written before the modal closes, so an accepted form is never lost (a restart, a
        # backlog of creates); the slow part, OpenPipe's create, runs after Slack got its answer.
        try:
            recorded = runtime.submitter.record(request)
        except Exception:
            runtime.unreserve_after_ack()
            log.exception("could not record a submission", extra={"team": team, "slug": result.slug})
            ack(response_action="errors", errors={field_block_id(form, "slug", option): _NOT_SAVED})
            return
        if not recorded.created:
            runtime.unreserve_after_ack()
            if recorded.job.submission_key is not None and recorded.job.submission_key == request.submission_key:
                ack()  # Slack sent this submission again: the first delivery has it in hand
                return
            # Taken since the form was checked (another submission a moment ago): the user picks another.
            taken = f'"{result.slug}" was just taken by another job: choose a different slug.'
            ack(response_action="errors", errors={field_block_id(form, "slug", option): taken})
            return
        ack()  # the modal closes now; the job starts after Slack got its answer
        runtime.run_after_ack(_start, runtime, client, recorded.job, request)


def _start(runtime: Runtime, client: WebClient, job: JobRecord, request: SubmitRequest) -> None:
    try:
        outcome = runtime.submitter.start(job, request.spec)
    except Exception:
        # The job row is followed by the tracker; the user must not be left guessing.
        log.exception("submission failed", extra={"team": request.team_id, "slug": request.spec.slug})
        ephemeral(
            client,
            request.channel_id,
            request.user_id,
            f"Something went wrong while starting `{request.spec.slug}`; check `/finetune status {request.spec.slug}`.",
        )
        return
    log.info(
        "submission handled",
        extra={"team": request.team_id, "job_id": outcome.job.id, "slug": outcome.job.slug, "new_job": outcome.created},
    )
    if outcome.error is not None and not outcome.rejected:
        form = form_for(request.spec.backend)
        ephemeral(
            client,
            request.channel_id,
            request.user_id,
            f"{form.service if form else 'The service'} did not confirm `{request.spec.slug}` yet "
            f"({mrkdwn(outcome.error.message, 500)}). "
            "I'll keep checking and post in the channel as soon as it answers.",
        )


_NOT_SAVED = (
    "Your request could not be saved just now (the bot's database did not answer), so nothing was started. "
    "Please submit again."
)
_BUSY = (
    "The bot is starting a lot of other fine-tunes right now, so this one was not submitted. Everything you typed is "
    "still here: please submit again in a minute."
)
_DAMAGED = "This form could not be read back (it may be from an older version). Close it and run /finetune again."


def _context(
    runtime: Runtime, team: str, state: FormState, form: FormDeclaration, option: str | None
) -> tuple[FormContext, Dataset | None]:
    """What validation needs: the project's datasets and model slugs, from the catalog when recent enough, else
    fetched within the budget. Whatever is still unknown is left to the service (which refuses, and the user
    gets "Edit and retry")."""
    catalog = runtime.catalog_for(form.backend)
    started = time.monotonic()
    # Recent enough in the catalog (the usual case): no thread hop; otherwise fetched alongside the datasets.
    slugs = catalog.fresh_slugs(TRUST_SECONDS)
    slugs_f = (
        None
        if slugs is not None
        else runtime.lookups.submit(catalog.existing_slugs, LOOKUP_BUDGET_SECONDS, TRUST_SECONDS)
    )
    chosen = state.get("dataset")
    chosen = chosen if isinstance(chosen, str) else ""
    known: dict[str, Dataset] = {}
    verified = False
    try:
        known = {d.id: d for d in catalog.recent_datasets(LOOKUP_BUDGET_SECONDS, TRUST_SECONDS)}
        verified = True
    except NotReady:
        # Slow: the cached list still tells a vanished dataset from one we listed a moment ago.
        known = {d.id: d for d in catalog.cached_datasets() or []}
        verified = bool(known) and chosen not in known
    except BackendError:
        pass
    if not verified and chosen and chosen != ids.OPTION_ERROR_VALUE:
        # Could not check in time: trust the picked option (Slack only offers what we listed).
        label = state.get("dataset_label")
        known = {chosen: Dataset(id=chosen, name=dataset_name_from_label(label) if isinstance(label, str) else chosen)}

    # Slugs: this workspace's jobs (instant, includes ones whose model is still being created) and the project's
    # models (the catalog, or a fresh list within what is left of the budget).
    if slugs_f is not None:
        wait([slugs_f], timeout=max(0.0, LOOKUP_BUDGET_SECONDS - (time.monotonic() - started)))
        answered = slugs_f.done() and slugs_f.exception() is None
        # Not in time: the cached slugs, older than we would like but better than none.
        slugs = slugs_f.result() if answered else catalog.cached_slugs()
    taken = AnyOf((runtime.store.team_slugs(team), slugs or frozenset()))
    base_models = catalog.base_models(option, wait=0.0)
    ctx = FormContext(known_datasets=known, base_models=base_models, existing_slugs=taken, form=form)
    return ctx, known.get(chosen)
