"""A dataset from a file shared in Slack: download it with the bot token, check every line, report in the thread,
upload (all of it, or only the valid lines when the user asks), with progress, then hand the new dataset on.

The file goes to a temporary file as it downloads (never whole in memory) and is read from there twice at most:
once to check it, once to upload it. A file with errors waits (`PENDING_SECONDS`) for "Upload only the valid
lines"; it lives in this process only, so after a restart the button says to share the file again.
"""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
from slack_sdk import WebClient

from slackbot import ids
from slackbot.backends.base import Backend, BackendError, Dataset, Method, UploadsDatasets
from slackbot.backends.datasets import DatasetRules
from slackbot.backends.form import DATASET, DATASET_LABEL
from slackbot.blocks.dataset_report import done_blocks, failed_blocks, progress_blocks, report_blocks
from slackbot.blocks.modal import dataset_label
from slackbot.datasets.validate import Report, human_size, valid_lines, validate_path
from slackbot.forms import (
    AnyOf,
    FormContext,
    FormErrors,
    FormState,
    ModalMetadata,
    default_option,
    parse_form,
    state_option,
)
from slackbot.services.submission import Accepted, Refused, Submissions
from slackbot.text import code, mrkdwn, plain

log = logging.getLogger("slackbot.services.datasets")

MAX_FILE_BYTES: Final = 1 << 30  # what the bot downloads at most (1 GiB)
PENDING_SECONDS: Final = 3600.0  # how long a file with errors waits for "Upload only the valid lines"
PROGRESS_AFTER_SECONDS: Final = 3.0  # an upload shows its progress once it has taken this long
PROGRESS_EVERY_SECONDS: Final = 3.0  # and edits it at most this often
_CHUNK: Final = 1 << 20


class FileProblem(Exception):
    """The file could not be had or is not a dataset file; `str()` is safe to show."""


@dataclass(frozen=True)
class Where:
    """Where the conversation about one file happens."""

    channel: str
    thread_ts: str | None
    user: str


@dataclass
class _Pending:
    path: Path
    name: str
    backend: str
    method: Method
    where: Where
    report: Report
    then: Callable[[Dataset, Where], None] | None
    at: float


@dataclass
class DatasetUploads:
    slack: WebClient
    bot_token: str
    backends: Mapping[str, Backend]
    rules_for: Callable[[str], DatasetRules | None]
    http: httpx.Client | None = None  # made on the first download: a client costs a second of start-up
    workdir: str | None = None
    now: Callable[[], float] = time.monotonic
    max_file_bytes: int = MAX_FILE_BYTES
    _pending: dict[str, _Pending] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # --- the flow -----------------------------------------------------------------------------------------

    def check_file(
        self,
        file_id: str,
        backend: str,
        where: Where,
        *,
        method: Method = Method.SFT,
        then: Callable[[Dataset, Where], None] | None = None,
    ) -> Report | None:
        """Download, check, report in the thread; upload at once when the file is valid. The report, or None
        when the file could not be had (said in the thread)."""
        rules = self.rules_for(backend)
        uploader = self.backends.get(backend)
        if rules is None or not isinstance(uploader, UploadsDatasets):
            self._say(where, f"{mrkdwn(backend)} does not take dataset files here.")
            return None
        try:
            name, path = self._download(file_id)
        except FileProblem as exc:
            self._say(where, f"⚠ {mrkdwn(str(exc), 500)}")
            return None
        where = self._thread(where, f"Checking {code(name)} for {rules.service}…")
        try:
            report = validate_path(path, rules, method)
        except (OSError, ValueError) as exc:
            path.unlink(missing_ok=True)
            self._say(where, f"⚠ {code(name)} could not be checked ({mrkdwn(str(exc), 300)}).")
            return None
        key = None
        if not report.ok and report.valid > 0 and not report.file_problems:
            key = self._keep(_Pending(path, name, backend, method, where, report, then, self.now()))
        self._post(where, report_blocks(name, report, upload_key=key), report.headline())
        if report.ok:
            self._upload(uploader, rules, _Pending(path, name, backend, method, where, report, then, self.now()))
        elif key is None:
            path.unlink(missing_ok=True)
        return report

    def upload_valid_lines(self, key: str, user: str) -> Dataset | None:
        """ "Upload only the valid lines" of a file checked earlier (once: the button's key is used up)."""
        with self._lock:
            self._expire()
            pending = self._pending.pop(key, None)
        if pending is None:
            return None
        rules = self.rules_for(pending.backend)
        uploader = self.backends.get(pending.backend)
        if rules is None or not isinstance(uploader, UploadsDatasets):
            pending.path.unlink(missing_ok=True)
            return None
        return self._upload(uploader, rules, pending)

    def has_pending(self, key: str) -> bool:
        with self._lock:
            self._expire()
            return key in self._pending

    def pending_where(self, key: str) -> Where | None:
        with self._lock:
            found = self._pending.get(key)
            return found.where if found is not None else None

    # --- steps --------------------------------------------------------------------------------------------

    def _download(self, file_id: str) -> tuple[str, Path]:
        """The file's name and a temporary copy, streamed with the bot token."""
        try:
            info = self.slack.files_info(file=file_id)
            data = info.get("file") if hasattr(info, "get") else None
        except Exception as exc:  # slack_sdk's SlackApiError, a transport error
            error = getattr(getattr(exc, "response", None), "data", {}) or {}
            reason = error.get("error") if isinstance(error, dict) else None
            raise FileProblem(f"Slack did not give the file ({reason or type(exc).__name__})") from None
        if not isinstance(data, Mapping):
            raise FileProblem("Slack did not describe the file")
        name = str(data.get("name") or file_id)
        url = data.get("url_private_download") or data.get("url_private")
        size = data.get("size")
        if not name.lower().endswith(".jsonl"):
            raise FileProblem(f"{name} is not a .jsonl file: share one JSON Lines file (one example per line)")
        if isinstance(size, int) and size > self.max_file_bytes:
            raise FileProblem(f"{name} is {human_size(size)}: the bot reads files up to {self._cap()}")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise FileProblem(f"Slack gave no download address for {name}")
        handle, raw_path = tempfile.mkstemp(prefix="dataset-", suffix=".jsonl", dir=self.workdir)
        path = Path(raw_path)
        try:
            with (
                os.fdopen(handle, "wb") as out,
                self._http().stream(
                    "GET", url, headers={"Authorization": f"Bearer {self.bot_token}"}, follow_redirects=True
                ) as answer,
            ):
                kind = answer.headers.get("content-type", "")
                if answer.status_code != 200 or kind.startswith("text/html"):
                    # Slack answers a download without the right token with its sign-in page.
                    raise FileProblem(f"Slack did not let the bot download {name} (is the files:read scope granted?)")
                written = 0
                for chunk in answer.iter_bytes(_CHUNK):
                    written += len(chunk)
                    if written > self.max_file_bytes:
                        raise FileProblem(f"{name} is larger than the {self._cap()} the bot reads")
                    out.write(chunk)
        except FileProblem:
            path.unlink(missing_ok=True)
            raise
        except (httpx.HTTPError, OSError) as exc:
            path.unlink(missing_ok=True)
            raise FileProblem(f"{name} could not be downloaded ({type(exc).__name__})") from None
        return name, path

    def _upload(self, uploader: UploadsDatasets, rules: DatasetRules, job: _Pending) -> Dataset | None:
        """Upload the valid lines (all of them, for a valid file), showing progress when it takes a while."""
        progress = _Progress(self, job.where, job.name, self.now)
        name = job.name.removesuffix(".jsonl").removesuffix(".JSONL") or job.name
        try:
            with job.path.open("rb") as stream:
                dataset = uploader.upload_dataset(
                    name,
                    valid_lines(stream, rules, job.method),
                    total_bytes=job.report.valid_bytes,
                    progress=progress,
                )
        except BackendError as exc:
            progress.finish(failed_blocks(job.name, exc.describe()), f"Upload of {plain(job.name, 200)} failed")
            return None
        finally:
            job.path.unlink(missing_ok=True)
        progress.finish(done_blocks(job.name, dataset, rules.service), f"{plain(dataset.name, 200)} is ready")
        if job.then is not None:
            job.then(dataset, job.where)
        return dataset

    # --- Slack ----------------------------------------------------------------------------------------------

    def _thread(self, where: Where, text: str) -> Where:
        """Post `text` in the thread (starting one when there is none): the thread the rest goes to."""
        answer = self.slack.chat_postMessage(channel=where.channel, thread_ts=where.thread_ts, text=text)
        if where.thread_ts is None:
            return Where(where.channel, str(answer.get("ts")), where.user)
        return where

    def _say(self, where: Where, text: str) -> None:
        self.slack.chat_postMessage(channel=where.channel, thread_ts=where.thread_ts, text=text)

    def _post(self, where: Where, blocks: list[dict[str, Any]], text: str) -> str:
        answer = self.slack.chat_postMessage(channel=where.channel, thread_ts=where.thread_ts, text=text, blocks=blocks)
        return str(answer.get("ts"))

    def _keep(self, pending: _Pending) -> str:
        key = secrets.token_urlsafe(12)
        with self._lock:
            self._expire()
            self._pending[key] = pending
        return key

    def _expire(self) -> None:
        cutoff = self.now() - PENDING_SECONDS
        for key in [k for k, p in self._pending.items() if p.at < cutoff]:
            self._pending.pop(key).path.unlink(missing_ok=True)

    def _http(self) -> httpx.Client:
        with self._lock:
            if self.http is None:
                self.http = httpx.Client(timeout=30.0)
            return self.http

    def _cap(self) -> str:
        return human_size(self.max_file_bytes)


class _Progress:
    """The upload's progress in the thread: posted once it has taken `PROGRESS_AFTER_SECONDS`, edited at most
    every `PROGRESS_EVERY_SECONDS`, and at the end turned into the outcome (or the outcome posted, if short)."""

    def __init__(self, uploads: DatasetUploads, where: Where, name: str, now: Callable[[], float]) -> None:
        self._uploads, self._where, self._name, self._now = uploads, where, name, now
        self._started = now()
        self._last = self._started
        self._ts: str | None = None
        self.shown: list[int] = []  # the percentages shown, for tests and logs

    def __call__(self, done: int, total: int) -> None:
        at = self._now()
        if at - self._started < PROGRESS_AFTER_SECONDS or (
            self._ts is not None and at - self._last < PROGRESS_EVERY_SECONDS
        ):
            return
        percent = int(100 * done / total) if total > 0 else 100
        blocks, text = progress_blocks(self._name, percent), f"Uploading {self._name}: {percent}%"
        if self._ts is None:
            self._ts = self._uploads._post(self._where, blocks, text)
        else:
            self._uploads.slack.chat_update(channel=self._where.channel, ts=self._ts, text=text, blocks=blocks)
        self._last = at
        self.shown.append(percent)

    def finish(self, blocks: list[dict[str, Any]], text: str) -> None:
        if self._ts is None:
            self._uploads._post(self._where, blocks, text)
        else:
            self._uploads.slack.chat_update(channel=self._where.channel, ts=self._ts, text=text, blocks=blocks)


# --- the /finetune modal with a file instead of a dataset ---------------------------------------------------

SEEN_KEPT: Final = 1000  # submissions remembered, so that a redelivered one is not handled twice
PLACEHOLDER_DATASET: Final = "__dataset_file__"  # stands for the dataset a file will become, while the form is checked


@dataclass
class FromFile:
    """A /finetune form submitted with a file: the rest of the form is checked before the ack (the file stands in
    for the dataset), then, after the ack, the file is checked and uploaded, and the job starts with the new
    dataset, its card in the file's thread."""

    uploads: DatasetUploads
    submissions: Submissions
    _seen: dict[str, None] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def accept(
        self, team: str, user: str, metadata: ModalMetadata, state: FormState, file: Mapping[str, Any]
    ) -> dict[str, str] | Method:
        """Errors for the modal (block id -> message), or the method the file must be checked for."""
        subs = self.submissions
        form = subs.form_of(metadata)
        option = state_option(form, state) or default_option(form)
        decision = subs.permission(user, metadata.channel_id)
        if not decision.allowed:
            return {ids.BLOCK_DATASET_FILE: decision.reason}
        if isinstance(state.get(DATASET), str) and state.get(DATASET):
            return {ids.BLOCK_DATASET_FILE: "Choose a dataset above or upload a file, not both."}
        name = str(file.get("name") or "")
        if not name.lower().endswith(".jsonl"):
            return {ids.BLOCK_DATASET_FILE: f"{plain(name or 'This file', 60)} is not a .jsonl file."}
        catalog = subs.catalog_for(form.backend)
        stand_in = Dataset(id=PLACEHOLDER_DATASET, name=name.rsplit(".", 1)[0])
        ctx = FormContext(
            known_datasets={PLACEHOLDER_DATASET: stand_in},
            base_models=catalog.base_models(option, wait=0.0),
            existing_slugs=AnyOf((subs.store.team_slugs(team), catalog.cached_slugs() or frozenset())),
            form=form,
        )
        result = parse_form(_with_dataset(state, stand_in), ctx)
        if isinstance(result, FormErrors):
            return dict(result)
        return Method.DPO if Method.DPO in result.methods else Method.SFT

    def run(
        self,
        team: str,
        user: str,
        metadata: ModalMetadata,
        state: FormState,
        file_id: str,
        method: Method,
        submission_key: str | None,
    ) -> None:
        """After the ack: check the file, upload it, then start the job with it (once per submission)."""
        if submission_key is not None:
            with self._lock:
                if submission_key in self._seen:
                    return  # Slack delivered the submission again
                self._seen[submission_key] = None
                while len(self._seen) > SEEN_KEPT:  # the oldest go: a redelivery comes within minutes
                    del self._seen[next(iter(self._seen))]
        backend = self.submissions.form_of(metadata).backend

        def start(dataset: Dataset, where: Where) -> None:
            self._start(team, user, metadata, state, dataset, where, submission_key)

        where = Where(metadata.channel_id, metadata.thread_ts, user)
        self.uploads.check_file(file_id, backend, where, method=method, then=start)

    def _start(
        self,
        team: str,
        user: str,
        metadata: ModalMetadata,
        state: FormState,
        dataset: Dataset,
        where: Where,
        submission_key: str | None,
    ) -> None:
        subs = self.submissions
        subs.catalog_for(subs.form_of(metadata).backend).invalidate_datasets()  # the new dataset must be listed
        in_thread = metadata.model_copy(update={"thread_ts": where.thread_ts})
        verdict = subs.accept(team, user, in_thread, _with_dataset(state, dataset), submission_key)
        if isinstance(verdict, Accepted):
            subs.run_after_ack(self._started, verdict, where)
        elif isinstance(verdict, Refused):
            problems = "; ".join(mrkdwn(m, 300) for m in verdict.errors.values())
            self.uploads._say(
                where,
                f"The fine-tune was not started: {problems}. The dataset {code(dataset.name)} is uploaded: "
                f"run `/finetune` and pick it.",
            )

    def _started(self, accepted: Accepted, where: Where) -> None:
        said = self.submissions.start(accepted)
        if said is not None:
            self.uploads._say(where, said)


def _with_dataset(state: FormState, dataset: Dataset) -> FormState:
    return {**state, DATASET: dataset.id, DATASET_LABEL: dataset_label(dataset)}
