"""Submitting the form: validate within Slack's 3 s, record the job before the ack, start it after the ack.

`accept` runs while Slack waits: field errors for the modal, or the job row written (so an accepted form is never
lost: a restart or a backlog of creates finds the row) with a slot reserved in the after-ack pool. `start` runs
after the ack: the service's create, which may be slow. The listener acks between the two.

For a backend that estimates prices (`quotes_price`), the form's submit only `check`s it and the listener pushes
a confirmation; `estimate` runs after that ack, and the confirmation's submit is the `accept` above.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor, wait
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Protocol

from slackbot import ids
from slackbot.backends.base import BackendError, Dataset, EstimatesPrice, PriceQuote
from slackbot.backends.registry import form_for
from slackbot.blocks.modal import dataset_name_from_label
from slackbot.catalog import Catalog, NotReady
from slackbot.forms import (
    AnyOf,
    FormContext,
    FormDeclaration,
    FormErrors,
    FormState,
    ModalMetadata,
    default_option,
    field_block_id,
    parse_form,
    state_option,
)
from slackbot.jobs.records import JobRecord
from slackbot.jobs.store import JobStore
from slackbot.jobs.submit import SubmitRequest, SubmitService
from slackbot.permissions import Decision
from slackbot.text import code, mrkdwn, plain

log = logging.getLogger("slackbot.services")

# Lookups that make validation more precise (dataset still there? slug taken?) share this budget; whatever has
# not answered by then is left to the service, which refuses bad requests itself (and the user gets "Edit and
# retry"). Keeps the ack well inside Slack's 3 s.
LOOKUP_BUDGET_SECONDS = 1.0
# A catalog answer this recent is trusted at submission: re-asking OpenPipe would make every submission wait on
# it, and anything that changed since is refused by the service itself, with "Edit and retry".
TRUST_SECONDS = 30.0

NOT_SAVED = (
    "Your request could not be saved just now (the bot's database did not answer), so nothing was started. "
    "Please submit again."
)
BUSY = (
    "The bot is starting a lot of other fine-tunes right now, so this one was not submitted. Everything you typed is "
    "still here: please submit again in a minute."
)


@dataclass(frozen=True)
class Refused:
    """The modal stays open with these errors (block id -> message); nothing was recorded."""

    errors: dict[str, str]


@dataclass(frozen=True)
class Redelivered:
    """Slack sent this submission again: the first delivery has it in hand. The modal closes, nothing more."""


@dataclass(frozen=True)
class Accepted:
    """The job row is written and an after-ack slot reserved for it: the modal closes, then `start` runs."""

    job: JobRecord
    request: SubmitRequest
    leased_at: float | None = None  # when the row's lease was taken with it (SubmitOutcome.leased_at)


Verdict = Refused | Redelivered | Accepted


class AfterAck(Protocol):
    """The bounded pool of work that follows an ack (see Runtime.reserve_after_ack)."""

    def reserve_after_ack(self) -> bool: ...

    def unreserve_after_ack(self) -> None: ...

    def run_after_ack(self, fn: Callable[..., object], *args: object) -> None: ...


def _no_prices(backend: str) -> EstimatesPrice | None:
    return None


# How long the confirmation waits for the service's estimate before it offers to start anyway.
ESTIMATE_TIMEOUT_SECONDS = 20.0


@dataclass
class Submissions:
    store: JobStore
    submitter: SubmitService
    # The form of a modal (the backend chosen in it, else the default).
    form_of: Callable[[ModalMetadata], FormDeclaration]
    catalog_for: Callable[[str], Catalog]
    lookups: Executor
    permission: Callable[[str, str], Decision]
    pool: AfterAck
    # The price estimator of a backend that quotes before the start (Capabilities.price_estimate); else None.
    pricer: Callable[[str], EstimatesPrice | None] = _no_prices
    estimate_timeout_seconds: float = ESTIMATE_TIMEOUT_SECONDS

    def quotes_price(self, metadata: ModalMetadata) -> bool:
        """Whether this form's backend confirms a price before the job is created."""
        return self.pricer(self.form_of(metadata).backend) is not None

    def check(self, team: str, user: str, metadata: ModalMetadata, state: FormState) -> Refused | SubmitRequest:
        """Validate the submitted `state` (only what is on screen: `metadata.kept` is deliberately not read) into
        the request it would start; nothing is recorded. Called before the ack."""
        form = self.form_of(metadata)
        option = state_option(form, state) or default_option(form)
        # Errors about the whole request go on the first field: the option's when the backend has one.
        first = form.option or "dataset"
        decision = self.permission(user, metadata.channel_id)
        if not decision.allowed:
            return Refused({field_block_id(form, first, option): decision.reason})

        ctx, dataset = validation_context(
            self.catalog_for(form.backend), self.lookups, self.store, team, state, form, option
        )
        result = parse_form(state, ctx)
        if isinstance(result, FormErrors):
            return Refused(dict(result))
        request = SubmitRequest(
            team_id=team,
            user_id=user,
            channel_id=metadata.channel_id,
            thread_ts=metadata.thread_ts,
            spec=result,
            dataset_name=dataset.name if dataset else None,
            dataset_entries=dataset.entry_count if dataset and dataset.entry_count else None,
            form_state=state,
        )
        return request

    def accept(
        self, team: str, user: str, metadata: ModalMetadata, state: FormState, submission_key: str | None
    ) -> Verdict:
        """`check` the submitted `state`, then record the job (keyed by the submission). Called before the ack."""
        checked = self.check(team, user, metadata, state)
        if isinstance(checked, Refused):
            # Slack sent it again after the first delivery recorded it (whose slug is now "taken" by its own job).
            # Looked up only here: a read fewer for every other submission, on the path Slack waits on.
            if submission_key is not None and self.store.by_submission(team, submission_key) is not None:
                return Redelivered()
            return checked
        request = dataclasses.replace(checked, submission_key=submission_key)
        result = request.spec
        slug_block = field_block_id(self.form_of(metadata), "slug", request.spec.option)
        # Room to start it after the ack, or the form says so now: with the modal still open nothing typed is lost
        # and the user knows at once; a job accepted but queued behind an unbounded backlog would start (or be
        # told "not started") long after, and a refusal posted in the channel would make them type it all again.
        if not self.pool.reserve_after_ack():
            log.warning("after-ack pool full; submission refused in the form", extra={"team": team})
            return Refused({slug_block: BUSY})
        # The job row is written before the modal closes, so an accepted form is never lost (a restart, a
        # backlog of creates); the slow part, the service's create, runs after Slack got its answer.
        try:
            recorded = self.submitter.record(request)
        except Exception:
            self.pool.unreserve_after_ack()
            log.exception("could not record a submission", extra={"team": team, "slug": result.slug})
            return Refused({slug_block: NOT_SAVED})
        if not recorded.created:
            self.pool.unreserve_after_ack()
            if recorded.job.submission_key is not None and recorded.job.submission_key == request.submission_key:
                return Redelivered()
            # Taken since the form was checked (another submission a moment ago): the user picks another.
            return Refused(
                {slug_block: f'"{plain(result.slug)}" was just taken by another job: choose a different slug.'}
            )
        return Accepted(recorded.job, request, recorded.leased_at)

    def run_after_ack(self, fn: Callable[..., object], *args: object) -> None:
        """Run `fn(*args)` in the slot `accept` (or `reserve`) reserved."""
        self.pool.run_after_ack(fn, *args)

    def reserve(self) -> bool:
        """A slot in the after-ack pool for the estimate, taken before the ack (False: the pool is full)."""
        return self.pool.reserve_after_ack()

    def unreserve(self) -> None:
        self.pool.unreserve_after_ack()

    def estimate(self, request: SubmitRequest) -> PriceQuote | str:
        """The service's price estimate for the request (after the ack), or why there is none."""
        pricer = self.pricer(request.spec.backend)
        if pricer is None:
            return "this service gives no estimates"
        future = self.lookups.submit(pricer.estimate_price, request.spec)
        try:
            return future.result(timeout=self.estimate_timeout_seconds)
        except FutureTimeout:
            future.cancel()
            return f"it did not answer within {self.estimate_timeout_seconds:g} seconds"
        except BackendError as exc:
            log.info("price estimate failed", extra={"slug": request.spec.slug, "error": exc.describe()})
            return exc.describe()
        except Exception:
            log.exception("price estimate failed", extra={"slug": request.spec.slug})
            return "something went wrong while asking for it"

    def start(self, accepted: Accepted) -> str | None:
        """Create the accepted job at its service (after the ack); what to tell the requester, if anything."""
        request = accepted.request
        try:
            outcome = self.submitter.start(accepted.job, request.spec, accepted.leased_at)
        except Exception:
            # The job row is followed by the tracker; the user must not be left guessing.
            log.exception("submission failed", extra={"team": request.team_id, "slug": request.spec.slug})
            return (
                f"Something went wrong while starting {code(request.spec.slug)}; "
                f"check {code(f'/finetune status {request.spec.slug}')}."
            )
        log.info(
            "submission handled",
            extra={
                "team": request.team_id,
                "job_id": outcome.job.id,
                "slug": outcome.job.slug,
                "new_job": outcome.created,
            },
        )
        if outcome.error is not None and not outcome.rejected:
            form = form_for(request.spec.backend)
            return (
                f"{form.service if form else 'The service'} did not confirm {code(request.spec.slug)} yet "
                f"({mrkdwn(outcome.error.message, 500)}). "
                "I'll keep checking and post in the channel as soon as it answers."
            )
        return None


def validation_context(
    catalog: Catalog,
    lookups: Executor,
    store: JobStore,
    team: str,
    state: FormState,
    form: FormDeclaration,
    option: str | None,
) -> tuple[FormContext, Dataset | None]:
    """What validation needs: the project's datasets and model slugs, from the catalog when recent enough, else
    fetched within the budget. Whatever is still unknown is left to the service (which refuses, and the user
    gets "Edit and retry")."""
    started = time.monotonic()
    # Recent enough in the catalog (the usual case): no thread hop; otherwise fetched alongside the datasets.
    slugs = catalog.fresh_slugs(TRUST_SECONDS)
    slugs_f = (
        None if slugs is not None else lookups.submit(catalog.existing_slugs, LOOKUP_BUDGET_SECONDS, TRUST_SECONDS)
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
    taken = AnyOf((store.team_slugs(team), slugs or frozenset()))
    base_models = catalog.base_models(option, wait=0.0)
    limits = catalog.limits(chosen_model) if isinstance(chosen_model := state.get("base_model"), str) else None
    ctx = FormContext(known_datasets=known, base_models=base_models, existing_slugs=taken, limits=limits, form=form)
    return ctx, known.get(chosen)
