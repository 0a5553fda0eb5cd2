"""`TogetherBackend`: the `Backend` protocol and its optional capabilities on top of Together's fine-tuning API.

Together follows a job by its id (`ft-…`), known only once the create answered (`follows_by_id` in its
declaration). The name the user typed is the job's `suffix`; a create whose outcome is unknown is looked for by
that suffix (the newest listed job with it) until its id is known. `total_price` is in nanodollars: the unit the
SDK 3.1.1 divides by to show dollars (`together.lib.utils.tools.finetune_price_to_dollars`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection, Iterable
from datetime import UTC, datetime

from slackbot.backends.base import (
    BackendError,
    ChatMessage,
    ChatReply,
    Dataset,
    EventLevel,
    FineTuneSpec,
    JobDetails,
    JobEvent,
    MetricPoint,
    ModelState,
    NotFoundError,
    PriceQuote,
    ProtocolError,
)
from slackbot.backends.declaration import BackendConfig
from slackbot.backends.http_backend import HttpBackend
from slackbot.backends.together import upload
from slackbot.backends.together.client import TogetherClient
from slackbot.backends.together.fields import FULL, to_create_request
from slackbot.backends.together.statuses import together_lifecycle
from slackbot.backends.together.wire import (
    ChatMessageBody,
    ChatRequest,
    FineTuneEvent,
    FineTuneJob,
    MetricsFilter,
    ModelLimits,
)
from slackbot.domain.lifecycle import Lifecycle

NANODOLLARS = 1_000_000_000  # total_price's unit
# Together's job ids: "ft-" and a UUID. Anything else a job is keyed by is the suffix its create was sent with.
_JOB_ID = re.compile(r"ft-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Event types worth a reply in the thread. The rest are routine (a job's start, each download) or told already by
# the status reply they come with (training_complete with "compressing", job_complete with "completed").
NOTABLE_EVENTS = frozenset(
    {
        "checkpoint_save",
        "epoch_complete",
        "billing_limit",
        "warning",
        "job_error",
        "job_restarted",
        "job_stopped",
        "refund",
    }
)
_LEVELS = {"warning": EventLevel.WARNING, "error": EventLevel.ERROR}


def is_job_id(key: str) -> bool:
    return _JOB_ID.fullmatch(key) is not None


def to_state(job: FineTuneJob, key: str | None = None) -> ModelState:
    """A job as the neutral state; `key` is what the tracker asked for (the suffix, for a create not confirmed)."""
    lifecycle = together_lifecycle(job.status)
    return ModelState(
        id=job.id,
        slug=key or job.id,
        name=job.suffix,
        status=job.status,
        lifecycle=lifecycle,
        base_model=job.model or "",
        dataset_id=job.training_file or "",
        error_message=_error_of(job) if lifecycle is Lifecycle.FAILED else None,
        updated=job.updated_at,
        details=details_of(job),
    )


def details_of(job: FineTuneJob) -> JobDetails:
    lifecycle = together_lifecycle(job.status)
    progress: float | None = None
    if lifecycle is Lifecycle.SUCCEEDED:
        progress = 1.0
    elif job.epochs_completed is not None and job.n_epochs:
        progress = min(1.0, max(0.0, job.epochs_completed / job.n_epochs))
    # Steps come with the events of a job's own read (the list carries none): the furthest step any event names.
    counted = [(e.step, e.total_steps) for e in job.events or [] if e.total_steps and e.step is not None]
    steps_total = counted[-1][1] if counted else None
    steps_done = min(max(step for step, _ in counted), steps_total) if counted and steps_total else None
    if lifecycle is Lifecycle.SUCCEEDED and steps_total:
        steps_done = steps_total
    if steps_total and lifecycle is Lifecycle.RUNNING and steps_done is not None:
        progress = max(progress or 0.0, steps_done / steps_total)
    eta = None
    if job.progress is not None and job.progress.estimate_available and not lifecycle.is_terminal:
        eta = float(max(0, job.progress.seconds_remaining))
    price = job.total_price / NANODOLLARS if job.total_price is not None and job.total_price >= 0 else None
    return JobDetails(
        progress=progress,
        eta_seconds=eta,
        price_usd=price,
        tokens=job.token_count if job.token_count is not None and job.token_count >= 0 else None,
        output_model=job.model_output_name,
        steps_done=steps_done,
        steps_total=steps_total,
    )


def _error_of(job: FineTuneJob) -> str | None:
    errors = [e.message for e in job.events or [] if e.type == "job_error" or e.level == "error"]
    return errors[-1] if errors and errors[-1] else None


def to_event(job_id: str, event: FineTuneEvent) -> JobEvent:
    # Stable across reads: the log is append-only and these fields do not change once written.
    digest = hashlib.sha256(f"{event.created_at}|{event.type}|{event.step}|{event.message}".encode()).hexdigest()
    level = _LEVELS.get(event.level or "", EventLevel.INFO)
    return JobEvent(
        key=f"{job_id}:{digest[:16]}",
        at=event.created_at,
        level=level,
        kind=event.type,
        message=event.message,
        notable=event.type in NOTABLE_EVENTS or level is not EventLevel.INFO,
    )


def to_metric(row: dict[str, float]) -> MetricPoint | None:
    step = row.get("train/global_step", row.get("eval/global_step"))
    if step is None or step < 0:
        return None
    return MetricPoint(
        step=int(step), train_loss=row.get("train/loss"), eval_loss=row.get("eval/loss"), epoch=row.get("train/epoch")
    )


class TogetherBackend(HttpBackend[TogetherClient]):
    name = "together"
    client_class = TogetherClient

    # --- catalogue ----------------------------------------------------------------------------------------

    def list_datasets(self) -> list[Dataset]:
        found = []
        for f in self.client.list_files().fine_tune_files():
            lines = f.validation_report.nlines if f.validation_report is not None else None
            created = datetime.fromtimestamp(f.created_at, UTC).isoformat() if f.created_at else None
            found.append(Dataset(id=f.id, name=f.filename or f.id, entry_count=max(lines or 0, 0), created=created))
        return found

    def known_base_models(self, option: str | None) -> tuple[str, ...]:
        return ()  # Together's list is the service's: read (and cached by the catalog) through list_base_models

    def offers_own_models(self, option: str | None) -> bool:
        return False

    def list_base_models(self, option: str | None) -> list[str]:
        return list(self.client.supported_models().models)

    def model_limits(self, base_model: str) -> ModelLimits:
        """The bounds of the form for this base model (cached by the catalog)."""
        return self.client.model_limits(base_model)

    # --- jobs ---------------------------------------------------------------------------------------------

    def create(self, spec: FineTuneSpec) -> ModelState:
        """Estimate, then create only if Together says the account may proceed (a refusal otherwise); sent once."""
        default_rank = None
        if spec.option != FULL and spec.value("lora_r") is None:
            # As the SDK does: the model's own default rank, when its limits give one.
            try:
                lora = self.client.model_limits(spec.base_model).lora_training
                default_rank = lora.default_rank if lora is not None else None
            except BackendError:
                default_rank = None
        request = to_create_request(spec, default_rank=default_rank)
        _, job = self.client.start_job(request)
        return to_state(job)

    def list_models(self) -> list[ModelState]:
        return [to_state(job) for job in self.client.list_jobs().data]

    def refresh(self, slugs: Collection[str], *, listed_enough: Collection[str] = ()) -> dict[str, ModelState]:
        """One `GET /fine-tunes` for every job of the account; `GET /fine-tunes/{id}` only for ids missing from
        it (and for a job that just failed, whose reason only its own read carries). A key that is not a job id
        (a create whose outcome is unknown) is answered by the newest listed job with that suffix, under that key.
        """
        wanted = set(slugs)
        if not wanted:
            return {}
        listed = self.client.list_jobs().data
        found = {job.id: to_state(job) for job in listed}
        by_suffix = _newest_by_suffix(listed)
        enough = set(listed_enough)
        for key in sorted(wanted):
            if is_job_id(key):
                state = found.get(key)
                if state is None and key not in enough:
                    state = self._read(key)
                elif state is not None and state.lifecycle is Lifecycle.FAILED and state.error_message is None:
                    state = self._read(key) or state
                if state is not None:
                    found[key] = state
            elif key in by_suffix:
                found[key] = to_state(by_suffix[key], key)
        return found

    def _read(self, job_id: str) -> ModelState | None:
        try:
            return to_state(self.client.get_job(job_id))
        except NotFoundError:
            return None

    def get(self, slug: str) -> ModelState:
        """A job by its id, or else the newest job with this suffix (`/finetune track <job id or suffix>`)."""
        if is_job_id(slug):
            return to_state(self.client.get_job(slug))
        match = _newest_by_suffix(self.client.list_jobs().data).get(slug)
        if match is None:
            raise NotFoundError(f"Together has no fine-tune job with the id or suffix {slug!r}")
        return to_state(self.client.get_job(match.id))

    def delete(self, slug: str) -> bool:
        """True if the job was deleted; False if it no longer existed."""
        try:
            self.client.delete_job(self._job_id(slug))
        except NotFoundError:
            return False
        return True

    def cancel(self, slug: str) -> ModelState:
        return to_state(self.client.cancel_job(self._job_id(slug)))

    def estimate_price(self, spec: FineTuneSpec) -> PriceQuote:
        request = to_create_request(spec, default_rank=_rank_of(spec))
        estimate = self.client.estimate_price(request.estimate_request())
        if not estimate.estimation_available:
            return PriceQuote(available=False, reason=estimate.unavailable_reason)
        tokens = estimate.estimated_train_token_count
        allowed = estimate.allowed_to_proceed is not False
        price = estimate.estimated_total_price
        reason = None
        if not allowed:
            limit = f" (${estimate.user_limit:,.2f})" if estimate.user_limit is not None else ""
            reason = f"the estimated price is over your Together account's limit{limit}"
        return PriceQuote(
            total_usd=max(price, 0.0) if price is not None else None,
            tokens=int(tokens) if tokens is not None and tokens >= 0 else None,
            epochs=float(request.n_epochs) if request.n_epochs is not None else None,
            allowed=allowed,
            limit_usd=estimate.user_limit,
            reason=reason,
        )

    def events(self, slug: str) -> list[JobEvent]:
        job_id = self._job_id(slug)
        return [to_event(job_id, e) for e in self.client.list_events(job_id).data]

    def metrics(self, slug: str, *, after_step: int | None = None) -> list[MetricPoint]:
        filters = MetricsFilter(global_step_from=after_step + 1) if after_step is not None else None
        rows = self.client.metrics(self._job_id(slug), filters).metrics
        points = [p for p in (to_metric(row) for row in rows) if p is not None]
        return [p for p in points if after_step is None or p.step > after_step]

    def chat_model(self, state: ModelState) -> str | None:
        if state.lifecycle is not Lifecycle.SUCCEEDED:
            return None
        return state.details.output_model

    def chat(self, model: str, messages: list[ChatMessage], *, timeout_seconds: float) -> ChatReply:
        request = ChatRequest(model=model, messages=[ChatMessageBody(role=m.role, content=m.content) for m in messages])
        answer = self.client.chat(request, timeout_seconds=timeout_seconds)
        if not answer.choices or answer.choices[0].message is None:
            raise ProtocolError("Together's chat answer had no message")
        choice = answer.choices[0]
        assert choice.message is not None
        return ChatReply(text=choice.message.content or "", model=answer.model, finish_reason=choice.finish_reason)

    def upload_dataset(
        self,
        name: str,
        lines: Iterable[bytes],
        *,
        total_bytes: int,
        progress: Callable[[int, int], None] | None = None,
    ) -> Dataset:
        """Capabilities.dataset_upload: the lines as one JSONL file with purpose fine-tune (see upload.py)."""
        return upload.upload_dataset(self.client, name, lines, total_bytes=total_bytes, progress=progress)

    def _job_id(self, key: str) -> str:
        """The job id a key stands for: itself, or the newest job with that suffix."""
        if is_job_id(key):
            return key
        match = _newest_by_suffix(self.client.list_jobs().data).get(key)
        if match is None:
            raise NotFoundError(f"Together has no fine-tune job with the id or suffix {key!r}")
        return match.id


def _rank_of(spec: FineTuneSpec) -> int | None:
    value = spec.value("lora_r")
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _newest_by_suffix(jobs: Iterable[FineTuneJob]) -> dict[str, FineTuneJob]:
    """Suffix → the newest job with it (created_at is ISO 8601, so it orders as text)."""
    newest: dict[str, FineTuneJob] = {}
    for job in jobs:
        if not job.suffix:
            continue
        seen = newest.get(job.suffix)
        if seen is None or (job.created_at or "") >= (seen.created_at or ""):
            newest[job.suffix] = job
    return newest


def from_config(config: BackendConfig) -> TogetherBackend:
    """The factory named in Together's declaration."""
    return TogetherBackend(config.api_key, config.base_url, timeout=config.timeout_seconds)
