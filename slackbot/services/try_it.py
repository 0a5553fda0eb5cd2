"""Try it: which finished model a click may call, asking it within the time limit, and sharing the exchange.

Allowed to whoever may start fine-tunes (the same permissions), for jobs they may see, of backends that declare
`chat_completions`, once the job succeeded and its backend names a model to call. Each refusal is a sentence for
the modal. The exchange is posted only when shared, to the job's thread through the outbox: told once per
exchange, whoever clicks how often.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from slackbot.backends.base import (
    Backend,
    BackendError,
    ChatMessage,
    JobDetails,
    ModelState,
    NotFoundError,
    ServesChat,
    TransportError,
)
from slackbot.backends.declaration import Capabilities
from slackbot.backends.registry import declaration
from slackbot.blocks.card import status_shown
from slackbot.domain.events import Notice
from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs.records import JobRecord
from slackbot.jobs.store import JobStore
from slackbot.permissions import Decision
from slackbot.services import Visibility
from slackbot.text import code, mrkdwn

log = logging.getLogger("slackbot.services")

NO_SUCH_JOB = "That fine-tune is not one you can see (it may have been deleted)."
# The error's own words are shown after these (escaped): they say what the service said.
FAILED_WORDS = 500


@dataclass(frozen=True)
class Target:
    """A finished job and the model name its backend is called with."""

    job: JobRecord
    model: str
    backend: ServesChat

    @property
    def slug(self) -> str:
        return self.job.slug


@dataclass(frozen=True)
class Answer:
    """The model's text, or (`problem`) why there is none, said for the modal (outside words escaped)."""

    text: str | None = None
    problem: str | None = None


def state_of(job: JobRecord) -> ModelState:
    """The job as its backend last described it (no request): what `ServesChat.chat_model` reads."""
    return ModelState(
        id=job.model_id or job.slug,
        slug=job.slug,
        status=job.status or job.lifecycle.value,
        lifecycle=job.lifecycle,
        base_model=job.base_model,
        dataset_id=job.dataset_id,
        error_message=job.error_message,
        details=job.details or JobDetails(),
    )


def _service(backend: str) -> str:
    found = declaration(backend)
    return found.display_name if found is not None else backend


@dataclass
class TryIt:
    store: JobStore
    backends: Mapping[str, Backend]
    capabilities: Callable[[JobRecord], Capabilities]
    permission: Callable[[str, str | None], Decision]
    visibility: Visibility
    timeout_seconds: float
    clock: Callable[[], datetime]

    def target(
        self, team: str | None, user: str | None, job_id: int | None, channel: str | None = None
    ) -> Target | str:
        """What a click on Try it may call, or what to say instead. `channel`: where the click came from (a
        job of a private conversation is seen there); None from the Home tab."""
        job = self.store.get(job_id) if job_id is not None else None
        if job is None or not team or not user or job.team_id != team:
            return NO_SUCH_JOB
        if not self.visibility.job_visible(job, user, channel or ""):
            return NO_SUCH_JOB
        return self.servable(job, user)

    def servable(self, job: JobRecord, user: str) -> Target | str:
        """The checks that need no Slack call (they run again when the question is submitted)."""
        # Who may: as for starting jobs, in the job's own channel (where it was started, so allowed then).
        decision = self.permission(user, job.channel_id)
        if not decision.allowed:
            return decision.reason
        backend = self.backends.get(job.backend)
        service = _service(job.backend)
        if backend is None or not self.capabilities(job).chat_completions or not isinstance(backend, ServesChat):
            return f"Models trained on {mrkdwn(service, 60)} cannot be called from Slack."
        if job.lifecycle is not Lifecycle.SUCCEEDED:
            return f"{code(job.slug)} is *{status_shown(job)}*: only a finished model can be tried."
        model = backend.chat_model(state_of(job))
        if model is None:
            service = mrkdwn(service, 60)
            return f"{code(job.slug)} cannot be called: {service} does not serve it (it may not be deployed)."
        return Target(job, model, backend)

    def submitted(self, team: str | None, user: str | None, job_id: int | None) -> Target | str:
        """The target of a submitted question: the modal was opened for a job this user could see; permission
        and state are checked again, without calling Slack (Slack waits 3 s for the answer)."""
        job = self.store.get(job_id) if job_id is not None else None
        if job is None or not team or not user or job.team_id != team:
            return NO_SUCH_JOB
        return self.servable(job, user)

    def ask(self, target: Target, prompt: str, system: str = "") -> Answer:
        """Ask the model; an answer or a sentence saying why there is none, within `timeout_seconds`."""
        messages = [ChatMessage(role="system", content=system)] if system.strip() else []
        messages.append(ChatMessage(role="user", content=prompt))
        limit = self.timeout_seconds
        model = code(target.model, 150)
        started = time.monotonic()
        try:
            # The backend keeps to the limit itself (ServesChat.chat's `timeout_seconds`): it gives up with a
            # TransportError rather than hold this after-ack slot longer.
            reply = target.backend.chat(target.model, messages, timeout_seconds=limit)
        except TransportError as exc:
            if time.monotonic() - started >= limit * 0.9:
                return Answer(problem=_too_slow(model, limit))
            return Answer(problem=f"{model} could not be reached: {mrkdwn(exc.describe(), FAILED_WORDS)}")
        except NotFoundError as exc:
            service = _service(target.job.backend)
            return Answer(
                problem=f"{model} cannot be called: {mrkdwn(service, 60)} does not serve it "
                f"({mrkdwn(exc.describe(), FAILED_WORDS)})."
            )
        except BackendError as exc:
            return Answer(problem=f"The call to {model} failed: {mrkdwn(exc.describe(), FAILED_WORDS)}")
        except Exception:
            log.exception("try it failed", extra={"job_id": target.job.id})
            return Answer(problem=f"The call to {model} failed unexpectedly; please try again.")
        log.info(
            "try it answered",
            extra={"job_id": target.job.id, "ms": round((time.monotonic() - started) * 1000), "chars": len(reply.text)},
        )
        return Answer(text=reply.text)

    def share(self, target: Target, key: str, text: str) -> bool:
        """Queue the exchange (our mrkdwn) for the job's thread; False if this exchange was shared already."""
        digest = hashlib.sha256(f"{key}\n{text}".encode()).hexdigest()[:24]
        return self.store.queue_notice(target.job.id, f"notice:try:{digest}", Notice(text=text), self.clock())


def _too_slow(model: str, limit: float) -> str:
    return (
        f"{model} did not answer within {limit:g} s, so I stopped waiting. Try a shorter question, or again in a "
        "moment (the limit is TRY_IT_TIMEOUT_SECONDS)."
    )
